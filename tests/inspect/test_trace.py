"""`rasp trace`: every named s-op at every position, by the reference interpreter."""

from __future__ import annotations

import pytest

import json

import rasp

from inspect_helpers import load, program_path, run_cli, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_trace_json_has_every_named_sop_in_source_order():
    result = run_cli("trace", str(program_path("sort")), "--input", "cabbad", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    prog, _, _ = load("sort")
    assert data["input"] == list("cabbad")
    assert data["output"] == "sorted"
    assert [r["name"] for r in data["rows"]] == list(prog.sops())      # target, sorted
    for row in data["rows"]:
        assert row["values"] == rasp.evaluate(prog[row["name"]], "cabbad")
        assert row["line"] is not None and row["source"]
    assert [r["output"] for r in data["rows"]] == [False, True]


def test_trace_table_in_the_terminal():
    result = run_cli("trace", "dyck1", "--input", "(()")
    assert result.exit_code == 0, result.output
    out = result.output
    prog, _, _ = load("dyck1")
    for name in prog.sops():
        assert name in out
    assert "trace on '(()'" in out


def test_trace_uses_the_header_input_and_adds_an_unnamed_output(tmp_path):
    path = tmp_path / "p.rasp"
    path.write_text('# input: abc\nx = tokens == "a";\nnumerical(aggregate(select(indices, indices, <=), '
                    'indicator(x)));\n')
    result = run_cli("trace", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["input"] == ["a", "b", "c"]
    names = [r["name"] for r in data["rows"]]
    assert names == ["x", "out"]
    assert data["rows"][0]["values"] == [True, False, False]
    assert data["rows"][1]["values"] == [1, 0.5, 1 / 3]


def test_trace_reports_an_evaluation_error_per_row(tmp_path):
    path = tmp_path / "p.rasp"
    path.write_text('ok = tokens == "a";\nbad = aggregate(select(indices, indices, <=), tokens);\n')
    result = run_cli("trace", str(path), "--input", "ab", "--json", "--name", "ok")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["rows"]}
    assert rows["ok"]["values"] == [True, False]
    assert rows["bad"]["values"] is None and "cannot average" in rows["bad"]["error"]
    table = run_cli("trace", str(path), "--input", "ab", "--name", "ok")
    assert table.exit_code == 0 and "bad: in bad = " in " ".join(table.output.split())


def test_trace_errors_are_messages():
    result = run_cli("trace", "no_such_program", "--input", "ab")
    assert result.exit_code == 1
    assert "no such file" in result.output and "Traceback" not in result.output
    result = run_cli("trace", "sort", "--name", "nope")
    assert result.exit_code == 1 and "defines no 'nope'" in result.output
