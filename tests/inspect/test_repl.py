"""`rasp repl`: statements run on a running example, in one persistent environment.

The session logic is tested in-process (ReplSession); the terminal front end through a
real pseudo-terminal (pexpect): prompts, multi-line input, history and completion.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rasp_cli.repl import ReplSession

from inspect_helpers import ROOT, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def session(*lines: str, example: str | None = None) -> tuple[ReplSession, str]:
    out: list[str] = []
    s = ReplSession(write=out.append, example=example)
    for line in lines:
        s.feed(line)
    return s, "\n".join(out)


def test_values_are_shown_on_the_example():
    _, out = session('x = tokens == "l";', "y = selector_width(select(tokens, tokens, ==));")
    assert "s-op: x = [F, F, T, T, F]" in out
    assert "s-op: y = [1, 1, 2, 2, 1]" in out


def test_selectors_are_shown_as_matrices():
    _, out = session('set example "abc"', "sel = select(indices, indices, <);")
    assert "example: abc" in out
    lines = [l.strip() for l in out.splitlines()]
    i = lines.index("selector: sel")
    assert lines[i + 1:i + 5] == ["a b c", "a 0 0 0", "b 1 0 0", "c 1 1 0"]


def test_statements_span_lines_until_they_parse():
    s, out = session("y = aggregate(select(indices, indices, <=),", "   indicator(tokens == \"l\"));")
    assert "s-op: y = [0, 0.0, 0.3333, 0.5, 0.4]" in out
    s, out = session("def double(v) {", "  return 2 * v;", "}", "double(tokens_int);", example="[1, 2]")
    assert "function: double(v)" in out and "s-op: " in out and "= [2, 4]" in out
    # a statement lacking only its ';' ends at an empty line
    s, out = session("z = length", "")
    assert "s-op: z = [5, 5, 5, 5, 5]" in out and not s.pending


def test_blank_lines_inside_a_statement_do_not_end_it():
    # (the original REPL's whitespace test: a statement runs once it parses)
    s, out = session("indices+", "", "4;", "select(", "", "indices,", "", "\t\tindices,<);", example="[0, 0, 0]")
    assert "= [4, 5, 6]" in out and "syntax error" not in out and not s.pending
    lines = [l.strip() for l in out.splitlines()]
    assert lines[-3:] == ["0 0 0 0", "0 1 0 0", "0 1 1 0"]
    # at the end of input, a statement still missing more than its ';' is an error
    out_lines: list[str] = []
    s = ReplSession(write=out_lines.append)
    s.feed("x = select(indices,")
    s.finish()
    assert out_lines and "end of input" in out_lines[-1] and not s.pending


def test_out_is_the_last_bare_expression():
    _, out = session("3 + 4;", "out;", "x = out * 2;", "tokens == \"l\";", "y = out;")
    assert "value: out = 7" in out and "value: x = 14" in out and "s-op: y = [F, F, T, T, F]" in out
    _, out = session("out = 3;")
    assert "reserved name 'out'" in out


def test_for_loops_show_nothing():
    _, out = session("a = 3;", "for i in range(4) {", "  a = a + i;", "}", "a;")
    assert [l.strip() for l in out.splitlines()] == ["value: a = 3", "value: a = 9"]


def test_load_skips_failing_statements_and_lists_its_names(tmp_path):
    """As the original REPL's load_nesteds test: each failing statement of a loaded file
    is reported and skipped; the file's public names (also those it loaded) are listed,
    each once, in the order of their last assignment; private names stay in the file."""
    (tmp_path / "inner.rasp").write_text("g = f;\nb = 7;\n_b = 8;\n_c = a;\n")
    (tmp_path / "outer.rasp").write_text(f'a = f;\na = 3;\nload "{tmp_path / "inner"}";\nc = b;\nd = _b;\n'
                                         "_a = 4;\ne = _a;\n")
    s, out = session("f = 10;", f'load "{tmp_path / "outer.rasp"}";', "d;", "_a;", "e + f;")
    assert out.count("unknown name 'f'") == 2 and "unknown name 'a'" in out and "unknown name '_b'" in out
    shown = [l.strip() for l in out.splitlines() if l.strip().startswith("value:")]
    assert shown == ["value: f = 10", "value: a = 3", "value: b = 7", "value: c = 7", "value: e = 4",
                     "value: 14"]
    assert "unknown name 'd'" in out and "unknown name '_a'" in out
    assert "Traceback" not in out


def test_environment_persists_and_example_changes():
    s, out = session("a = tokens_int + 1;", "set example [3, 4]", "b = a * 10;")
    assert "s-op: a" in out and "example: [3, 4]" in out and "s-op: b = [40, 50]" in out
    assert s.env.vars["b"].name == "b"


def test_errors_do_not_end_the_session():
    s, out = session("x = 1 +* 2;", "nope;", "ok = tokens;")
    assert "syntax error" in out and "unknown name 'nope'" in out and "s-op: ok" in out
    assert "Traceback" not in out


def test_compile_and_draw(tmp_path):
    path = tmp_path / "g.svg"
    s, out = session('set example "cab"', "goes = selector_width(select(tokens, tokens, <));",
                     "compile goes abc 5", f"draw goes {path}", "compile missing", "compile goes abc zero",
                     f"draw goes {tmp_path / 'g.gif'}")
    assert "compiled goes: " in out and "agrees with the interpreter" in out
    assert "on the example: [2, 0, 1]" in out
    assert path.read_text().lstrip().startswith("<?xml")
    assert "unknown name 'missing'" in out
    assert "max-len must be an integer" in out
    assert ".svg, .png or .pdf" in out


def test_piped_input(tmp_path):
    script = 'x = tokens == "b";\nset example "abba"\nx;\nexit\ny = tokens;\n'
    run = subprocess.run([sys.executable, "-c", "from rasp_cli.main import main; main()", "repl"], input=script,
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "s-op: x = [F, F, F, F, F]" in run.stdout and "s-op: x = [F, T, T, F]" in run.stdout
    assert "s-op: y" not in run.stdout      # after exit


def spawn(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", HOME=str(tmp_path))
    child = pexpect.spawn(sys.executable, ["-c", "from rasp_cli.main import main; main()", "repl"],
                          env=env, cwd=str(ROOT), encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("example: hello")
    child.expect(">>")
    return child


def test_terminal_session(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    child = spawn(tmp_path)
    child.sendline('x = tokens == "l";')
    child.expect(r"s-op: x = \[F, F, T, T, F\]")
    child.expect(">>")
    child.sendline("y = aggregate(select(indices, indices, <=),")
    child.expect(r"\.\.")                                 # the continuation prompt
    child.sendline("   indicator(x));")
    child.expect(r"s-op: y = \[0, 0\.0, 0\.3333, 0\.5, 0\.4\]")
    child.expect(">>")
    child.sendline("sel = select(tokens, tokens, ==);")
    child.expect("selector: sel")
    child.expect(r"l 0 0 1 1 0")
    child.expect(">>")
    child.sendline("compile x")
    child.expect("compiled x: 1 layers")
    child.expect("agrees with the interpreter")
    child.expect(">>")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_terminal_history_and_completion(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    child = spawn(tmp_path)
    child.sendline("a_rather_long_name = length - indices;")
    child.expect(r"s-op: a_rather_long_name = \[5, 4, 3, 2, 1\]")
    child.expect(">>")
    child.send("a_rath\t")                                # completes the name
    child.expect("a_rather_long_name")
    child.send(" + 1;\r")
    child.expect(r"s-op: [a-z_0-9]+ = \[6, 5, 4, 3, 2\]")
    child.expect(">>")
    child.send("\x1b[A")                                  # up: the previous statement again
    child.expect(r"a_rather_long_name \+ 1;")
    child.send("\r")
    child.expect(r"s-op: [a-z_0-9]+ = \[6, 5, 4, 3, 2\]")
    child.expect(">>")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    history = (tmp_path / ".rasp_history").read_text()
    assert "a_rather_long_name = length - indices;" in history and "a_rather_long_name + 1;" in history
