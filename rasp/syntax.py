"""The RASP abstract syntax tree: plain immutable records, each with its source span.

The parser produces these; the builder (`rasp.build`) walks them to make IR.
Keeping the AST separate from Lark's parse tree lets the builder, the REPL and the
error messages work with named fields instead of positional children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from .source import Span


# ---- expressions -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Num:
    value: Union[int, float]
    span: Span


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class UnOp:
    op: str
    operand: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class IfElse:
    then: "Expr"
    cond: "Expr"
    otherwise: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Contains:
    item: "Expr"
    container: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Index:
    obj: "Expr"
    index: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class OpArg:
    """A comparison operator passed as an argument, as in `select(k, q, <=)`."""

    op: str
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    func: "Expr"
    args: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DictLit:
    pairs: tuple[tuple["Expr", "Expr"], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ListComp:
    expr: "Expr"
    names: tuple[str, ...]
    iterable: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class DictComp:
    key: "Expr"
    value: "Expr"
    names: tuple[str, ...]
    iterable: "Expr"
    span: Span


Expr = Union[Num, Str, Var, BinOp, UnOp, IfElse, Contains, Index, OpArg, Call,
             ListLit, DictLit, ListComp, DictComp]


# ---- statements --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Assign:
    names: tuple[str, ...]
    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ExprStmt:
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Load:
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class Draw:
    expr: Expr
    example: Optional[Expr]
    span: Span


@dataclass(frozen=True, slots=True)
class FuncDef:
    name: str
    params: tuple[str, ...]
    body: tuple["Stmt", ...]
    returns: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ForLoop:
    names: tuple[str, ...]
    iterable: Expr
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SetExample:
    subset: str  # "both", "s-op" or "selector"
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ReplCommand:
    """`show example`, `examples on/off`, `full seq display on/off`, `exit`: REPL-only."""

    command: str
    argument: str
    span: Span


Stmt = Union[Assign, ExprStmt, Load, Draw, FuncDef, ForLoop, SetExample, ReplCommand]


@dataclass(frozen=True, slots=True)
class Module:
    """A parsed file: its statements in order."""

    statements: tuple[Stmt, ...]
    filename: str
