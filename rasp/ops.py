"""Elementwise operations of the text language, with Python scalar semantics and numpy twins.

Each operation exists once as a scalar Python function (the truth, also used to fold
constants at definition time) and optionally as a vectorised numpy function that must
agree with it; unusual dtype combinations raise `NotImplementedError` in the numpy
version and the interpreter falls back to the scalar one, which then produces the
exact Python result or the exact Python error.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Optional

import numpy as np

from .ir import ElementFn, Map, Node, Origin, SOp, Constant

# ---- static value types ---------------------------------------------------------------
# A static type is a frozenset of Python types a value may have; ANY means unknown.

ANY = frozenset({object})
INT = frozenset({int})
FLOAT = frozenset({float})
BOOL = frozenset({bool})
STR = frozenset({str})
NUMBER = frozenset({int, float})


def type_of_atom(value: Any) -> frozenset:
    if value is None:
        return frozenset({type(None)})
    return frozenset({type(value)})


def is_numeric_type(types: frozenset) -> bool:
    return object not in types and types <= {int, float, bool}


def is_text_type(types: frozenset) -> bool:
    return object not in types and types <= {str, type(None)} and str in types


# ---- scalar semantics -----------------------------------------------------------------

def _truth(x: Any) -> bool:
    return bool(x)


def _py_div(a, b):
    return a / b


def _py_pow(a, b):
    result = pow(a, b)
    if isinstance(result, complex):
        raise ValueError(f"{a} ^ {b} is not a real number")
    return result


_PY_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _py_div,
    "%": operator.mod,
    "^": _py_pow,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    # On s-ops, `and`/`or` give booleans (as in the original RASP); on atoms the
    # builder uses Python's `and`/`or` directly.
    "and": lambda a, b: bool(a) and bool(b),
    "or": lambda a, b: bool(a) or bool(b),
}


def _py_round(x):
    if isinstance(x, str):
        raise TypeError(f"cannot round a string ({x!r})")
    return round(x)


def _py_indicator(x):
    return 1 if x else 0


def _py_neg(x):
    return -x


def _py_pos(x):
    return +x


_PY_UNARY: dict[str, Callable[[Any], Any]] = {
    "-": _py_neg,
    "+": _py_pos,
    "not": lambda x: not x,
    "round": _py_round,
    "indicator": _py_indicator,
}


def python_binary(op: str, a: Any, b: Any) -> Any:
    """Apply a binary operator to two atoms (Python semantics)."""
    return _PY_BINARY[op](a, b)


def python_unary(op: str, a: Any) -> Any:
    return _PY_UNARY[op](a)


# ---- numpy twins ----------------------------------------------------------------------

def _kind(a: Any) -> str:
    """'b' bool, 'i' int, 'f' float, 'U' str, 'O' other; for arrays and scalars."""
    if isinstance(a, np.ndarray):
        k = a.dtype.kind
        if k in "biufU":
            return "i" if k == "u" else k
        return "O"
    if isinstance(a, bool):
        return "b"
    if isinstance(a, int):
        return "i" if abs(a) < 2 ** 62 else "O"
    if isinstance(a, float):
        return "f"
    if isinstance(a, str):
        return "U"
    return "O"


def _as_num(a: Any) -> Any:
    if isinstance(a, np.ndarray) and a.dtype.kind == "b":
        return a.astype(np.int64)
    if isinstance(a, bool):
        return int(a)
    return a


def _numeric(*xs: Any) -> bool:
    return all(_kind(x) in "bif" for x in xs)


def _textual(*xs: Any) -> bool:
    return all(_kind(x) == "U" for x in xs)


def _check_int_range(result: Any) -> Any:
    if isinstance(result, np.ndarray) and result.dtype.kind == "i":
        # int64 arithmetic could wrap where Python's ints would not; fall back then.
        if result.size and (result.max() > 2 ** 62 or result.min() < -2 ** 62):
            raise NotImplementedError
    return result


def _vec_add(a, b):
    if _numeric(a, b):
        return _check_int_range(np.add(_as_num(a), _as_num(b)))
    if _textual(a, b):
        return np.strings.add(a, b)
    raise NotImplementedError


def _vec_sub(a, b):
    if _numeric(a, b):
        return _check_int_range(np.subtract(_as_num(a), _as_num(b)))
    raise NotImplementedError


def _max_abs(x: Any) -> int:
    arr = np.asarray(x)
    return int(np.abs(arr).max()) if arr.size else 0


def _vec_mul(a, b):
    if _numeric(a, b):
        a, b = _as_num(a), _as_num(b)
        # an int64 product can wrap to a plausible value, which the range check cannot see
        if _kind(a) == "i" and _kind(b) == "i" and _max_abs(a) * _max_abs(b) > 2 ** 62:
            raise NotImplementedError
        return _check_int_range(np.multiply(a, b))
    raise NotImplementedError


def _vec_div(a, b):
    if _numeric(a, b) and not np.any(np.asarray(b) == 0):
        a, b = _as_num(a), _as_num(b)
        # Python divides two ints exactly (one rounding); numpy rounds big ints to float first
        if _kind(a) == "i" and _kind(b) == "i" and max(_max_abs(a), _max_abs(b)) > 2 ** 53:
            raise NotImplementedError
        return np.true_divide(a, b)
    raise NotImplementedError


def _vec_mod(a, b):
    if _numeric(a, b) and not np.any(np.asarray(b) == 0):
        return np.mod(_as_num(a), _as_num(b))
    raise NotImplementedError


# the six comparisons as numpy functions (the interpreter's selects and the compiler use them too)
NP_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
              ">": np.greater, ">=": np.greater_equal}


def _make_vec_compare(op: str):
    fn = NP_COMPARE[op]

    def vec(a, b):
        if _numeric(a, b) or _textual(a, b):
            return np.asarray(fn(a, b), dtype=bool)
        ka, kb = _kind(a), _kind(b)
        if op in ("==", "!=") and "O" not in (ka, kb):
            # str against number: never equal (Python semantics)
            shape = np.broadcast_shapes(np.shape(a), np.shape(b))
            return np.full(shape, op == "!=", dtype=bool)
        raise NotImplementedError
    return vec


def truth_array(a: Any) -> np.ndarray:
    """Python truthiness of every element, vectorised where the dtype allows."""
    k = _kind(a)
    if k == "b":
        return np.asarray(a, dtype=bool)
    if k in "if":
        return np.asarray(a) != 0
    if k == "U":
        return np.strings.str_len(np.asarray(a)) > 0
    arr = np.asarray(a, dtype=object)
    out = np.empty(arr.shape, dtype=bool)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for i, v in enumerate(flat_in):
        flat_out[i] = bool(v)
    return out


def _vec_and(a, b):
    return truth_array(a) & truth_array(b)


def _vec_or(a, b):
    return truth_array(a) | truth_array(b)


_NP_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _vec_add, "-": _vec_sub, "*": _vec_mul, "/": _vec_div, "%": _vec_mod,
    "and": _vec_and, "or": _vec_or,
    **{op: _make_vec_compare(op) for op in NP_COMPARE},
}


def _vec_neg(a):
    if _numeric(a):
        return -_as_num(a)
    raise NotImplementedError


def _vec_pos(a):
    if _numeric(a):
        return _as_num(a)
    raise NotImplementedError


def _vec_not(a):
    return ~truth_array(a)


def _vec_round(a):
    k = _kind(a)
    if k in "bi":
        return _as_num(np.asarray(a)).astype(np.int64)
    if k == "f":
        arr = np.asarray(a)
        if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > 2 ** 62):
            raise NotImplementedError
        return np.round(arr).astype(np.int64)
    raise NotImplementedError


def _vec_indicator(a):
    return truth_array(a).astype(np.int64)


_NP_UNARY: dict[str, Callable[[Any], Any]] = {
    "-": _vec_neg, "+": _vec_pos, "not": _vec_not, "round": _vec_round, "indicator": _vec_indicator,
}


# ---- static result types ---------------------------------------------------------------

def _binary_out_types(op: str, ta: frozenset, tb: frozenset) -> frozenset:
    if op in ("==", "!=", "<", "<=", ">", ">=", "and", "or"):
        return BOOL
    if object in ta or object in tb:
        return ANY
    if op == "/":
        return FLOAT
    if op == "+" and (str in ta or str in tb):
        # a None input gives None (it propagates), so it does not make the result non-text
        maybe_none = (ta | tb) & {type(None)}
        return STR | maybe_none if (ta | tb) - maybe_none <= {str} else ANY
    nums = (ta | tb) - {type(None)}
    if nums <= {int, bool}:
        return FLOAT | INT if op == "^" else INT
    if nums <= {int, bool, float}:
        return FLOAT if (float in ta or float in tb) and op != "^" else NUMBER
    return ANY


def _unary_out_types(op: str, t: frozenset) -> frozenset:
    if op == "not":
        return BOOL
    if op in ("round", "indicator"):
        return INT
    if object in t:
        return ANY
    if t <= {bool, int}:
        return INT
    return t


# ---- ElementFn constructors ------------------------------------------------------------

def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def binary_fn(op: str) -> ElementFn:
    """`x op y` for two s-op inputs."""
    return ElementFn(_PY_BINARY[op], 2, f"x {op} y", vec=_NP_BINARY.get(op),
                     out_types=lambda ta, tb: _binary_out_types(op, ta, tb), op=op)


def binary_fn_const(op: str, const: Any, const_on_left: bool) -> ElementFn:
    """`x op c` (or `c op x`) with an atom baked in: one s-op input."""
    py = _PY_BINARY[op]
    vec = _NP_BINARY.get(op)
    if const_on_left:
        label = f"{_fmt(const)} {op} x"
        fn_py = lambda x: py(const, x)  # noqa: E731
        fn_vec = (lambda x: vec(const, x)) if vec else None  # noqa: E731
        types = lambda t: _binary_out_types(op, type_of_atom(const), t)  # noqa: E731
    else:
        label = f"x {op} {_fmt(const)}"
        fn_py = lambda x: py(x, const)  # noqa: E731
        fn_vec = (lambda x: vec(x, const)) if vec else None  # noqa: E731
        types = lambda t: _binary_out_types(op, t, type_of_atom(const))  # noqa: E731
    if isinstance(const, (str, bool, int, float)) is False:
        fn_vec = None
    return ElementFn(fn_py, 1, label, vec=fn_vec, out_types=types, op=op,
                     consts=((const, const_on_left),))


def unary_fn(op: str) -> ElementFn:
    label = f"{op}(x)" if op in ("round", "indicator") else ("not x" if op == "not" else f"{op}x")
    return ElementFn(_PY_UNARY[op], 1, label, vec=_NP_UNARY[op],
                     out_types=lambda t: _unary_out_types(op, t), op=op)


def ifelse_fn(then: Any, otherwise: Any, then_is_sop: bool, otherwise_is_sop: bool) -> ElementFn:
    """`a if c else b`; inputs are (c, a?, b?) where a/b are s-ops, atoms baked in."""

    def pick(cond, a, b):
        return a if cond else b

    def vec_pick(c, a, b):
        ka, kb = _kind(a), _kind(b)
        if ka != kb or "O" in (ka, kb):
            raise NotImplementedError
        return np.where(truth_array(c), a, b)

    if then_is_sop and otherwise_is_sop:
        py, vec, arity = pick, vec_pick, 3
        label = "a if c else b"
        types = lambda tc, ta, tb: ta | tb  # noqa: E731
    elif then_is_sop:
        py = lambda c, a: pick(c, a, otherwise)  # noqa: E731
        vec = lambda c, a: vec_pick(c, a, otherwise)  # noqa: E731
        arity, label = 2, f"a if c else {_fmt(otherwise)}"
        types = lambda tc, ta: ta | type_of_atom(otherwise)  # noqa: E731
    elif otherwise_is_sop:
        py = lambda c, b: pick(c, then, b)  # noqa: E731
        vec = lambda c, b: vec_pick(c, then, b)  # noqa: E731
        arity, label = 2, f"{_fmt(then)} if c else b"
        types = lambda tc, tb: type_of_atom(then) | tb  # noqa: E731
    else:
        py = lambda c: pick(c, then, otherwise)  # noqa: E731
        vec = lambda c: vec_pick(c, then, otherwise)  # noqa: E731
        arity, label = 1, f"{_fmt(then)} if c else {_fmt(otherwise)}"
        types = lambda tc: type_of_atom(then) | type_of_atom(otherwise)  # noqa: E731
    return ElementFn(py, arity, label, vec=vec, out_types=types, op="ifelse")


def membership_fn(container: list) -> ElementFn:
    """`x in [..]` for an s-op x and a list of atoms."""
    items = list(container)

    def py(x):
        return x in items

    return ElementFn(py, 1, f"x in {items!r}", out_types=lambda t: BOOL, op="in", consts=(tuple(items),))


class MissingKey(KeyError):
    """A dict lookup's miss; the message is formatted only when shown (the compiler
    enumerates lookups of hundreds of thousands of values that miss)."""

    def __init__(self, key: Any) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"index {_fmt(self.key)} not in dict"


def lookup_fn(container: Any) -> ElementFn:
    """`container[x]` for an s-op x and a list, string or dict container."""
    if isinstance(container, dict):
        table = dict(container)

        def py(x):
            if x not in table:
                raise MissingKey(x)
            return table[x]
        values = list(table.values())
        container = table       # (the table py reads, for the compiler's lookup of many values)
    else:
        seq = container

        def py(x):
            if not isinstance(x, int):
                raise TypeError(f"index into a {type(seq).__name__} has to be an integer, got {_fmt(x)}")
            if x >= len(seq) or -x > len(seq):
                raise IndexError(f"index {x} out of range for {type(seq).__name__} of length {len(seq)}")
            return seq[x]
        values = list(seq)
    types = frozenset(type(v) for v in values) if values else ANY
    label = f"{short_repr(container)}[x]"
    return ElementFn(py, 1, label, out_types=lambda t: types, op="lookup", consts=(container,))


def short_repr(value: Any, limit: int = 30) -> str:
    """repr(value), cut to `limit` characters (error messages and labels: an int of a
    thousand digits is shown by its first ones)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def python_fn(f: Callable[..., Any], arity: int, label: Optional[str] = None) -> ElementFn:
    """An arbitrary user Python function (Python API and Tracr lambdas)."""
    return ElementFn(f, arity, label or getattr(f, "__name__", "f"), out_types=lambda *t: ANY)


# ---- helpers that build Map nodes (Python API) -----------------------------------------

def binary_map(op: str, a: Any, b: Any, origin: Optional[Origin] = None) -> SOp:
    """`a op b` where at least one side is an s-op; atoms are baked into the function."""
    a_sop, b_sop = isinstance(a, SOp), isinstance(b, SOp)
    for side in (a, b):
        if isinstance(side, Node) and not isinstance(side, SOp):
            raise TypeError(f"`{op}` combines s-ops and atoms elementwise, not the selector {side.name} "
                            "(selectors combine with and/or/not among themselves)")
    if a_sop and b_sop:
        return Map(binary_fn(op), (a, b), origin)
    if a_sop:
        return Map(binary_fn_const(op, b, const_on_left=False), (a,), origin)
    if b_sop:
        return Map(binary_fn_const(op, a, const_on_left=True), (b,), origin)
    raise TypeError("binary_map needs at least one s-op")


def unary_map(op: str, a: SOp, origin: Optional[Origin] = None) -> SOp:
    return Map(unary_fn(op), (a,), origin)


def to_sop(value: Any, origin: Optional[Origin] = None) -> SOp:
    """An s-op for `value` (atoms become constants), as the original's `toseq`."""
    if isinstance(value, SOp):
        return value
    return Constant(value, origin)


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
