"""Parse RASP text into the AST of `rasp.syntax` with the Lark grammar `grammar.lark`.

LALR keeps parsing linear and fast; every Lark error becomes one `RaspSyntaxError`
with file, line, column, the source line, a caret and what was expected.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import syntax as ast
from .errors import RaspSyntaxError
from .source import Source, Span, point_span

_GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

# Human names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "SET_EXAMPLE": "'set example'",
    "SHOW_EXAMPLE": "'show example'",
    "TOGGLE_EXAMPLES": "'examples on/off'",
    "FULL_SEQ_DISPLAY": "'full seq display on/off'",
    "EXIT": "'exit'",
    "$END": "end of input",
}


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_GRAMMAR_PATH.read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=True)


def _unquote(token: str) -> str:
    return token[1:-1]


class _ToAst(Transformer):
    """Lark parse tree -> `rasp.syntax` records (one method per grammar alias)."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source

    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return point_span(self.source, 1, 1)
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    # ---- literals and names
    def int_lit(self, children):
        (tok,) = children
        return ast.Num(int(tok), self._tok_span(tok))

    def float_lit(self, children):
        (tok,) = children
        return ast.Num(float(tok), self._tok_span(tok))

    def str_lit(self, children):
        (tok,) = children
        return ast.Str(_unquote(str(tok)), self._tok_span(tok))

    def var(self, children):
        (tok,) = children
        return ast.Var(str(tok), self._tok_span(tok))

    # ---- operators
    @v_args(meta=True)
    def binop(self, meta, children):
        left, op, right = children
        return ast.BinOp(str(op), left, right, self._span(meta))

    @v_args(meta=True)
    def unop(self, meta, children):
        op, operand = children
        return ast.UnOp(str(op), operand, self._span(meta))

    @v_args(meta=True)
    def ifelse(self, meta, children):
        then, cond, otherwise = children
        return ast.IfElse(then, cond, otherwise, self._span(meta))

    @v_args(meta=True)
    def contains(self, meta, children):
        item, container = children
        return ast.Contains(item, container, self._span(meta))

    @v_args(meta=True)
    def index(self, meta, children):
        obj, idx = children
        return ast.Index(obj, idx, self._span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        func, args = children
        return ast.Call(func, tuple(args or ()), self._span(meta))

    def args(self, children):
        return list(children)

    def op_arg(self, children):
        (tok,) = children
        return ast.OpArg(str(tok), self._tok_span(tok))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        (items,) = children
        return ast.ListLit(tuple(items or ()), self._span(meta))

    @v_args(meta=True)
    def dict_lit(self, meta, children):
        (pairs,) = children
        return ast.DictLit(tuple(pairs or ()), self._span(meta))

    def pairs(self, children):
        return list(children)

    def pair(self, children):
        return (children[0], children[1])

    @v_args(meta=True)
    def list_comp(self, meta, children):
        expr, names, iterable = children
        return ast.ListComp(expr, names, iterable, self._span(meta))

    @v_args(meta=True)
    def dict_comp(self, meta, children):
        key, value, names, iterable = children
        return ast.DictComp(key, value, names, iterable, self._span(meta))

    def names(self, children):
        return tuple(str(t) for t in children)

    def exprs(self, children):
        return tuple(children)

    # ---- statements
    @v_args(meta=True)
    def assign(self, meta, children):
        names, values = children
        return ast.Assign(names, values, self._span(meta))

    @v_args(meta=True)
    def expr_stmt(self, meta, children):
        (expr,) = children
        return ast.ExprStmt(expr, self._span(meta))

    @v_args(meta=True)
    def load(self, meta, children):
        (tok,) = children
        return ast.Load(_unquote(str(tok)), self._span(meta))

    @v_args(meta=True)
    def draw(self, meta, children):
        expr = children[0]
        example = children[1] if len(children) > 1 else None
        return ast.Draw(expr, example, self._span(meta))

    @v_args(meta=True)
    def funcdef(self, meta, children):
        name, params, body = children
        statements, returns = body
        return ast.FuncDef(str(name), tuple(params or ()), statements, returns, self._span(meta))

    def body(self, children):
        *statements, ret = children
        return tuple(statements), ret

    def return_stmt(self, children):
        (values,) = children
        return values

    @v_args(meta=True)
    def forloop(self, meta, children):
        names, iterable, body = children
        return ast.ForLoop(names, iterable, body, self._span(meta))

    def loop_body(self, children):
        return tuple(children)

    @staticmethod
    def _subset(text: str) -> str:
        if "s-op" in text:
            return "s-op"
        if "selector" in text:
            return "selector"
        return "both"

    @v_args(meta=True)
    def set_example(self, meta, children):
        tok, expr = children
        return ast.SetExample(self._subset(str(tok)), expr, self._span(meta))

    @v_args(meta=True)
    def show_example(self, meta, children):
        (tok,) = children
        return ast.ReplCommand("show example", self._subset(str(tok)), self._span(meta))

    @v_args(meta=True)
    def toggle_examples(self, meta, children):
        (tok,) = children
        text = str(tok)
        switch = "on" if text.rstrip().endswith("on") else "off"
        return ast.ReplCommand("examples", f"{self._subset(text)} {switch}", self._span(meta))

    @v_args(meta=True)
    def toggle_seq_display(self, meta, children):
        (tok,) = children
        switch = "on" if str(tok).rstrip().endswith("on") else "off"
        return ast.ReplCommand("full seq display", switch, self._span(meta))

    @v_args(meta=True)
    def exit_cmd(self, meta, children):
        return ast.ReplCommand("exit", "", self._span(meta))

    def start(self, children):
        return tuple(children)


def _describe_expected(expected: set[str]) -> str:
    parser = _lark()
    names = []
    for term in sorted(expected):
        if term in _TERMINAL_NAMES:
            names.append(_TERMINAL_NAMES[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
        except KeyError:
            names.append(term)
            continue
        if isinstance(pattern, lark.lexer.PatternStr):
            names.append(f"'{pattern.value}'")
        else:
            names.append(term.lower())
    names = sorted(set(names))
    if len(names) > 12:
        names = names[:12] + ["..."]
    return ", ".join(names)


def _syntax_error(err: UnexpectedInput, source: Source) -> RaspSyntaxError:
    line = getattr(err, "line", None) or 1
    column = getattr(err, "column", None) or 1
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        lines = source.text.rstrip().split("\n")
        line = max(1, len(lines))
        column = len(source.line(line).rstrip()) + 1
        found = "end of input"
        expected = getattr(err, "expected", set())
    elif isinstance(err, UnexpectedToken):
        found = repr(str(err.token))
        expected = err.expected
    elif isinstance(err, UnexpectedCharacters):
        found = repr(source.line(line)[column - 1:column] or "?")
        expected = err.allowed or set()
    else:  # pragma: no cover - other Lark input errors
        found = "input"
        expected = set()
    message = f"unexpected {found}"
    if expected:
        message += f"; expected {_describe_expected(set(expected))}"
    return RaspSyntaxError(message, point_span(source, line, column))


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse RASP source text; raises `RaspSyntaxError` on any malformed input."""
    source = Source(text, filename)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, source) from None
    except lark.exceptions.LarkError as err:  # pragma: no cover - defensive
        raise RaspSyntaxError(str(err), point_span(source, 1, 1)) from None
    try:
        statements = _transform(tree, source)
    except RecursionError:
        raise RaspSyntaxError("expression nested too deeply", point_span(source, 1, 1)) from None
    return ast.Module(statements, filename)


def _transform(tree: lark.Tree, source: Source) -> tuple:
    limit = sys.getrecursionlimit()
    if limit < 20000:
        sys.setrecursionlimit(20000)
    try:
        return _ToAst(source).transform(tree)
    except lark.exceptions.VisitError as err:
        if isinstance(err.orig_exc, RecursionError):
            raise RecursionError from None
        raise
    finally:
        sys.setrecursionlimit(limit)


def parse_expression(text: str, filename: str = "<string>") -> ast.Expr:
    """Parse a single expression (used by the REPL and the CLI)."""
    module = parse(text.rstrip().rstrip(";") + ";", filename)
    if len(module.statements) != 1 or not isinstance(module.statements[0], ast.ExprStmt):
        raise RaspSyntaxError("expected a single expression", point_span(Source(text, filename), 1, 1))
    return module.statements[0].expr
