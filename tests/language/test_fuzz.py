"""Property-based tests (hypothesis) for the parser, the builder and the interpreter.

* arbitrary text never makes the parser raise anything but RaspSyntaxError, and never
  makes `rasp.parse` raise anything but a RaspError;
* random programs that look valid (random statements and untyped expressions over the
  language's names) only ever fail with RaspErrors;
* random well-typed s-op programs agree with a small reference evaluator written here
  from the semantics (values and Python types), and batched evaluation equals
  one-by-one evaluation.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rasp
from rasp.parser import parse

from .helpers import same

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- arbitrary text ---------------------------------------------------------------------

FRAGMENTS = ["x", "y", "f", "tokens", "indices", "length", "select", "aggregate", "def", "for", "in",
             "return", "load", "if", "else", "and", "or", "not", "set", "example", "show", "examples",
             "on", "off", "full", "seq", "display", "exit", "quit", "draw", "s-op", "selector",
             "(", ")", "[", "]", "{", "}", ",", ";", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-",
             "*", "/", "%", "^", "#", "\"", "'", "\n", " ", "\t", "0", "1", "2.5", ".5", "1e3", "'a'",
             "\"b\"", "_", "@", "$", "\\", "\x00", "é", "→"]

rasp_ish_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=80), rasp_ish_text)


@FAST
@given(any_text)
def test_parser_raises_only_syntax_errors(text):
    try:
        parse(text, "fuzz.rasp")
    except rasp.RaspSyntaxError as err:
        message = str(err)
        assert message.startswith(f"fuzz.rasp:{err.span.line}:{err.span.column}: syntax error: ")
        assert err.span.line >= 1 and err.span.column >= 1


@FAST
@given(any_text)
def test_rasp_parse_raises_only_rasp_errors(text):
    try:
        rasp.parse(text, "fuzz.rasp")
    except rasp.RaspError:
        pass


# ---- valid-looking programs (untyped) ---------------------------------------------------

NAMES = ["tokens", "tokens_int", "tokens_str", "tokens_asis", "indices", "length", "full_s", "x", "y",
         "f", "g", "True", "False", "select", "aggregate", "selector_width", "round", "indicator",
         "range", "len", "zip", "numerical", "categorical", "sort", "shift", "count", "contains",
         "max", "min", "average", "has_focus", "load_from_location", "mark_first_instance",
         "select_next_identical", "select_from_last"]
BINOPS = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in"]
COMPARE = ["==", "!=", "<", "<=", ">", ">="]


def untyped_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(NAMES),
        st.integers(-2, 3).map(str),
        st.sampled_from(["0.5", "'a'", "\"b\"", "''", "[]", "{}"]),
    )
    if depth <= 0:
        return leaves
    sub = untyped_expr(depth - 1)
    args = st.lists(st.one_of(sub, st.sampled_from(COMPARE)), max_size=3).map(", ".join)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(BINOPS), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, st.integers(0, 2)).map(lambda t: f"({t[0]} ^ {t[1]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), sub).map(lambda t: f"({t[0]}{t[1]})"),
        st.tuples(sub, sub, sub).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(sub, args).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.lists(sub, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(sub, sub).map(lambda t: "{" + f"{t[0]}: {t[1]}" + "}"),
        st.tuples(sub, sub).map(lambda t: f"[{t[0]} for x in {t[1]}]"),
    )


def untyped_stmt(depth: int) -> st.SearchStrategy[str]:
    e = untyped_expr(2)
    simple = st.one_of(
        st.tuples(st.sampled_from(["x", "y", "f", "z"]), e).map(lambda t: f"{t[0]} = {t[1]};"),
        st.tuples(e, e).map(lambda t: f"x, y = {t[0]}, {t[1]};"),
        e.map(lambda s: f"{s};"),
        st.just("set example \"abc\";"),
        st.just("show example"),
    )
    if depth <= 0:
        return simple
    body = st.lists(untyped_stmt(depth - 1), max_size=3).map(" ".join)
    return st.one_of(
        simple,
        st.tuples(body, e).map(lambda t: f"def f(a, b) {{ {t[0]} return {t[1]}; }}"),
        st.tuples(body, e).map(lambda t: f"def g(x) {{ {t[0]} return {t[1]}; }}"),
        st.tuples(st.integers(0, 3), body).map(lambda t: f"for x in range({t[0]}) {{ {t[1]} }}"),
        st.tuples(e, body).map(lambda t: f"for y in {t[0]} {{ {t[1]} }}"),
    )


untyped_statements = st.lists(untyped_stmt(2), min_size=1, max_size=6)


def build_and_run(text: str, example: str) -> None:
    try:
        prog = rasp.parse(text, "gen.rasp")
        for name in ["out", *prog.names()]:
            value = prog.get(name)
            if isinstance(value, rasp.Node):
                rasp.evaluate(value, example)
    except rasp.RaspError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(untyped_statements, st.sampled_from(["", "a", "ab1", "1221", "hello"]))
def test_valid_looking_programs_raise_only_rasp_errors(statements, example):
    text = "\n".join(statements)
    try:
        parse(text, "gen.rasp")
    except rasp.RaspSyntaxError:  # pragma: no cover - the generator makes parseable text
        pytest.fail(f"generated program does not parse:\n{text}")
    build_and_run(text, example)
    # most random programs stop at their first type error: also run each statement alone
    for statement in statements:
        build_and_run(statement, example)


# ---- typed s-op programs against a reference evaluator ----------------------------------
#
# Kinds: "I" int-valued s-op, "F" number-valued s-op (int or float), "B" bool s-op,
# "T" string s-op, "S" selector. Inputs are lists of digit strings, so both `tokens`
# ("12") and `tokens_int` (12) apply. Only int-valued s-ops are averaged, so every
# float is (exact int sum) / count, rounded once: the interpreter and the reference
# must agree bit for bit, types included. String aggregates and indexing produce None
# where nothing is selected; None then flows through every elementwise operation (as
# None), never matches in a select, and must equal its fellow values in an aggregate.

ARITH = ["+", "-", "*"]
STRINGS = ["1", "2", "x", ""]


def const(values: st.SearchStrategy) -> st.SearchStrategy[tuple]:
    return values.map(lambda v: ("const", v))


small_int = st.integers(-2, 3)


@st.composite
def typed(draw, kind: str, depth: int) -> tuple:
    d = depth - 1
    if kind == "S":
        c = draw(st.sampled_from(["select", "select_t"] + (["sand", "sor", "snot"] if depth > 0 else [])))
        if c == "select":
            keys = draw(st.one_of(typed("F", d), const(small_int)))
            queries = draw(st.one_of(typed("F", d), const(small_int)))
            return ("select", keys, queries, draw(st.sampled_from(COMPARE)))
        if c == "select_t":
            keys = draw(st.one_of(typed("T", d), const(st.sampled_from(STRINGS))))
            return ("select", keys, draw(typed("T", d)), draw(st.sampled_from(COMPARE)))
        if c == "snot":
            return ("snot", draw(typed("S", d)))
        return (c, draw(typed("S", d)), draw(typed("S", d)))
    if depth <= 0:
        if kind == "B":
            return ("cmp", draw(st.sampled_from(COMPARE)), draw(typed("I", 0)), draw(const(small_int)))
        if kind == "T":
            return ("tokens",)
        return (draw(st.sampled_from(["tokens_int", "indices", "length"])),)
    if kind == "I":
        c = draw(st.sampled_from(["leaf", "arith", "neg", "width", "ind", "ite", "round", "arithc"]))
        if c == "leaf":
            return draw(typed("I", 0))
        if c == "arith":
            return ("bin", draw(st.sampled_from(ARITH)), draw(typed("I", d)), draw(typed("I", d)))
        if c == "arithc":
            return ("bin", draw(st.sampled_from(ARITH + ["%"])), draw(typed("I", d)), draw(const(small_int)))
        if c == "neg":
            return ("neg", draw(typed("I", d)))
        if c == "width":
            return ("width", draw(typed("S", d)))
        if c == "ind":
            return ("ind", draw(typed("B", d)))
        if c == "round":
            return ("round", draw(typed("F", d)))
        return ("ite", draw(typed("B", d)), draw(typed("I", d)), draw(st.one_of(typed("I", d), const(small_int))))
    if kind == "F":
        c = draw(st.sampled_from(["int", "agg", "agg_default", "arith", "div", "mod", "pow", "ite", "index"]))
        if c == "int":
            return draw(typed("I", depth))
        if c == "agg":
            return ("agg", draw(typed("S", d)), draw(typed("I", d)), None)
        if c == "agg_default":
            return ("agg", draw(typed("S", d)), draw(typed("I", d)), draw(small_int))
        if c in ("arith", "div", "mod"):
            op = {"div": "/", "mod": "%"}.get(c) or draw(st.sampled_from(ARITH))
            return ("bin", op, draw(typed("F", d)), draw(typed("F", d)))
        if c == "pow":
            return ("bin", "^", draw(typed("F", d)), draw(const(st.integers(-1, 2))))
        if c == "index":
            return ("index", draw(typed("F", d)), draw(st.integers(-3, 3)))
        return ("ite", draw(typed("B", d)), draw(typed("F", d)), draw(typed("F", d)))
    if kind == "T":
        c = draw(st.sampled_from(["leaf", "cat", "catc", "ite", "itec", "agg", "agg_default", "index", "lookup"]))
        if c == "leaf":
            return ("tokens",)
        if c == "cat":
            return ("bin", "+", draw(typed("T", d)), draw(typed("T", d)))
        if c == "catc":
            return ("bin", "+", draw(typed("T", d)), draw(const(st.sampled_from(STRINGS))))
        if c == "ite":
            return ("ite", draw(typed("B", d)), draw(typed("T", d)), draw(typed("T", d)))
        if c == "itec":
            return ("ite", draw(typed("B", d)), draw(const(st.sampled_from(STRINGS))), draw(typed("T", d)))
        if c == "agg":
            return ("agg", draw(typed("S", d)), draw(typed("T", d)), None)
        if c == "agg_default":
            return ("agg", draw(typed("S", d)), draw(typed("T", d)), draw(st.sampled_from(STRINGS)))
        if c == "index":
            return ("index", draw(typed("T", d)), draw(st.integers(-3, 3)))
        return ("lookup", draw(st.sampled_from(["xyz", "pq"])), draw(typed("I", d)))
    # kind == "B"
    c = draw(st.sampled_from(["cmp", "cmpc", "cmpt", "not", "logic", "member", "member_t", "occurs", "aggb"]))
    if c == "cmp":
        return ("cmp", draw(st.sampled_from(COMPARE)), draw(typed("F", d)), draw(typed("F", d)))
    if c == "cmpc":
        return ("cmp", draw(st.sampled_from(COMPARE)), draw(typed("F", d)), draw(const(small_int)))
    if c == "cmpt":
        right = draw(st.one_of(typed("T", d), const(st.sampled_from(STRINGS))))
        return ("cmp", draw(st.sampled_from(COMPARE)), draw(typed("T", d)), right)
    if c == "not":
        return ("not", draw(typed("B", d)))
    if c == "logic":
        return ("logic", draw(st.sampled_from(["and", "or"])), draw(typed("B", d)), draw(typed("B", d)))
    if c == "member":
        return ("member", draw(typed("F", d)), draw(st.lists(small_int, max_size=3)))
    if c == "member_t":
        return ("member", draw(typed("T", d)), draw(st.lists(st.sampled_from(STRINGS), max_size=3)))
    if c == "occurs":
        return ("occurs", draw(st.one_of(small_int, st.sampled_from(STRINGS))), draw(typed("F", d)))
    return ("agg", draw(typed("S", d)), draw(typed("B", d)), None)


def render(e: tuple) -> str:
    tag = e[0]
    if tag in ("tokens", "tokens_int", "indices", "length"):
        return tag
    if tag == "const":
        return f"({e[1]!r})"
    if tag in ("bin", "cmp", "logic"):
        return f"({render(e[2])} {e[1]} {render(e[3])})"
    if tag == "neg":
        return f"(-{render(e[1])})"
    if tag in ("width", "ind", "round"):
        fn = {"width": "selector_width", "ind": "indicator", "round": "round"}[tag]
        return f"{fn}({render(e[1])})"
    if tag == "ite":
        return f"({render(e[2])} if {render(e[1])} else {render(e[3])})"
    if tag == "agg":
        default = "" if e[3] is None else f", {e[3]!r}"
        return f"aggregate({render(e[1])}, {render(e[2])}{default})"
    if tag == "index":
        return f"{render(e[1])}[{e[2]}]"
    if tag == "lookup":
        return f"{e[1]!r}[{render(e[2])}]"
    if tag in ("not", "snot"):
        return f"(not {render(e[1])})"
    if tag == "member":
        return f"({render(e[1])} in {e[2]!r})"
    if tag == "occurs":
        return f"(({e[1]!r}) in {render(e[2])})"
    if tag == "select":
        return f"select({render(e[1])}, {render(e[2])}, {e[3]})"
    if tag in ("sand", "sor"):
        return f"({render(e[1])} {'and' if tag == 'sand' else 'or'} {render(e[2])})"
    raise AssertionError(tag)


class RefError(Exception):
    """The reference semantics say: this input is an evaluation error."""


_PY = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": lambda a, b: a % b, "^": lambda a, b: a ** b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b),
}


def lift(f, *columns: list) -> list:
    """An elementwise operation: None wherever an input is None, Python errors are RefErrors."""
    out = []
    for args in zip(*columns):
        if any(a is None for a in args):
            out.append(None)
            continue
        try:
            value = f(*args)
        except (ZeroDivisionError, OverflowError, IndexError) as exc:
            raise RefError(exc) from None
        if isinstance(value, complex):
            raise RefError("complex")
        out.append(value)
    return out


def mean_rule(chosen: list, default: Any) -> Any:
    """The text language's aggregate of the values selected by one query."""
    if not chosen:
        return default
    if len(chosen) == 1:
        return chosen[0]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in chosen):
        return sum(chosen) / len(chosen)
    if all(type(v) is type(chosen[0]) and v == chosen[0] for v in chosen):
        return chosen[0]
    raise RefError("non-numeric values differ")


def ref(e: tuple, xs: list) -> Any:
    """Reference value of `e` on input `xs`: a list per s-op, a 0/1 matrix per selector."""
    n = len(xs)
    tag = e[0]
    if tag == "tokens":
        return [str(x) for x in xs]
    if tag == "tokens_int":
        return [int(x) for x in xs]
    if tag == "indices":
        return list(range(n))
    if tag == "length":
        return [n] * n
    if tag == "const":
        return [e[1]] * n
    if tag in ("bin", "cmp", "logic"):
        return lift(_PY[e[1]], ref(e[2], xs), ref(e[3], xs))
    if tag == "neg":
        return lift(lambda v: -v, ref(e[1], xs))
    if tag == "width":
        return [sum(row) for row in ref(e[1], xs)]
    if tag == "ind":
        return lift(lambda v: 1 if v else 0, ref(e[1], xs))
    if tag == "round":
        return lift(round, ref(e[1], xs))
    if tag == "ite":
        return lift(lambda c, a, b: a if c else b, ref(e[1], xs), ref(e[2], xs), ref(e[3], xs))
    if tag == "not":
        return lift(lambda v: not v, ref(e[1], xs))
    if tag == "member":
        return lift(lambda v: v in e[2], ref(e[1], xs))
    if tag == "lookup":
        return lift(lambda i: e[1][i], ref(e[2], xs))   # out of range: IndexError -> RefError
    if tag == "occurs":
        # `c in X` is `aggregate(full, indicator(X == c)) > 0`
        flags = lift(lambda v: 1 if v == e[1] else 0, ref(e[2], xs))
        return lift(lambda m: m > 0, [mean_rule(flags, 0) for _ in range(n)])
    if tag == "index":
        vals = ref(e[1], xs)
        i = e[2] if e[2] >= 0 else n + e[2]
        default = None if text_valued(e[1]) else 0
        return [vals[i] if 0 <= i < n else default] * n
    if tag == "agg":
        sel, vals = ref(e[1], xs), ref(e[2], xs)
        default = e[3] if e[3] is not None else (None if text_valued(e[2]) else 0)
        return [mean_rule([v for v, s in zip(vals, row) if s], default) for row in sel]
    if tag == "select":
        keys, queries, op = ref(e[1], xs), ref(e[2], xs), _PY[e[3]]
        return [[0 if k is None or q is None else int(op(k, q)) for k in keys] for q in queries]
    if tag in ("sand", "sor"):
        a, b = ref(e[1], xs), ref(e[2], xs)
        f = (lambda x, y: x & y) if tag == "sand" else (lambda x, y: x | y)
        return [[f(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    if tag == "snot":
        return [[1 - x for x in row] for row in ref(e[1], xs)]
    raise AssertionError(tag)


def text_valued(e: tuple) -> bool:
    """Whether an expression of the generator is string-valued (the "T" productions)."""
    tag = e[0]
    if tag in ("tokens", "lookup"):
        return True
    if tag == "const":
        return isinstance(e[1], str)
    if tag == "bin":
        return e[1] == "+" and text_valued(e[2])
    if tag == "ite":
        return text_valued(e[3])
    if tag in ("agg", "index"):
        return text_valued(e[2] if tag == "agg" else e[1])
    return False


digit_inputs = st.lists(st.lists(st.sampled_from(["0", "1", "2", "3", "-1", "-2"]), max_size=6),
                        min_size=1, max_size=6)


def check_program(expr: tuple, inputs: list) -> None:
    text = f"result = {render(expr)};"
    node = rasp.parse(text, "typed.rasp")["result"]
    assert isinstance(node, rasp.Node), text
    singles = []
    for xs in inputs:
        try:
            expected = ref(expr, xs)
        except RefError:
            expected = RefError
        try:
            actual = rasp.evaluate(node, xs)
        except rasp.RaspRuntimeError:
            actual = RefError
        assert actual is expected if expected is RefError else same(actual, expected), \
            f"{text}\non {xs}: interpreter {actual!r}, reference {expected!r}"
        singles.append(actual)
    if RefError not in singles:
        assert same(rasp.evaluate_batch(node, inputs), singles), text
    else:
        with pytest.raises(rasp.RaspRuntimeError):
            rasp.evaluate_batch(node, inputs)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["I", "F", "B", "T", "S"]).flatmap(lambda k: typed(k, 3)), digit_inputs)
def test_typed_programs_match_the_reference_semantics(expr, inputs):
    check_program(expr, inputs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["F", "T"]).flatmap(lambda k: typed(k, 4)),
       st.lists(st.lists(st.sampled_from(["0", "1", "2", "3"]), min_size=2, max_size=8), min_size=2, max_size=20))
def test_deeper_programs_batched_equals_one_by_one(expr, inputs):
    node = rasp.parse(f"result = {render(expr)};")["result"]
    singles = []
    for xs in inputs:
        try:
            singles.append(rasp.evaluate(node, xs))
        except rasp.RaspRuntimeError:
            assume(False)
    assert same(rasp.evaluate_batch(node, inputs), singles)


def test_reference_examples_by_hand():
    # guard the reference itself with a few hand-computed cases
    e = ("agg", ("select", ("indices",), ("indices",), "<="), ("tokens_int",), None)
    assert render(e) == "aggregate(select(indices, indices, <=), tokens_int)"
    assert same(ref(e, ["1", "2", "6"]), [1, 1.5, 3.0])
    assert same(ref(("occurs", 2, ("tokens_int",)), ["1", "2"]), [True, True])
    assert same(ref(("index", ("tokens_int",), -1), ["4", "5"]), [5, 5])
    assert same(ref(("index", ("tokens",), 3), ["4", "5"]), [None, None])
    # None (nothing selected) flows through elementwise operations and never matches
    shifted = ("agg", ("select", ("indices",), ("bin", "-", ("indices",), ("const", 1)), "=="), ("tokens",), None)
    assert same(ref(shifted, ["a", "b"]), [None, "a"])
    assert same(ref(("bin", "+", shifted, ("const", "!")), ["a", "b"]), [None, "a!"])
    assert same(ref(("select", shifted, ("tokens",), "=="), ["a", "a"]), [[0, 1], [0, 1]])
    with pytest.raises(RefError):
        ref(("agg", ("select", ("const", 1), ("const", 1), "=="), ("tokens",), None), ["a", "b"])
