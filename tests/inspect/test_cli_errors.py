"""Every inspection command turns bad input into one message and exit status 1 or 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inspect_helpers import ROOT, run_cli, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = [
    (["trace", "nope.rasp", "--input", "ab"], 1, "no such file"),
    (["layers", "sort", "--input", "xyz"], 1, "not in the vocabulary"),
    (["attn", "sort", "--input", "aaaaaaaaaaaaaaaaaaaa", "-o", "{tmp}/maps"], 1, "longer than the model's max_seq_len"),
    (["draw", "sort", "-o", "{tmp}/g.txt"], 2, ".svg, .png or .pdf"),
    (["draw", "sort", "-o", "{tmp}/missing/dir/g.svg"], 1, "No such file or directory"),
    (["report", "sort", "--name", "goes_before", "-o", "{tmp}/r.html"], 2, "is a selector"),
    (["report", "sort", "--vocab", "ab", "-o", "{tmp}/r.html"], 1, "not in the vocabulary"),
    (["trace", "sort", "--name", "missing"], 1, "defines no 'missing'"),
    (["layers", "sort", "--max-len", "0"], 1, "max_seq_len must be a positive integer"),
    (["trace", "{tmp}/binary.rasp", "--input", "ab"], 1, "not UTF-8 text"),
    (["trace", "{tmp}/empty.rasp", "--input", "ab"], 1, "defines nothing to evaluate"),
    (["learn", "hist", "--eval-every", "0", "-o", "{tmp}/run"], 2, "0 is not in the range x>=1"),
    (["compare", "{tmp}/empty.safetensors", "{tmp}/empty.safetensors", "-o", "{tmp}/cmp"], 1,
     "not a safetensors file"),
    (["trace", "{tmp}/trailing_int.rasp", "--input", "ab", "--name", "n"], 2, "is an int, not an s-op"),
]


@pytest.mark.parametrize("args,code,message", CASES)
def test_errors_are_clean_messages(tmp_path, args, code, message):
    (tmp_path / "binary.rasp").write_bytes(b"\xff\xfe x = tokens;")
    (tmp_path / "empty.rasp").write_text("# nothing here\n")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "trailing_int.rasp").write_text("rev = aggregate(select(indices, length - indices - 1, ==), tokens);\n"
                                                "n = 5;\n")
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_default_name_skips_a_trailing_non_sop(tmp_path):
    path = tmp_path / "trailing_int.rasp"
    path.write_text("rev = aggregate(select(indices, length - indices - 1, ==), tokens);\nn = 5;\n")
    result = run_cli("trace", str(path), "--input", "abc")
    assert result.exit_code == 0, result.output
    assert "rev" in result.output


def test_no_traceback_from_the_real_command(tmp_path):
    run = subprocess.run([sys.executable, "-c", "from rasp_cli.main import main; main()", "attn", "sort",
                          "--input", "zz", "-o", str(tmp_path)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert run.returncode == 1
    assert "not in the vocabulary" in run.stderr and "Traceback" not in run.stderr + run.stdout
