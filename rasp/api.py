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

import numpy as np

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


_ATOMS = (str, int, float, bool, type(None), tuple)     # (tuples: values of joint s-ops)


def _sop_arg(value: Any, what: str) -> ir.SOp:
    """An s-op argument (an atom becomes a constant); anything else is the caller's mistake,
    said here rather than as a numpy error or a wrong model later (the text language
    checks the same when it builds)."""
    if isinstance(value, ir.SOp):
        return value
    if isinstance(value, ir.Node):
        raise TypeError(f"{what} must be an s-op or an atom, got the selector {value.name}")
    return to_sop(_atom_arg(value, what, "an s-op or an atom"))


def _atom_arg(value: Any, what: str, kinds: str = "an atom") -> Any:
    """An atom argument as the Python value (a numpy scalar: the value it equals)."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _ATOMS):
        raise TypeError(f"{what} must be {kinds} (str, int, float, bool, None or a tuple), "
                        f"got {type(value).__name__}")
    return value


def _selector_arg(value: Any, what: str) -> ir.Selector:
    if isinstance(value, ir.Selector):
        return value
    got = f"the s-op {value.name}" if isinstance(value, ir.Node) else type(value).__name__
    raise TypeError(f"{what} must be a selector (made by select, and/or/not of selects), got {got}")


def select(keys: Any, queries: Any, op: str) -> ir.Select:
    """Query i selects key j iff `keys[j] op queries[i]`; atoms become constants."""
    if not isinstance(op, str) or op not in _COMPARE_PY or op in ("TRUE", "FALSE"):
        raise ValueError(f"select's comparison must be one of == != < <= > >=, got {op!r}")
    return ir.Select(_sop_arg(keys, "select's keys"), _sop_arg(queries, "select's queries"),
                     ir.Predicate(_COMPARE_PY[op], op, comparison=op))


def aggregate(selector: ir.Selector, sop: Any, default: Any = _ABSENT) -> ir.Aggregate:
    """Mean of `sop` over the selected positions; `default` (0, or None for text) elsewhere."""
    selector = _selector_arg(selector, "aggregate's first argument")
    sop = _sop_arg(sop, "aggregate's second argument")
    if default is _ABSENT:
        default = None if is_text_type(static_type(sop)) else 0
    else:
        default = _atom_arg(default, "aggregate's default")
    return ir.Aggregate(selector, sop, default)


def selector_width(selector: ir.Selector) -> ir.SelectorWidth:
    return ir.SelectorWidth(_selector_arg(selector, "selector_width's argument"))


def map(fn: Callable[..., Any], *sops: Any, label: Optional[str] = None) -> ir.Map:  # noqa: A001
    """Apply a Python function elementwise to one or more s-ops (atoms become constants)."""
    if not callable(fn) or isinstance(fn, ir.Node):
        raise TypeError(f"map's first argument must be a Python function, got {type(fn).__name__}")
    if not sops:
        raise TypeError("map needs at least one s-op to apply the function to")
    inputs = tuple(_sop_arg(s, f"map's input {i + 1}") for i, s in enumerate(sops))
    return ir.Map(python_fn(fn, len(inputs), label), inputs)


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
