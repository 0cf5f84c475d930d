"""Conversions between Python values and the numpy arrays the interpreter works on.

Values keep their Python types: ints stay ints, floats floats, strings strings. A batch
of values is stored in the tightest numpy dtype that holds them exactly (bool, int64,
float64, unicode) and in an object array otherwise (mixed types, None, tuples), so
converting back with `to_python` returns exactly the Python values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, Sequence

import numpy as np

from .errors import RaspInputError

_INT_LIMIT = 2 ** 62


def _small_ints(values: list) -> Optional[np.ndarray]:
    """The ints as an int64 array if each lies strictly within +-_INT_LIMIT, else None
    (checked by numpy: a generator over 25,000 value-set ints was most of array_of)."""
    try:
        out = np.array(values, dtype=np.int64)
    except OverflowError:
        return None
    return out if bool(((out > -_INT_LIMIT) & (out < _INT_LIMIT)).all()) else None


def array_of(values: Sequence[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A numpy array holding `values` exactly (see module doc), reshaped to `shape`."""
    values = list(values)
    n = len(values)
    out: np.ndarray
    if n == 0:
        out = np.empty(0, dtype=np.int64)
    else:
        types = {type(v) for v in values}
        if types == {bool} or types == {np.bool_}:
            out = np.array(values, dtype=bool)
        elif types <= {int, np.int64} and (ints := _small_ints(values)) is not None:
            out = ints
        elif types <= {float, np.float64}:
            out = np.array(values, dtype=np.float64)
        elif types == {str} or types == {np.str_}:
            out = np.array(values, dtype=str)
        else:
            out = np.empty(n, dtype=object)
            for i, v in enumerate(values):
                out[i] = v
    if shape is not None:
        out = out.reshape(shape)
    return out


def full_like_shape(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """An array of `shape` filled with the atom `value` (keeping its Python type)."""
    base = array_of([value])
    if base.dtype == object:
        out = np.empty(shape, dtype=object)
        out[...] = None
        out.reshape(-1)[:] = [value] * out.size
        return out
    return np.full(shape, base[0], dtype=base.dtype)


def token_list(tokens: Any, what: str = "an input") -> list:
    """A sequence of tokens as a list of plain Python values: numpy scalars (from
    np.array inputs or np.arange vocabularies) become the Python values they equal, so
    they match by type like the values they stand for. A non-sequence is a clean error."""
    if isinstance(tokens, str):
        return list(tokens)
    if isinstance(tokens, (bytes, dict)) or not isinstance(tokens, Iterable):
        raise RaspInputError(f"{what} must be a string or a sequence of tokens, got {type(tokens).__name__} "
                             f"{tokens!r:.40}")
    return [t.item() if isinstance(t, np.generic) else t for t in tokens]


def to_python(arr: np.ndarray) -> list:
    """Nested Python lists with native Python scalars."""
    if arr.dtype == object:
        return arr.tolist()
    return arr.tolist()


def select_values(conditions: Sequence[np.ndarray], choices: Sequence[np.ndarray],
                  shape: tuple[int, ...]) -> np.ndarray:
    """Like `np.select`, but never converts between Python types (int stays int)."""
    used = [(c, v) for c, v in zip(conditions, choices) if c.any()]
    if not used:
        return np.empty(shape, dtype=np.int64)
    parts = [np.broadcast_to(v, shape)[c] for c, v in used]
    kinds = {p.dtype.kind for p in parts if p.size}
    if len(kinds) == 1 and "O" not in kinds:
        kind = kinds.pop()
        if kind == "U":
            dtype = np.dtype(str)
            width = max(np.broadcast_to(v, shape).dtype.itemsize for _, v in used)
            dtype = np.dtype(f"<U{max(1, width // 4)}")
        else:
            dtype = np.result_type(*[p.dtype for p in parts if p.size])
        out = np.zeros(shape, dtype=dtype)
    else:
        out = np.empty(shape, dtype=object)
    for c, v in used:
        vb = np.broadcast_to(v, shape)
        if out.dtype == object and vb.dtype != object:
            out[c] = np.array(vb[c].tolist(), dtype=object) if vb[c].size else vb[c]
        else:
            out[c] = vb[c]
    return out


# the types whose object arrays factorize by numpy (Python's values come back from .tolist())
_ONE_TYPE_DTYPES = {float: np.float64, int: np.int64, bool: np.bool_}


def factorize(arr: np.ndarray) -> tuple[np.ndarray, list]:
    """Integer codes and the list of distinct Python values, for `arr` of any dtype.

    Object arrays are factorised by (type, value) so that 1, 1.0 and True stay distinct.
    """
    flat = arr.reshape(-1)
    if arr.dtype != object:
        uniques, codes = np.unique(flat, return_inverse=True)
        return codes.reshape(arr.shape), uniques.tolist()
    items = flat.tolist()
    types = set(map(type, items))
    dtype = _ONE_TYPE_DTYPES.get(next(iter(types))) if len(types) == 1 else None
    if dtype is not None:   # numbers (or bools) of one type: numpy's sort, no hashing
        try:
            nums = np.array(items, dtype=dtype) if items else None
        except OverflowError:       # integers past int64: hashed below
            nums = None
        if nums is not None and (nums.dtype.kind != "f" or not np.isnan(nums).any()):
            uniques, codes = np.unique(nums, return_inverse=True)
            return codes.reshape(arr.shape), uniques.tolist()
    table: dict = {}
    try:     # the common case, hashable values: one pass in C (setdefault keeps the first key)
        coded = [table.setdefault((type(v), v), len(table)) for v in items]
        return np.array(coded, dtype=np.int64).reshape(arr.shape), [v for _, v in table]
    except TypeError:
        table = {}
    values: list = []
    unhashable: list = []  # (code, value) for values like lists, compared with ==
    codes = np.empty(flat.shape[0], dtype=np.int64)
    for i, v in enumerate(flat):
        key = (type(v), v)
        try:
            code = table.get(key)
        except TypeError:
            key = None
            code = next((c for c, u in unhashable if type(u) is type(v) and u == v), None)
        if code is None:
            code = len(values)
            if key is None:
                unhashable.append((code, v))
            else:
                table[key] = code
            values.append(v)
        codes[i] = code
    return codes.reshape(arr.shape), values


def floats_hold(arr: np.ndarray) -> bool:
    """Every element is a number that float64 holds exactly (so comparing the floats is
    comparing the values): bools, floats, and ints up to 2**53 in size."""
    if arr.dtype.kind in "bf" or arr.dtype.kind in "iu" and arr.dtype.itemsize <= 4:
        return True
    if arr.dtype.kind in "iu":
        return arr.size == 0 or int(np.abs(arr).max()) <= 2 ** 53
    if arr.dtype == object:
        return all(isinstance(v, float) or isinstance(v, int) and (isinstance(v, bool) or abs(v) <= 2 ** 53)
                   for v in arr.reshape(-1))
    return False


def as_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        return np.array(arr.tolist(), dtype=np.float64).reshape(arr.shape)
    return arr.astype(np.float64)
