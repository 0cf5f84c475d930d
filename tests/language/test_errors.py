"""Errors: every bad program stops with one RaspError that names the place in the source."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import rasp

from .helpers import run


def build_error(src: str, cls: type = rasp.RaspError, filename: str = "prog.rasp") -> rasp.RaspError:
    with pytest.raises(cls) as info:
        rasp.parse(src, filename)
    assert isinstance(info.value, rasp.RaspError)
    return info.value


def first_line(err: Exception) -> str:
    return str(err).split("\n")[0]


def test_error_hierarchy():
    for cls in (rasp.RaspSyntaxError, rasp.RaspNameError, rasp.RaspTypeError, rasp.RaspValueError,
                rasp.RaspLimitError, rasp.RaspRuntimeError, rasp.RaspInputError):
        assert issubclass(cls, rasp.RaspError)
    assert issubclass(rasp.RaspError, Exception)


# ---- names ------------------------------------------------------------------------------

def test_unknown_name_points_at_the_name():
    err = build_error("x = 1;\ny = x + foo;", rasp.RaspNameError)
    assert first_line(err) == "prog.rasp:2:9: name error: unknown name 'foo'"
    assert str(err).split("\n")[1:] == ["    y = x + foo;", "            ^~~"]


def test_a_parameter_named_twice():
    with pytest.raises(rasp.RaspNameError) as info:
        rasp.parse("x = 1;\ndef f(a, a) { return a + 1; }\n", "p.rasp")
    assert "parameter 'a' twice" in str(info.value) and "p.rasp:2:1" in str(info.value)


def test_unknown_name_inside_a_function_is_reported_when_called():
    err = build_error("def f(a) {\n  return a + missing;\n}\nz = f(tokens);", rasp.RaspNameError)
    assert first_line(err).startswith("prog.rasp:2:14: name error: unknown name 'missing'")


@pytest.mark.parametrize("src", ["indices = 2;", "tokens_int = 1;", "length_x = 1; out = 3;",
                                 "def f(indices) { return 1; }\nf(1);"])
def test_reserved_names_cannot_be_rebound(src):
    err = build_error(src, rasp.RaspNameError)
    assert "reserved name" in str(err)


# ---- arity and types --------------------------------------------------------------------

@pytest.mark.parametrize("src, message", [
    ("def f(a) { return a; }\nf(1, 2);", "f takes 1 argument, got 2"),
    ("def f(a, b) { return a; }\nf(1);", "f takes 2 arguments, got 1"),
    ("select(indices, indices);", "select takes 3 arguments, got 2"),
    ("aggregate(select(1, 1, ==));", "aggregate takes 2 to 3 arguments, got 1"),
    ("selector_width(full_s, full_s);", "selector_width takes 1"),
    ("round(1, 2);", "round takes 1"),
])
def test_wrong_argument_count(src, message):
    err = build_error(src, rasp.RaspTypeError)
    assert message in first_line(err)
    assert first_line(err).startswith(f"prog.rasp:{src.count(chr(10)) + 1}:1: type error")


@pytest.mark.parametrize("src, message, column", [
    ("select(select(indices, indices, ==), indices, ==);", "select's keys must be an s-op or an atom", 8),
    ("select(indices, full_s, ==);", "select's queries must be an s-op or an atom", 17),
    ("select(indices, indices, 3);", "select's third argument must be one of", 26),
    # (an s-op there raised a raw KeyError: its == builds an s-op, which `in` took as True)
    ("select(indices, indices, indices);", "select's third argument must be one of", 26),
    ("select(tokens, tokens, length + 1);", "select's third argument must be one of", 24),
    ("aggregate(indices, indices);", "aggregate's first argument must be a selector", 11),
    ("aggregate(full_s, full_s);", "aggregate's second argument must be an s-op or an atom", 19),
    ("aggregate(full_s, tokens, [1]);", "aggregate's default must be an atom", 27),
    ("selector_width(indices);", "selector_width needs a selector", 16),
    ("round(full_s);", "round needs an s-op or an atom, got a selector", 7),
    ("indices + full_s;", "cannot apply '+' to a selector", 1),
    ("full_s == full_s;", "cannot apply '==' to a selector", 1),
    ("full_s and indices;", "both sides must be selectors", 1),
    ("tokens if full_s else 0;", "cannot be a selector", 11),
    ("x = [1, 2]; x + tokens;", "cannot apply '+' to an s-op and a list", 13),
    ("tokens[1.5];", "an s-op can only be indexed by an integer", 8),
    ("tokens[indices];", "an s-op can only be indexed by an integer", 8),
    ("3[0];", "cannot index into", 1),
    ("f = 3; f(1);", "3 is not a function", 8),
    ("'a' + 1;", "cannot compute 'a' + 1", 1),
    ("x, y = 1;", "cannot unpack 1 into 2 names", 1),
    ("x, y = 1, 2, 3;", "expected 2 values, got 3", 1),
    ("for i in 5 { }", "a for loop needs a list or dict", 10),
    ("numerical(1);", "needs an s-op", 11),
    ("{tokens: 1};", "dict keys must be atoms", 2),
    ("indices in 3;", "needs X to be a list of atoms", 12),
    ("len(1);", "len expects a list, dict or string", 5),
    ("range('a');", "range expects integers", 7),
    ("set example 5", "an example must be a string or a list", 1),
])
def test_type_errors_name_the_expression(src, message, column):
    err = build_error(src, rasp.RaspTypeError)
    assert message in first_line(err), first_line(err)
    assert first_line(err).startswith(f"prog.rasp:1:{column}: type error:"), first_line(err)
    assert "^" in str(err).split("\n")[2]


@pytest.mark.parametrize("src, cls, message", [
    ("1 / 0;", rasp.RaspValueError, "division by zero"),
    ("1 % 0;", rasp.RaspValueError, "division by zero"),
    ("x = [1, 2]; x[5];", rasp.RaspValueError, "index 5 out of range"),
    ("{1: 2}[3];", rasp.RaspValueError, "not in dict"),
])
def test_definition_time_value_errors(src, cls, message):
    err = build_error(src, cls)
    assert message in first_line(err)


# ---- evaluation errors ------------------------------------------------------------------

def eval_error(src: str, tokens, name: str = "out") -> rasp.RaspRuntimeError:
    with pytest.raises(rasp.RaspRuntimeError) as info:
        rasp.evaluate(rasp.parse(src, "prog.rasp")[name], tokens)
    return info.value


def test_non_numeric_aggregate_over_different_values():
    err = eval_error("x = 1;\nmixed = aggregate(select(1, 1, ==), tokens);", "ab", "mixed")
    line = first_line(err)
    assert line.startswith("prog.rasp:2:9: evaluation error: in mixed = `aggregate(select(1, 1, ==), tokens)`")
    assert "['a', 'b']" in line and "'ab'" in line


def test_error_inside_a_prelude_function_points_at_the_user_call():
    err = eval_error("x = 1;\navg = average(tokens);", "ab", "avg")
    assert first_line(err).startswith("prog.rasp:2:7: evaluation error: in avg = ")
    assert str(err).split("\n")[1] == "    avg = average(tokens);"


def test_division_by_zero_at_evaluation():
    err = eval_error("q = tokens_int / (tokens_int - 1);", [1, 2], "q")
    line = first_line(err)
    assert line.startswith("prog.rasp:1:5: evaluation error: in q = `tokens_int / (tokens_int - 1)`")
    assert "division by zero" in line and "position 0" in line
    err = eval_error("tokens_int % 0;", [3])
    assert "modulo by zero" in first_line(err)


@pytest.mark.parametrize("src, tokens, message", [
    ("tokens_int;", "ab", "cannot convert token 'a'"),
    ("tokens_float;", ["x"], "cannot convert token 'x'"),
    ("tokens_int + tokens;", [1], "unsupported operand"),
    ("tokens_int ^ 0.5;", [-1], "not a real number"),
    ("'abc'[tokens_int];", [3], "out of range"),
    ("{'a': 1}[tokens];", "b", "not in dict"),
    ("select(tokens, tokens_int, <);", ["1"], "cannot compare key '1' with query 1"),
    ("round(tokens);", "a", "cannot round a string"),
    ("-tokens;", "a", "bad operand type"),
])
def test_other_evaluation_errors(src, tokens, message):
    err = eval_error(src, tokens)
    assert message in first_line(err)


def test_an_argument_of_a_thousand_digits_is_shown_by_its_first():
    err = eval_error("q = (length ^ 1000) / 2;", "abc", "q")
    line = first_line(err)
    assert "cannot compute x / 2 for (1322070819480806636890455259752144365...)" in line
    assert "too large for a float" in line and len(line) < 300


def test_evaluate_rejects_non_nodes():
    with pytest.raises(rasp.RaspInputError):
        rasp.evaluate(3, "abc")
    with pytest.raises(rasp.RaspInputError):
        rasp.evaluate_batch([1, 2], ["abc"])


# ---- limits -----------------------------------------------------------------------------

def test_infinite_recursion_is_a_limit_error():
    err = build_error("def f(x) { return f(x); }\ny = f(1);", rasp.RaspLimitError)
    assert "infinite recursion" in first_line(err)
    assert first_line(err).startswith("prog.rasp:1:19: limit exceeded")


def test_mutual_recursion_building_sops_is_a_limit_error():
    src = "def f(x) { return g(x + 1); }\ndef g(x) { return f(x * 2); }\ny = f(tokens_int);"
    err = build_error(src, rasp.RaspLimitError)
    assert "nested more than" in first_line(err)


def test_huge_loop_stops_quickly_with_a_limit_error():
    start = time.perf_counter()
    err = build_error("for i in range(1000000) { for j in range(1000000) { x = 1; } }", rasp.RaspLimitError)
    elapsed = time.perf_counter() - start
    assert "steps" in first_line(err) and first_line(err).startswith("prog.rasp:1:")
    assert elapsed < 30, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("src", ["range(10000000);", "[1] * 10000000;", "'ab' * 10000000;"])
def test_huge_collections_are_limit_errors(src):
    err = build_error(src, rasp.RaspLimitError)
    assert first_line(err).startswith("prog.rasp:1:1: limit exceeded")


def test_load_cycle_names_the_files(tmp_path):
    (tmp_path / "a.rasp").write_text('x = 1;\nload "b";\n')
    (tmp_path / "b.rasp").write_text('load "c";\n')
    (tmp_path / "c.rasp").write_text('load "a";\n')
    with pytest.raises(rasp.RaspLimitError) as info:
        rasp.load(tmp_path / "a.rasp")
    line = first_line(info.value)
    assert line.startswith(f"{tmp_path / 'c.rasp'}:1:1: limit exceeded: load cycle")
    assert "a.rasp -> " in line and "b.rasp -> " in line and "c.rasp -> " in line


def test_deeply_nested_expressions_are_errors_not_crashes():
    with pytest.raises(rasp.RaspError):
        rasp.parse("x = " + "1 + " * 20000 + "1;")
    # moderately deep nesting is fine
    assert rasp.parse("x = " + "(" * 500 + "1" + ")" * 500 + ";")["x"] == 1


def test_run_helper_propagates_rasp_errors():
    with pytest.raises(rasp.RaspNameError):
        run("nope;", "a")


# ---- the command line -------------------------------------------------------------------

def rasp_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    # the same entry point as the installed `rasp` script
    command = [sys.executable, "-c", "from rasp_cli.main import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_eval_syntax_error_exits_1_with_location_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.rasp"
    bad.write_text("x = 1;\ny = tokens +;\n")
    result = rasp_cli("eval", str(bad), "--input", "abc")
    assert result.returncode == 1
    assert f"{bad}:2:13: syntax error" in result.stderr
    assert "    y = tokens +;" in result.stderr and "^" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_cli_eval_name_and_runtime_errors(tmp_path):
    bad = tmp_path / "name.rasp"
    bad.write_text("x = foo;\n")
    result = rasp_cli("eval", str(bad), "--input", "abc")
    assert result.returncode == 1 and "name.rasp:1:5: name error: unknown name 'foo'" in result.stderr
    assert "Traceback" not in result.stderr
    bad = tmp_path / "runtime.rasp"
    bad.write_text("aggregate(select(1, 1, ==), tokens);\n")
    result = rasp_cli("eval", str(bad), "--input", "ab")
    assert result.returncode == 1 and "runtime.rasp:1:1: evaluation error" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_eval_missing_file_and_missing_name(tmp_path):
    result = rasp_cli("eval", str(tmp_path / "nope.rasp"), "--input", "ab")
    assert result.returncode == 1 and "nope.rasp" in result.stderr and "Traceback" not in result.stderr
    good = tmp_path / "good.rasp"
    good.write_text("y = tokens_int * 2;\n")
    result = rasp_cli("eval", str(good), "--name", "zz", "--input", "ab")
    assert result.returncode == 1 and "zz" in result.stderr and "Traceback" not in result.stderr


def test_cli_eval_success_json(tmp_path):
    good = tmp_path / "good.rasp"
    good.write_text("y = tokens_int * 2;\nz = tokens + '!';\n")
    result = rasp_cli("eval", str(good), "--input", "[1, 2, 3]", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": ["1!", "2!", "3!"]}
    result = rasp_cli("eval", str(good), "--name", "y", "--input", "[1, 2, 3]", "--json")
    assert json.loads(result.stdout) == {"output": [2, 4, 6]}


def test_source_must_be_text_and_files_utf8(tmp_path):
    with pytest.raises(rasp.RaspValueError, match="must be text"):
        rasp.parse(None)
    path = tmp_path / "binary.rasp"
    path.write_bytes(b"\xff\xfe x = tokens;")
    with pytest.raises(rasp.RaspValueError, match="binary.rasp: not UTF-8 text"):
        rasp.load(path)


def test_a_predefined_sop_that_fails_points_at_its_first_use():
    """tokens_int has no source line of its own; its conversion error showed no location."""
    sop = rasp.parse("x = tokens_int + 1;", "prog.rasp")["x"]
    with pytest.raises(rasp.RaspRuntimeError) as info:
        rasp.evaluate(sop, "abc")
    assert "prog.rasp:1:5:" in str(info.value) and "^" in str(info.value)
