"""Build RASP IR from Python with the text language's semantics.

    from rasp import api as r
    same = r.select(r.tokens, r.tokens, "==")
    hist = r.selector_width(same)
    rev = r.aggregate(r.select(r.indices, r.length - r.indices - 1, "=="), r.tokens)
    r.evaluate(hist, "hello")      # [1, 1, 2, 2, 1]

S-op operators (`+`, `==`, `&`, ...) build elementwise maps exactly as the same
expression in a `.rasp` file would; `r.map` wraps any Python function.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import ir
from .build import _COMPARE_PY
from .interpreter import evaluate, evaluate_batch
from .ops import is_text_type, python_fn, to_sop
from .types import static_type

tokens = ir.Tokens("str")
tokens_str = tokens
tokens_int = ir.Tokens("int")
tokens_float = ir.Tokens("float")
tokens_bool = ir.Tokens("bool")
tokens_asis = ir.Tokens("asis")
indices = ir.Indices()
length = ir.Length()

_ABSENT = object()


def select(keys: Any, queries: Any, op: str) -> ir.Select:
    """Query i selects key j iff `keys[j] op queries[i]`; atoms become constants."""
    if op not in _COMPARE_PY or op in ("TRUE", "FALSE"):
        raise ValueError(f"select's comparison must be one of == != < <= > >=, got {op!r}")
    return ir.Select(to_sop(keys), to_sop(queries), ir.Predicate(_COMPARE_PY[op], op, comparison=op))


def aggregate(selector: ir.Selector, sop: Any, default: Any = _ABSENT) -> ir.Aggregate:
    """Mean of `sop` over the selected positions; `default` (0, or None for text) elsewhere."""
    sop = to_sop(sop)
    if default is _ABSENT:
        default = None if is_text_type(static_type(sop)) else 0
    return ir.Aggregate(selector, sop, default)


def selector_width(selector: ir.Selector) -> ir.SelectorWidth:
    return ir.SelectorWidth(selector)


def map(fn: Callable[..., Any], *sops: ir.SOp, label: Optional[str] = None) -> ir.Map:  # noqa: A001
    """Apply a Python function elementwise to one or more s-ops."""
    return ir.Map(python_fn(fn, len(sops), label), sops)


def constant(value: Any) -> ir.Constant:
    return ir.Constant(value)


def numerical(sop: ir.SOp) -> ir.SOp:
    """Hint the compiler to encode `sop` as one number (a single residual direction)."""
    return sop.annotated(encoding=ir.NUMERICAL)


def categorical(sop: ir.SOp) -> ir.SOp:
    """Hint the compiler to encode `sop` one-hot."""
    return sop.annotated(encoding=ir.CATEGORICAL)


full_s = select(1, 1, "==")

__all__ = ["tokens", "tokens_str", "tokens_int", "tokens_float", "tokens_bool", "tokens_asis", "indices",
           "length", "select", "aggregate", "selector_width", "map", "constant", "numerical", "categorical",
           "full_s", "evaluate", "evaluate_batch"]
