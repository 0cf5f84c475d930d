"""Static value types of s-ops: which Python types an s-op's values can have.

Used where the semantics depend on the kind of values before any input is seen:
the text language's `aggregate` without a default yields 0 for numbers and None for
strings, and the compiler decides how to decode an output.
"""

from __future__ import annotations

from . import ir
from .ops import ANY, BOOL, FLOAT, INT, STR, type_of_atom

_TOKEN_TYPES = {"str": STR, "int": INT, "float": FLOAT, "bool": BOOL, "asis": ANY}


def static_type(node: ir.SOp) -> frozenset:
    """The set of Python types `node`'s values may take ({object} when unknown)."""
    cache: dict[int, frozenset] = {}
    for n in ir.topological_order([node]):
        if isinstance(n, ir.SOp):
            cache[n.id] = _type_of(n, cache)
    return cache[node.id]


def _type_of(node: ir.SOp, cache: dict[int, frozenset]) -> frozenset:
    if isinstance(node, ir.Tokens):
        return _TOKEN_TYPES[node.conversion]
    if isinstance(node, (ir.Indices, ir.Length, ir.SelectorWidth)):
        return INT
    if isinstance(node, ir.Constant):
        return type_of_atom(node.value)
    if isinstance(node, ir.ConstantSequence):
        return frozenset(type(v) for v in node.values) or ANY
    if isinstance(node, ir.Map):
        if node.fn.out_types is None:
            return ANY
        try:
            return frozenset(node.fn.out_types(*(cache[c.id] for c in node.inputs)))
        except Exception:
            return ANY
    if isinstance(node, ir.Aggregate):
        inner = cache[node.sop.id]
        result = inner | type_of_atom(node.default)
        if node.semantics == "tracr" and inner & {int, bool}:
            result |= FLOAT
        elif inner & {int, float} and object not in inner:
            result |= FLOAT
        return result
    return ANY
