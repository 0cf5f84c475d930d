"""The parser: every construct of the grammar, operator precedence, and syntax errors."""

from __future__ import annotations

import pytest

import rasp
from rasp import syntax as ast
from rasp.parser import parse, parse_expression

from .helpers import same, value


def shape(e: ast.Expr) -> str:
    """A fully parenthesised rendering of an expression AST (to check its structure)."""
    if isinstance(e, ast.BinOp):
        return f"({shape(e.left)} {e.op} {shape(e.right)})"
    if isinstance(e, ast.UnOp):
        return f"({e.op} {shape(e.operand)})"
    if isinstance(e, ast.IfElse):
        return f"({shape(e.then)} if {shape(e.cond)} else {shape(e.otherwise)})"
    if isinstance(e, ast.Contains):
        return f"({shape(e.item)} in {shape(e.container)})"
    if isinstance(e, ast.Var):
        return e.name
    if isinstance(e, ast.Num):
        return repr(e.value)
    if isinstance(e, ast.Str):
        return repr(e.value)
    if isinstance(e, ast.Index):
        return f"{shape(e.obj)}[{shape(e.index)}]"
    if isinstance(e, ast.Call):
        return f"{shape(e.func)}({', '.join(shape(a) for a in e.args)})"
    if isinstance(e, ast.OpArg):
        return e.op
    if isinstance(e, ast.ListLit):
        return f"[{', '.join(shape(i) for i in e.items)}]"
    if isinstance(e, ast.DictLit):
        return "{" + ", ".join(f"{shape(k)}: {shape(v)}" for k, v in e.pairs) + "}"
    if isinstance(e, ast.ListComp):
        return f"[{shape(e.expr)} for {','.join(e.names)} in {shape(e.iterable)}]"
    if isinstance(e, ast.DictComp):
        return "{" + f"{shape(e.key)}: {shape(e.value)} for {','.join(e.names)} in {shape(e.iterable)}" + "}"
    raise AssertionError(f"unexpected node {e!r}")


def expr_shape(text: str) -> str:
    return shape(parse_expression(text))


def stmts(text: str) -> tuple:
    return parse(text, "t.rasp").statements


# ---- statements -------------------------------------------------------------------------

def test_empty_and_whitespace_only_texts_parse_to_no_statements():
    assert stmts("") == ()
    assert stmts("  \n\t\n") == ()
    assert stmts("# only a comment\n# another") == ()
    assert stmts(";;;") == ()


def test_assignment_single_and_multiple_names():
    (a,) = stmts("x = 1;")
    assert isinstance(a, ast.Assign) and a.names == ("x",)
    assert [shape(v) for v in a.values] == ["1"]
    (b,) = stmts("x, y = 1, f(2);")
    assert b.names == ("x", "y") and [shape(v) for v in b.values] == ["1", "f(2)"]
    (c,) = stmts("x, y = pair;")
    assert c.names == ("x", "y") and [shape(v) for v in c.values] == ["pair"]


def test_expression_statement():
    (s,) = stmts("tokens + 1;")
    assert isinstance(s, ast.ExprStmt)
    assert shape(s.expr) == "(tokens + 1)"


def test_load_statement_keeps_the_path_text():
    s1, s2 = stmts('load "lib/util";\nload \'other.rasp\';')
    assert isinstance(s1, ast.Load) and s1.path == "lib/util"
    assert isinstance(s2, ast.Load) and s2.path == "other.rasp"


def test_draw_with_and_without_example():
    d1, d2 = stmts('draw(tokens);\ndraw(tokens, "abc");')
    assert isinstance(d1, ast.Draw) and shape(d1.expr) == "tokens" and d1.example is None
    assert isinstance(d2, ast.Draw) and shape(d2.example) == "'abc'"


def test_function_definition_with_body_and_multiple_returns():
    (f,) = stmts("def f(a, b) { c = a + b; d = c * 2; return c, d; }")
    assert isinstance(f, ast.FuncDef)
    assert f.name == "f" and f.params == ("a", "b")
    assert [type(s) for s in f.body] == [ast.Assign, ast.Assign]
    assert [shape(r) for r in f.returns] == ["c", "d"]


def test_function_without_parameters_and_with_only_a_return():
    (f,) = stmts("def g() { return 1; }")
    assert f.params == () and f.body == () and [shape(r) for r in f.returns] == ["1"]


def test_nested_function_definitions():
    (f,) = stmts("""
        def outer(x) {
            def inner(y) {
                def innermost(z) { return z; }
                return innermost(y) + 1;
            }
            return inner(x);
        }
    """)
    assert isinstance(f.body[0], ast.FuncDef) and f.body[0].name == "inner"
    inner = f.body[0]
    assert isinstance(inner.body[0], ast.FuncDef) and inner.body[0].name == "innermost"
    assert shape(inner.returns[0]) == "(innermost(y) + 1)"


def test_function_body_may_have_stray_semicolons_after_return():
    (f,) = stmts("def f(x) { ; y = x;; return y;;; }")
    assert [shape(r) for r in f.returns] == ["y"]


def test_for_loop_single_and_multiple_names():
    l1, l2 = stmts("for i in range(3) { x = i; }\nfor k, v in zip(a, b) { y = k; z = v; }")
    assert isinstance(l1, ast.ForLoop) and l1.names == ("i",) and shape(l1.iterable) == "range(3)"
    assert len(l1.body) == 1
    assert l2.names == ("k", "v") and len(l2.body) == 2


def test_for_loop_with_empty_body_and_nested_loops():
    outer, empty = stmts("for i in a { for j in b { x = [i, j]; } }\nfor i in a { }")
    assert isinstance(outer.body[0], ast.ForLoop)
    assert empty.body == ()


def test_list_and_dict_literals_and_comprehensions():
    assert expr_shape("[]") == "[]"
    assert expr_shape("[1, 'a', x]") == "[1, 'a', x]"
    assert expr_shape("{}") == "{}"
    assert expr_shape("{'a': 1, 2: b}") == "{'a': 1, 2: b}"
    assert expr_shape("[x * 2 for x in xs]") == "[(x * 2) for x in xs]"
    assert expr_shape("[a + b for a, b in zip(p, q)]") == "[(a + b) for a,b in zip(p, q)]"
    assert expr_shape("{k: v for k, v in pairs}") == "{k: v for k,v in pairs}"
    assert expr_shape("[[i, j] for i in range(2)]") == "[[i, j] for i in range(2)]"


def test_indexing_and_calls_chain():
    assert expr_shape("a[1][2]") == "a[1][2]"
    assert expr_shape("f(x)(y)") == "f(x)(y)"
    assert expr_shape("f(x)[0]") == "f(x)[0]"
    assert expr_shape("m['k'][i + 1]") == "m['k'][(i + 1)]"
    assert expr_shape("f()") == "f()"


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_select_accepts_every_comparison_as_an_argument(op):
    e = parse_expression(f"select(keys, queries, {op})")
    assert isinstance(e, ast.Call) and isinstance(e.args[2], ast.OpArg)
    assert e.args[2].op == op


def test_strings_with_both_quote_styles():
    assert expr_shape('"double"') == "'double'"
    assert expr_shape("'single'") == "'single'"
    e1 = parse_expression('"it\'s"')
    e2 = parse_expression("'say \"hi\"'")
    assert e1.value == "it's"
    assert e2.value == 'say "hi"'
    assert parse_expression('""').value == ""
    assert parse_expression("'# not a comment'").value == "# not a comment"


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("42", 42), ("1.5", 1.5), (".5", 0.5), ("2.", 2.0), ("1e3", 1000.0),
    ("1.5e-2", 0.015), ("3E+2", 300.0), ("007", 7),
])
def test_number_literals(text, expected):
    e = parse_expression(text)
    assert isinstance(e, ast.Num)
    assert same(e.value, expected)


def test_comments_are_ignored_everywhere():
    text = """
    # a full-line comment; with "quotes" and 'quotes'
    x = 1;  # trailing comment ; with a semicolon
    def f(a) {  # comment after the brace
        # inside a body
        return a;  # after return
    }
    y = [1, # inside a list
         2];
    """
    s = stmts(text)
    assert [type(t) for t in s] == [ast.Assign, ast.FuncDef, ast.Assign]
    assert shape(s[2].values[0]) == "[1, 2]"


def test_comment_at_end_of_file_without_newline():
    assert len(stmts("x = 1; # end")) == 1


# ---- REPL commands ----------------------------------------------------------------------

@pytest.mark.parametrize("text, subset", [
    ('set example "hello"', "both"),
    ("set example 'hello'", "both"),
    ('set s-op example "ab"', "s-op"),
    ("set selector example [1, 2]", "selector"),
])
def test_set_example_commands(text, subset):
    for suffix in ("", ";"):
        (s,) = stmts(text + suffix)
        assert isinstance(s, ast.SetExample)
        assert s.subset == subset


@pytest.mark.parametrize("text, command, argument", [
    ("show example", "show example", "both"),
    ("show s-op example", "show example", "s-op"),
    ("show selector example", "show example", "selector"),
    ("examples on", "examples", "both on"),
    ("examples off", "examples", "both off"),
    ("s-op examples off", "examples", "s-op off"),
    ("selector examples on", "examples", "selector on"),
    ("full seq display on", "full seq display", "on"),
    ("full seq display off", "full seq display", "off"),
    ("exit", "exit", ""),
    ("quit", "exit", ""),
    ("exit()", "exit", ""),
    ("quit()", "exit", ""),
])
def test_other_repl_commands(text, command, argument):
    for suffix in ("", ";"):
        (s,) = stmts(text + suffix)
        assert isinstance(s, ast.ReplCommand)
        assert (s.command, s.argument) == (command, argument)


def test_repl_command_words_stay_usable_as_names():
    s = stmts("set = 1; show = set + 1; full = 2; examples = 3; example = 4; display = 5; on = 6; quitter = 7;")
    assert [t.names for t in s] == [("set",), ("show",), ("full",), ("examples",), ("example",),
                                    ("display",), ("on",), ("quitter",)]
    assert value("set = 1; show = set + 1; examples = show * 10;") == 20


def test_a_whole_repl_session_parses_and_runs():
    prog = rasp.parse("""
        set example "hello"
        show example
        examples off
        full seq display on
        draw(tokens);
        x = tokens == "l";
        exit;
        y = 1;
    """)
    assert prog.example == "hello"
    assert "x" in prog and "y" not in prog   # exit stops the file


# ---- precedence -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # conditional is left-associative and binds looser than and/or
    ("a if b else c if d else e", "((a if b else c) if d else e)"),
    ("a if b or c else d", "(a if (b or c) else d)"),
    ("a or b if c else d", "((a or b) if c else d)"),
    # `in` is the loosest operator
    ("x in y if c else d", "(x in (y if c else d))"),
    ("a in b in c", "((a in b) in c)"),
    ("x + 1 in xs", "((x + 1) in xs)"),
    # and/or share one level, left-associative
    ("a or b and c", "((a or b) and c)"),
    ("a and b or c", "((a and b) or c)"),
    ("a == b and c < d", "((a == b) and (c < d))"),
    # comparisons are left-associative and looser than arithmetic
    ("a < b < c", "((a < b) < c)"),
    ("a == b + c", "(a == (b + c))"),
    ("a != b * c", "(a != (b * c))"),
    # + - < % < * / < ^
    ("a + b * c", "(a + (b * c))"),
    ("a - b - c", "((a - b) - c)"),
    ("a + b % c", "(a + (b % c))"),
    ("a % b * c", "(a % (b * c))"),
    ("a * b % c", "((a * b) % c)"),
    ("a / b * c", "((a / b) * c)"),
    ("a * b ^ c", "(a * (b ^ c))"),
    ("a ^ b ^ c", "((a ^ b) ^ c)"),
    # prefix operators bind tighter than every binary operator
    ("not a == b", "((not a) == b)"),
    ("not a and b", "((not a) and b)"),
    ("-x ^ 2", "((- x) ^ 2)"),
    ("-a * b", "((- a) * b)"),
    ("+a - -b", "((+ a) - (- b))"),
    ("not not a", "(not (not a))"),
    # indexing and calls bind tighter than prefix operators
    ("-f(x)", "(- f(x))"),
    ("not xs[0]", "(not xs[0])"),
    ("-a[1] ^ 2", "((- a[1]) ^ 2)"),
    # parentheses override everything
    ("(a + b) * c", "((a + b) * c)"),
    ("a if (b if c else d) else e", "(a if (b if c else d) else e)"),
    ("a or (b and c)", "(a or (b and c))"),
])
def test_precedence_shapes(text, expected):
    assert expr_shape(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("1 if 0 else 2 if 1 else 3", 2),      # (1 if 0 else 2) if 1 else 3
    ("1 if 1 else 2 if 0 else 3", 3),      # (1 if 1 else 2) if 0 else 3
    ("True or False and False", False),    # (True or False) and False
    ("False and True or True", True),      # (False and True) or True
    ("2 ^ 3 ^ 2", 64),                     # (2^3)^2
    ("-2 ^ 2", 4),                         # (-2)^2
    ("1 + 2 * 3 % 4", 3),                  # 1 + ((2*3) % 4)
    ("7 % 4 * 2", 7),                      # 7 % (4*2)
    ("10 - 4 - 3", 3),
    ("12 / 3 * 2", 8.0),
    ("not 1 == 0", True),                  # (not 1) == 0  -> False == 0 -> True
    ("1 in [1, 2] if 0 else [3]", False),  # 1 in ([1, 2] if 0 else [3])
    ("2 + 3 in [5]", True),
    ("1 < 2 == True", True),               # (1 < 2) == True
])
def test_precedence_values(text, expected):
    assert same(value(text + ";"), expected)


def test_precedence_on_sops_evaluates_elementwise():
    prog = rasp.parse("a = -indices ^ 2; b = not tokens == 'x';")
    assert rasp.evaluate(prog["a"], "abc") == [0, 1, 4]
    # (not tokens) == 'x': `not` of a non-empty string is False, never equal to 'x'
    assert rasp.evaluate(prog["b"], "xy") == [False, False]


# ---- spans ------------------------------------------------------------------------------

def test_nodes_carry_their_source_spans():
    (s,) = stmts("\n  x = foo + 12;")
    assert (s.span.line, s.span.column) == (2, 3)
    e = s.values[0]
    assert (e.span.line, e.span.column, e.span.end_column) == (2, 7, 15)
    assert e.span.text == "foo + 12"
    assert e.left.span.location == "t.rasp:2:7"
    assert e.right.span.location == "t.rasp:2:13"


def test_parse_expression_rejects_statements():
    with pytest.raises(rasp.RaspSyntaxError):
        parse_expression("x = 1")
    assert shape(parse_expression("a + b;")) == "(a + b)"


# ---- syntax errors ----------------------------------------------------------------------

def syntax_error(text: str, filename: str = "prog.rasp") -> rasp.RaspSyntaxError:
    with pytest.raises(rasp.RaspSyntaxError) as info:
        parse(text, filename)
    return info.value


def test_syntax_error_message_has_location_source_line_caret_and_expected():
    err = syntax_error("x = 1;\ny = 2 +;\n")
    text = str(err)
    lines = text.split("\n")
    assert lines[0].startswith("prog.rasp:2:8: syntax error: unexpected ';'")
    assert "expected" in lines[0] and "a name" in lines[0]
    assert lines[1] == "    y = 2 +;"
    assert lines[2] == "           ^"          # under the ';' (column 8)
    assert (err.span.line, err.span.column) == (2, 8)
    assert isinstance(err, rasp.RaspError)


def test_syntax_error_on_unexpected_character():
    err = syntax_error("a = 1 $ 2;")
    assert str(err).startswith("prog.rasp:1:7: syntax error: unexpected '$'")
    assert "expected" in str(err)
    assert str(err).split("\n")[2] == "          ^"


def test_syntax_error_at_end_of_input_points_after_the_last_character():
    err = syntax_error("x = (1 + 2")
    assert str(err).startswith("prog.rasp:1:11: syntax error: unexpected end of input; expected ')'")
    assert str(err).split("\n")[2].index("^") == 4 + 10


def test_missing_semicolon_is_reported_on_the_next_statement():
    err = syntax_error("x = 1\ny = 2;")
    assert (err.span.line, err.span.column) == (2, 1)
    assert "unexpected 'y'" in str(err) and "';'" in str(err)


def test_function_without_return_is_a_syntax_error():
    err = syntax_error("def f(a) {\n  x = a;\n}")
    assert err.span.line == 3
    assert "unexpected '}'" in str(err)


def test_unterminated_string_is_a_syntax_error():
    err = syntax_error('x = "abc;')
    assert (err.span.line, err.span.column) == (1, 5)
    assert "unexpected '\"'" in str(err)


def test_caret_respects_tabs_in_the_source_line():
    err = syntax_error("\tx = ;")
    lines = str(err).split("\n")
    assert lines[1] == "    \tx = ;"
    assert lines[2] == "    \t    ^"


@pytest.mark.parametrize("text", [
    "x = ;", "def f( { }", "for in x { }", "x = [1, 2;", "x = {1: };", "select(a, b, ==",
    "x = 1 2;", "f(x;", "x = 'a' 'b';", "1 = x;", "x.y = 1;", "x = a[];", "return 1;",
    "def f(x) { return x }", "x = a if b;", "load foo;", "x = @;", "x = 1 === 2;",
])
def test_malformed_programs_raise_syntax_errors_with_locations(text):
    err = syntax_error(text, "bad.rasp")
    first = str(err).split("\n")[0]
    assert first.startswith(f"bad.rasp:{err.span.line}:{err.span.column}: syntax error: unexpected ")
    assert "^" in str(err)


def test_rasp_parse_reports_the_given_filename():
    with pytest.raises(rasp.RaspSyntaxError) as info:
        rasp.parse("x = = 1;", filename="my/file.rasp")
    assert str(info.value).startswith("my/file.rasp:1:5:")
