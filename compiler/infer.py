"""Stage 2: what values each s-op can take, and how much of the input it depends on.

The domain is finite: tokens from the vocabulary, lengths 1..max_seq_len. For every
s-op we compute (soundly, i.e. a superset of) the values it can take at each
position, and exactly where that is cheap:

* nodes that depend only on positions and the length ("structural") are evaluated
  exactly with the reference interpreter for every length;
* nodes that depend only on the token ("token-local") or on token and position
  ("local") are evaluated exactly on one representative input per token;
* everything else gets per-position value sets by abstract interpretation
  (products of input sets for maps, sums of selected values for means, ...).

Selectors whose keys and queries are structural are evaluated exactly for every
length too; that tells the compiler when a selection can be empty (and so whether
the attention needs its BOS fallback) and how wide it can be.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from rasp import ir
from rasp.errors import RaspError
from rasp.interpreter import Interpreter
from rasp.values import array_of, to_python

from .errors import CompileError
from .graph import ProgramGraph, combined_table

# Largest value set we enumerate for one s-op (per position or overall).
MAX_VALUES = 400_000
# Largest product of input value sets we enumerate for one elementwise map.
MAX_TUPLES = 400_000
# Largest select table (key values x query values) we build: the original RASP's rover.rasp
# reaches 43 M cells at max_seq_len 16 and peaks near 11 GB; a table 100x that size was
# asked for all at once (a raw MemoryError) or left a compile running for minutes.
MAX_TABLE_CELLS = 1 << 26


def out_of_memory(node: Optional[ir.Node]) -> CompileError:
    what = "this s-op" if node is not None else "this program"
    return CompileError(f"the compiler ran out of memory on {what} at this max_seq_len (its value sets or "
                        "select tables grow too fast with it); use a smaller vocabulary or max_seq_len", node)


def tokenless_selector_matrices(sel: ir.Node, vocab: Sequence[Any], lengths: Iterable[int]
                                ) -> Optional[list[np.ndarray]]:
    """The (n, n) matrix of a selector that reads no token, at each of these lengths, run by
    the interpreter on any tokens; None where it reads a token or the interpreter fails."""
    if not isinstance(sel, ir.Selector) or any(isinstance(n, ir.Tokens) for n in ir.topological_order([sel])):
        return None
    lengths = list(lengths)
    try:
        rows = Interpreter([sel]).run([[vocab[0]] * n for n in lengths], [sel])[sel.id]
    except RaspError:
        return None
    return [np.asarray(m, dtype=bool).reshape(n, n) for n, m in zip(lengths, rows)]


def check_table_size(n_keys: int, n_queries: int, node: ir.Node) -> None:
    """Refuse a select whose table over its key and query values is too large to build."""
    if n_keys * n_queries > MAX_TABLE_CELLS:
        raise CompileError(f"this select compares {n_keys:,} key values with {n_queries:,} query values "
                           f"({n_keys * n_queries:,} pairs), more than the {MAX_TABLE_CELLS:,} the compiler "
                           "tabulates in memory (use a smaller vocabulary or max_seq_len)", node)

TOK, IDX, LEN, SEL = "tokens", "indices", "length", "attention"


def value_key(v: Any) -> tuple:
    """Sort/dedupe key keeping 1, 1.0 and True apart (as the interpreter does)."""
    if isinstance(v, bool):
        return (0, 0, int(v))
    if isinstance(v, (int, float)):
        return (0, 1, v)
    if v is None:
        return (1, "")
    if isinstance(v, str):
        return (2, v)
    return (3, repr(v))


def sorted_values(values: Iterable[Any]) -> tuple:
    """Distinct values in a fixed order; floats within 1e-12 (relative) count as one.

    The interpreter computes floats in float64 along different paths (2/3 - 1/3 vs
    1/3), so values that are equal as rationals can differ in the last bits; they are
    one value for the compiler (outputs are compared with that tolerance).
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        arr = np.unique(values)
        if arr.dtype.kind in "iu":
            return tuple(arr.tolist())
        if not np.isnan(arr).any():
            return _merge_near(arr.tolist(), arr, floats_only=True)
    values = values if isinstance(values, (list, tuple)) else list(values)
    types = set(map(type, values))
    if types <= {float, type(None)} and float in types and len(values) > 256:
        # means and other float-valued s-ops (None where nothing is selected): tens of
        # thousands of values, sorted by numpy; None sorts after the numbers
        obj = np.array(values, dtype=object)
        none = np.equal(obj, None)
        arr = np.unique(obj[~none].astype(np.float64))
        if not np.isnan(arr).any():
            return _merge_near(arr.tolist(), arr, floats_only=True) + ((None,) if none.any() else ())
    plain = values if types <= {int, float} else [v for v in values if type(v) is int or type(v) is float]
    numbers = _sorted_plain_numbers(plain)
    if numbers is None:
        return _sorted_values_general(values)
    if len(plain) == len(values):
        return numbers
    rest = _sorted_values_general([v for v in values if type(v) is not int and type(v) is not float])
    if any(_is_plain_number(v) for v in rest):     # number subclasses (numpy scalars) sort among numbers
        return _sorted_values_general(values)
    bools = [v for v in rest if isinstance(v, bool)]   # value_key puts bools first, numbers next
    return tuple(bools) + numbers + rest[len(bools):]


def _position_values(rows: list[list], N: int) -> list[tuple]:
    """[sorted_values(row[i] for row in rows) for i in range(N)]: one numpy pass over every
    position where the values are all ints or all floats (a token-and-position map such
    as Tracr's sort key x + i / max_seq_len took a sort and a merge check per position)."""
    kinds = {type(v) for row in rows for v in row}
    if kinds == {int} or kinds == {float}:
        try:
            arr = np.array(rows, dtype=np.int64 if kinds == {int} else np.float64)
        except OverflowError:
            arr = None
        if arr is not None and arr.shape == (len(rows), N):
            out = _sorted_values_grouped(np.ascontiguousarray(arr.T).reshape(-1), [len(rows)] * N)
            if out is not None:
                return out
    return [sorted_values(row[i] for row in rows) for i in range(N)]


def _singletons(values: list) -> list[tuple]:
    """[sorted_values([v]) for v in values], without the call where v is a plain int or a
    finite float (a position-only s-op holds one value at each of max_seq_len positions)."""
    return [(v,) if type(v) is int or (type(v) is float and math.isfinite(v)) else sorted_values([v])
            for v in values]


def _increasing_values(values: list) -> tuple:
    """sorted_values of floats that are already strictly increasing (the means of one set
    of keys), without its set and sort: 12 µs instead of 33 for the 41 means of a
    position at max_seq_len 40, of which a causal mean has one set per position."""
    arr = np.array(values, dtype=np.float64)
    if len(arr) > 1 and not (arr[1:] > arr[:-1]).all():
        return sorted_values(values)
    return _merge_near(values, arr, floats_only=True)


def _sorted_plain_numbers(values: list) -> Optional[tuple]:
    """Fast path of sorted_values for ints and floats (None if a NaN needs the general path).

    A set union keeps the int of 3 and 3.0 (as the general path does); only values
    near their predecessor go through the merging rule, which numpy finds in one pass.
    """
    ints = {v for v in values if type(v) is int}
    if len(ints) == len(values):
        return tuple(sorted(ints))
    merged = sorted(ints | {v for v in values if type(v) is float})
    try:
        arr = np.fromiter(merged, dtype=np.float64, count=len(merged))
    except OverflowError:       # (an int past float64's range: refused by _check_finite)
        return None
    if np.isnan(arr).any():
        return None
    if not ints:
        return _merge_near(merged, arr, floats_only=True)
    return _merge_near(merged, arr, is_int=np.fromiter((type(v) is int for v in merged), dtype=bool, count=len(merged)))


class _Merges:
    """Representatives of merged rounding variants (distinct floats within 1e-12), logged
    while one s-op's values are computed (see Inference.fuzzy): where a value set holds
    such a representative, the interpreter may compute a neighbouring float."""

    log: Optional[list] = None

    @classmethod
    def note(cls, value: Any) -> None:
        if cls.log is not None:
            cls.log.append(value)


@contextlib.contextmanager
def _merge_log():
    """Collect the merge representatives noted inside the block."""
    outer, _Merges.log = _Merges.log, []
    try:
        yield _Merges.log
    finally:
        _Merges.log = outer


def _merge_near(merged: list, arr: np.ndarray, floats_only: bool = False,
                is_int: Optional[np.ndarray] = None) -> tuple:
    """Sorted distinct numbers (`arr` = them as floats) with float64 rounding variants merged.

    `floats_only` (no ints among them) allows merging whole groups of variants at once:
    a difference of two means has ~40 variants of each of its values at max_seq_len 40.
    `is_int` (which of them are ints) does the same for groups with an int.
    """
    near = _near_mask(arr)
    if not near.any():
        return tuple(merged)
    if floats_only:
        fast = _merge_float_groups(arr, near)
        if fast is not None:
            return tuple(fast[0].tolist())
    elif is_int is not None:
        fast = _merge_groups_with_ints(merged, arr, near, is_int)
        if fast is not None:
            return fast
    out: list = []
    start = 0
    for j in (np.flatnonzero(near) + 1).tolist():     # merged[j] is near merged[j - 1]
        out.extend(merged[start:j])                   # (a chain of merges leaves this empty)
        start = j + 1
        v, prev = merged[j], out[-1]
        if _near_number(v, prev):
            if type(prev) is not int:
                out[-1] = v if type(v) is int else _representative(prev, v)
            if v != prev:
                _Merges.note(out[-1])
        else:
            out.append(v)
    out.extend(merged[start:])
    return tuple(out)


def _near_mask(arr: np.ndarray) -> np.ndarray:
    """Which sorted values are near their predecessor: a looser test than the merge rule,
    so that no merge is missed (the rule decides)."""
    near = np.abs(np.diff(arr)) <= 4e-12 * np.maximum(1.0, np.abs(arr[1:]))
    near &= np.isfinite(arr[1:]) & np.isfinite(arr[:-1])     # inf is no rounding variant of a number
    return near


def _merge_float_groups(arr: np.ndarray, near: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """_merge_near's result for sorted floats in numpy, a run of near values at a time:
    (merged values, which entries of `arr` they stand at), or None where the rule must
    go value by value.

    A run whose values all lie within the tolerance of each other and of their simplest
    fraction (a fixed point of `_simplest`) merges into that fraction, exactly as the
    one-at-a-time rule would merge it.
    """
    first = np.concatenate(([True], ~near))
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], len(arr))
    multi = np.flatnonzero(ends - starts > 1)
    tol = 1e-12 * np.maximum(1.0, np.abs(arr))
    s, e = starts[multi], ends[multi]
    simple = _simplest_fixed_points(arr[s])
    if simple is None:
        return None
    per_run = np.full(len(starts), np.nan)
    per_run[multi] = simple
    members_ok = np.abs(arr - per_run[np.cumsum(first) - 1]) <= tol
    if not ((arr[e - 1] - arr[s] <= np.minimum.reduceat(tol, starts)[multi]).all()
            and np.logical_and.reduceat(members_ok, starts)[multi].all()):
        return None
    values = arr.copy()
    values[s] = simple
    if _Merges.log is not None:
        _Merges.log.extend(simple.tolist())
    return values[first], first


def _merge_groups_with_ints(merged: list, arr: np.ndarray, near: np.ndarray, is_int: np.ndarray) -> Optional[tuple]:
    """_merge_near's result for sorted ints and floats, a run of near values at a time,
    or None where the rule must go value by value. A run of floats merges as in
    _merge_float_groups; a run with one int (its floats within the tolerance of it and
    of each other) merges into that int, as the one-at-a-time rule does: an int is kept
    over the floats beside it, and two floats before it merge into their simplest
    fraction, which is the int."""
    first = np.concatenate(([True], ~near))
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], len(arr))
    multi = np.flatnonzero(ends - starts > 1)
    s, e = starts[multi], ends[multi]
    ints_in = np.add.reduceat(is_int.astype(np.int64), starts)[multi]
    if (ints_in > 1).any():
        return None
    tol = 1e-12 * np.maximum(1.0, np.abs(arr))
    simple = _simplest_fixed_points(arr[s])
    if simple is None:
        return None
    # (a run's int, where it has one, must be its simplest fraction)
    run_of = np.cumsum(first) - 1
    at_int = np.flatnonzero(is_int & (ends - starts > 1)[run_of])
    per_run = np.full(len(starts), np.nan)
    per_run[multi] = simple
    if not (arr[at_int] == per_run[run_of[at_int]]).all():
        return None
    members_ok = np.abs(arr - per_run[run_of]) <= tol
    if not ((arr[e - 1] - arr[s] <= np.minimum.reduceat(tol, starts)[multi]).all()
            and np.logical_and.reduceat(members_ok, starts)[multi].all()):
        return None
    reps = simple.tolist()
    for k, j in zip(run_of[at_int].tolist(), at_int.tolist()):
        reps[int(np.searchsorted(multi, k))] = merged[j]        # (the int itself)
    out = np.array(merged, dtype=object)
    out[s] = np.array(reps, dtype=object) if reps else out[s]
    if _Merges.log is not None:
        _Merges.log.extend(reps)
    return tuple(out[first].tolist())


# _simplest_fixed_points tries denominators up to this in numpy; a fraction p/q that close
# to x (SMALL_FRACTION_DISTANCE / q) is the closest to x of all with denominators up to
# 1,000,000 (another one is at least 1 / (q * 1,000,000) from p/q), so it is _simplest(x)
SMALL_DENOMINATORS = 64
SMALL_FRACTION_DISTANCE = 1e-9
_SIMPLEST_ONE_AT_A_TIME = 256


def _simplest_fixed_points(xs: np.ndarray) -> Optional[np.ndarray]:
    """[_simplest(x) for x in xs], or None where one of them is not its own _simplest.
    Values near a fraction of small denominator are found in numpy (p / q, the float
    Fraction(p, q) gives, and its own simplest fraction); the rest go through Fraction
    one at a time (7,500 merged runs per position of long addition's sums took 10 µs each
    that way)."""
    out = np.full(len(xs), np.nan)
    # (where float64 resolves those distances; few values go one at a time, through
    # _simplest's cache, quicker than 64 passes)
    left = np.flatnonzero(np.abs(xs) <= 1e4) if len(xs) > _SIMPLEST_ONE_AT_A_TIME else np.zeros(0, dtype=np.int64)
    for q in range(1, SMALL_DENOMINATORS + 1):
        if not len(left):
            break
        x = xs[left]
        p = np.rint(x * q)
        hit = np.abs(x - p / q) <= SMALL_FRACTION_DISTANCE / q
        out[left[hit]] = p[hit] / q + 0.0        # (+ 0.0: Fraction gives 0.0 for -0.0)
        left = left[~hit]
    rest = np.flatnonzero(np.isnan(out))
    for i, x in zip(rest.tolist(), xs[rest].tolist()):
        simple = _simplest(x)
        if _simplest(simple) != simple:
            return None
        out[i] = simple
    return out


@functools.lru_cache(maxsize=65536)
def _simplest(a: float) -> float:
    return float(Fraction(a).limit_denominator(1_000_000))


def _sorted_values_general(values: Iterable[Any]) -> tuple:
    table = {}
    for v in values:
        table.setdefault((type(v), v) if not isinstance(v, float) or not math.isnan(v) else ("nan",), v)
    out = sorted(table.values(), key=value_key)
    merged: list = []
    for v in out:
        prev = merged[-1] if merged else None
        if _is_plain_number(v) and _is_plain_number(prev) and _near_number(v, prev):
            # one number: an int wins (3 over 3.0); of two floats, the simpler spelling
            if not isinstance(prev, int):
                merged[-1] = v if isinstance(v, int) else _representative(prev, v)
            if v != prev:
                _Merges.note(merged[-1])
            continue
        merged.append(v)
    return tuple(merged)


def _near_number(v: Any, prev: Any) -> bool:
    """Whether two numbers are one value (within 1e-12, relative); ints past float64's
    range are never near another (_check_finite refuses them: 2**1000 is no float)."""
    try:
        return abs(v - prev) <= 1e-12 * max(1.0, abs(v))
    except OverflowError:
        return False


def union_values(sets: Sequence[tuple]) -> tuple:
    """sorted_values of the union of several value sets (each set counted once)."""
    distinct = list({id(s): s for s in sets}.values())
    if len(distinct) == 1:
        return distinct[0]
    return sorted_values(v for s in distinct for v in s)


def _is_plain_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@functools.lru_cache(maxsize=65536)
def _representative(a: float, b: float) -> float:
    """Of two float64 spellings of one number, the one a direct division would give
    (1/6 = 0.16666666666666666, not 0.16666666666666663), else the shorter."""
    simple = float(Fraction(a).limit_denominator(1_000_000))
    for v in (a, b):
        if v == simple:
            return v
    if abs(simple - a) <= 1e-12 * max(1.0, abs(a)):
        return simple
    return a if len(repr(a)) <= len(repr(b)) else b


class ValueIndex:
    """Positions of values in a value list; numbers also match numerically.

    3 finds 3.0, and floats within 1e-12 (relative) of a listed float find it: the
    tolerance with which value sets merge float64 rounding variants of one number.
    """

    def __init__(self, values: Sequence[Any]) -> None:
        self._values = values
        self._exact: Optional[dict] = None
        if values and all(type(v) is float or type(v) is int for v in values):
            # (plain numbers, the common case: sorted by numpy; a map over means has
            # thousands of values, and the index is built for every rounding check)
            xs = np.fromiter(values, dtype=np.float64, count=len(values))
            if not np.isnan(xs).any():
                order = np.argsort(xs, kind="stable")
                self.xs = xs[order]
                self.where = order.tolist()
                return
        pairs = sorted(((float(v), isinstance(v, bool), i) for i, v in enumerate(values)
                        if isinstance(v, (int, float))), key=lambda p: (p[0], p[1]))
        self.xs = np.array([p[0] for p in pairs])
        self.where = [p[2] for p in pairs]

    @property
    def exact(self) -> dict:
        """(type, value) -> position; built on first use (find_many over plain numbers
        needs only the sorted numbers)."""
        if self._exact is None:
            self._exact = {(type(v), v): i for i, v in enumerate(self._values)}
        return self._exact

    def find(self, value: Any) -> Optional[int]:
        hit = self.exact.get((type(value), value))
        if hit is not None or not isinstance(value, (int, float)) or not len(self.xs):
            return hit
        x = float(value)
        pos = int(np.searchsorted(self.xs, x))
        for cand in (pos, pos - 1, pos + 1):
            if 0 <= cand < len(self.xs) and abs(self.xs[cand] - x) <= 1e-12 * max(1.0, abs(x)):
                return self.where[cand]
        return None

    def find_many(self, values: Sequence[Any]) -> np.ndarray:
        """find() over a list, -1 where absent; vectorised when all are plain numbers
        (maps over fine-grained numerical s-ops have tens of thousands of tuples)."""
        if values and len(self.xs) and {type(v) for v in values} <= {int, float}:
            x = np.asarray(values, dtype=np.float64)
            pos = np.searchsorted(self.xs, x)
            best = np.full(len(x), -1, dtype=np.int64)
            tol = 1e-12 * np.maximum(1.0, np.abs(x))
            where = np.asarray(self.where + [-1], dtype=np.int64)
            for shift in (1, -1, 0):
                cand = np.clip(pos + shift, 0, len(self.xs) - 1)
                ok = np.abs(self.xs[cand] - x) <= tol
                best = np.where(ok, where[cand], best)
            return best  # same preference order as find(): pos, then pos - 1, then pos + 1
        exact = self.exact
        hits = [exact.get((type(v), v), -1) for v in values]    # (the common case, in one pass)
        for r in [r for r, h in enumerate(hits) if h < 0]:
            hit = self.find(values[r])
            hits[r] = -1 if hit is None else hit
        return np.array(hits, dtype=np.int64)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def averaged(v: Any, tracr: bool) -> bool:
    """Whether an aggregate averages this value: numbers, and under Tracr's evaluator
    bools too (as 0 and 1)."""
    return isinstance(v, (int, float)) and (tracr or not isinstance(v, bool))


def aggregate_rule(values: Sequence[Any], tracr: bool) -> str:
    """What an aggregate of an s-op with these values does when a query selects several:
    "numeric" (averages: every value is a number), "mixed" (averages where only numbers are
    selected, else needs them equal) or "copy" (needs them equal). Under Tracr's rule bools
    are numbers too, and other values may not be selected more than once."""
    if all(averaged(v, tracr) for v in values):
        return "numeric"
    return "mixed" if any(averaged(v, tracr) for v in values) else "copy"


@dataclass
class NodeInfo:
    """Everything the later stages need to know about one s-op's values."""

    node: ir.SOp
    deps: frozenset
    values: tuple                           # all values, sorted
    by_pos: list[tuple]                     # values possible at position i (i < max_seq_len)
    exact: Optional[np.ndarray] = None      # structural: object array [n, i] (n = 1..N), None past the end
    per_token: Optional[dict] = None        # token-local: token -> value
    local: Optional[dict] = None            # local: token -> array of values per position
    notes: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        """Every value is an int/float/bool (so one residual direction can hold it)."""
        return all(isinstance(v, (int, float)) for v in self.values)

    @property
    def has_none(self) -> bool:
        return any(v is None for v in self.values)

    @property
    def structural(self) -> bool:
        return self.deps <= {IDX, LEN}

    @property
    def positional(self) -> bool:
        """Depends on the position only (so the positional embedding can hold it)."""
        return self.deps <= {IDX} and IDX in self.deps

    @property
    def token_local(self) -> bool:
        return self.deps == frozenset({TOK})

    @property
    def constant(self) -> bool:
        return not self.deps


@dataclass
class SelectorInfo:
    node: ir.Selector
    deps: frozenset
    exact: Optional[list[np.ndarray]] = None   # structural: bool matrix per length n (index n-1)
    at_most_one: bool = False                  # never selects two keys for one query
    never_empty: bool = False                  # every query always selects a key
    always_self: bool = False                  # every query selects its own position
    # never selects two keys, also where shown by offsets uniform over an input (see
    # Inference.uniform): value inference only, the lowering's plan keeps at_most_one
    one_key: bool = False

    @property
    def structural(self) -> bool:
        return self.exact is not None

    def widths(self, n: int) -> Optional[np.ndarray]:
        if self.exact is None:
            return None
        return self.exact[n - 1].sum(axis=1)


class Inference:
    """Runs the value-set analysis over a ProgramGraph for a vocabulary and max length."""

    def __init__(self, graph: ProgramGraph, vocab: Sequence[Any], max_seq_len: int) -> None:
        if max_seq_len < 1:
            raise CompileError(f"max_seq_len must be at least 1, got {max_seq_len}")
        if not vocab:
            raise CompileError("the vocabulary is empty")
        self.graph = graph
        self.vocab = list(vocab)
        self.N = max_seq_len
        self.info: dict[int, NodeInfo] = {}
        self.sel: dict[int, SelectorInfo] = {}
        self.deps: dict[int, frozenset] = {}
        self._numeric_parts: dict[tuple, tuple] = {}
        self._value_index: dict[int, tuple] = {}     # node id -> (its value list, ValueIndex of it)
        self._joint_cache: dict[tuple, Optional[list[tuple]]] = {}    # node ids -> joint_tuples
        # aggregates over structural selectors: per position, {length: values} (or one
        # list for every length), so that `length * mean` pairs each length with its own means
        self._by_len: dict[int, list] = {}
        # per s-op, its values that may differ from the interpreter's in the last bits
        # ("fuzzy"): means of non-integer values (float sums depend on their order),
        # representatives of merged rounding variants, and what is computed from those
        self.fuzzy: dict[int, frozenset] = {}
        self._sources: dict[int, tuple] = {}
        self._fractions: dict[int, bool] = {}
        self._injective: dict[tuple, bool] = {}     # (s-op id, offsets) -> see injective
        self._uniform: dict[int, bool] = {}
        self.rank_widths: set[int] = set()         # widths that rank the positions (see _ranks)
        # maps whose result changes within the rounding variants merged into the values of
        # maps they read: map id -> the refusal; exact only where the map's table reads the
        # exact s-ops those maps are computed from (see Lowering._lower_mlp_map)
        self.variant_reads: dict[int, str] = {}
        # selects whose predicate changes within such variants (the RASP paper's Dyck-2/3
        # compare `(indices + 1) * mean` sums with ==): select id -> the refusal; exact only
        # where they compare the values computed from exact s-ops (see compiler.rewrite)
        self.variant_selects: dict[int, CompileError] = {}
        self.equal_copies: set[int] = set()        # means of equal values (_selected_keys_agree)
        # aggregates that are c / (number of selected keys): the value is c at position 0,
        # which every query selects, and 0 elsewhere (see compiler.rewrite)
        self.anchored_widths: dict[int, Any] = {}
        self._relations: dict[int, Optional[tuple]] = {}   # see _combination_relation
        self._compute_deps()
        self._current: Optional[ir.Node] = None     # the node being analysed, for errors
        try:
            self._exact_low_dependency()
            for node in graph.nodes():
                self._current = node
                if isinstance(node, ir.SOp) and node.id not in self.info:
                    with _merge_log() as merged:
                        self.info[node.id] = self._infer(node)
                    self._track_rounding(node, merged)
                elif isinstance(node, ir.Map) and not (self.deps[node.id] <= {TOK} or self.deps[node.id] <= {IDX}) \
                        and any(k.id in self.fuzzy for k in self.graph.children(node)):
                    # tabulated exactly, but an MLP will compute it from its inputs' listed values
                    self._note_fuzzy(node, self._check_map_rounding(node, self.graph.children(node)))
                elif isinstance(node, ir.Selector) and node.id not in self.sel:
                    self.sel[node.id] = self._infer_selector(node)
                if isinstance(node, ir.Select):
                    self._check_select_rounding(node)
        except TypeError as err:
            if "unhashable" not in str(err):
                raise
            raise CompileError(f"this s-op can take a value that is not a string, number, boolean, None or "
                               f"tuple ({err}); the compiler tabulates values, so they must be atoms",
                               self._current) from None
        except MemoryError:
            raise out_of_memory(self._current) from None
        self._check_finite()

    def _check_finite(self) -> None:
        """Refuse infinities, NaNs and integers past 2**53: float residuals cannot carry them
        through sums and tables (an inf was silently dropped from value sets, a NaN broke
        equality)."""
        for node in self.graph.nodes():
            info = self.info.get(node.id)
            if info is None:
                continue
            try:    # the common case, all numbers (or None), in one numpy pass (value sets can be large)
                if set(map(type, info.values)) <= {int, float, type(None)}:
                    obj = np.array(info.values, dtype=object)
                    arr = obj[~np.equal(obj, None)].astype(np.float64)
                else:
                    arr = np.fromiter(info.values, dtype=np.float64, count=len(info.values))
                if np.isfinite(arr).all() and float(np.max(np.abs(arr), initial=0.0)) <= 2.0 ** 53:
                    continue
            except (TypeError, ValueError, OverflowError):
                pass
            bad = [v for v in info.values if isinstance(v, float) and not math.isfinite(v)
                   or isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2 ** 53]
            if bad:
                span = node.origin.user_span() if node.origin is not None else self._first_use_span(node)
                shown = repr(bad[0]) if len(repr(bad[0])) <= 24 else f"{repr(bad[0])[:20]}... ({len(repr(bad[0]))} digits)"
                raise CompileError(f"this s-op can take the value {shown}; the compiled model holds finite "
                                   "numbers only, integers up to 2**53 (check the vocabulary and for "
                                   "overflowing arithmetic)", node, span=span)

    # ---- dependencies
    def _compute_deps(self) -> None:
        for node in self.graph.nodes():
            kids = self.graph.children(node)
            if isinstance(node, ir.Tokens):
                d = frozenset({TOK})
            elif isinstance(node, ir.Indices):
                d = frozenset({IDX})
            elif isinstance(node, ir.Length):
                d = frozenset({LEN})
            elif isinstance(node, ir.Constant):
                d = frozenset()
            elif isinstance(node, ir.Select) and node.ir_predicate.comparison in ("TRUE", "FALSE"):
                d = frozenset()  # selects everything (or nothing) whatever its keys and queries
            else:
                d = frozenset().union(*(self.deps[c.id] for c in kids)) if kids else frozenset()
                if isinstance(node, (ir.Aggregate, ir.SelectorWidth)) and not d <= {IDX, LEN}:
                    d = d | {SEL}
                if isinstance(node, (ir.Aggregate, ir.SelectorWidth)) and d <= {IDX, LEN}:
                    d = d | {LEN} if d else frozenset({LEN})
            self.deps[node.id] = d

    # ---- exact evaluation of nodes with few dependencies
    def _exact_low_dependency(self) -> None:
        nodes = [n for n in self.graph.nodes()]
        structural = [n for n in nodes if self.deps[n.id] <= {IDX, LEN}]
        token_only = [n for n in nodes if isinstance(n, ir.SOp) and self.deps[n.id] == frozenset({TOK})]
        local = [n for n in nodes if isinstance(n, ir.SOp) and self.deps[n.id] == frozenset({TOK, IDX})]
        N = self.N
        if structural:
            dummy = self.vocab[0]
            # position-only nodes: one input of the longest length determines every shorter one
            positional = [n for n in structural if self.deps[n.id] <= {IDX}]
            positional_ids = {n.id for n in positional}
            by_length = [n for n in structural if not self.deps[n.id] <= {IDX}]
            rows_of: dict[int, list] = {}
            if positional:
                full = self._run(positional, [[dummy] * N])
                for node in positional:
                    row = full[node.id][0]
                    if isinstance(node, ir.Selector):
                        m = np.array(row, dtype=bool)
                        rows_of[node.id] = [m[:n, :n] for n in range(1, N + 1)]
                    else:
                        rows_of[node.id] = [row[:n] for n in range(1, N + 1)]
            if by_length:
                # as arrays: selectors over every length hold N^3/3 cells, which as Python
                # lists took gigabytes at max_seq_len 1000 before the compiler could refuse
                for index, arrays in self._run(by_length, [[dummy] * n for n in range(1, N + 1)], arrays=True):
                    for k, i in enumerate(index):
                        for node in by_length:
                            row = np.asarray(arrays[node.id])[k if arrays[node.id].shape[0] > 1 else 0]
                            rows_of.setdefault(node.id, [None] * N)[i] = \
                                row if isinstance(node, ir.Selector) else to_python(row)
            for node in structural:
                self._current = node
                rows = rows_of[node.id]
                if isinstance(node, ir.Selector):
                    mats = [np.asarray(r, dtype=bool).reshape(n, n) for n, r in zip(range(1, N + 1), rows)]
                    self.sel[node.id] = self._selector_from_exact(node, mats, positional=node.id in positional_ids)
                    continue
                exact = np.empty((N + 1, N), dtype=object)
                if self.deps[node.id] <= {IDX}:     # (row n is the longest row's first n values)
                    exact[1:] = _object_row(rows[-1])[None, :]
                    exact[1:][np.triu_indices(N, 1)] = None
                else:
                    for n, row in zip(range(1, N + 1), rows):
                        exact[n, :n] = _object_row(row)
                with _merge_log() as merged:
                    if self.deps[node.id] <= {IDX}:
                        by_pos = _singletons(exact[N].tolist())
                    else:
                        by_pos = [sorted_values(exact[i + 1:, i].tolist()) for i in range(N)]
                    values = union_values(by_pos)
                self.info[node.id] = NodeInfo(node, self.deps[node.id], values, by_pos, exact=exact)
                self._note_fuzzy(node, merged)
        if token_only:
            results = self._run(token_only, [self.vocab])
            for node in token_only:
                self._current = node
                row = results[node.id][0]
                per_token = {}
                for t, v in zip(self.vocab, row):
                    per_token[_tok_key(t)] = v
                with _merge_log() as merged:
                    values = sorted_values(row)
                self.info[node.id] = NodeInfo(node, self.deps[node.id], values, [values] * N, per_token=per_token)
                self._note_fuzzy(node, merged)
        if local:
            results = self._run(local, [[t] * N for t in self.vocab])
            for node in local:
                self._current = node
                rows = results[node.id]
                table = {_tok_key(t): list(r) for t, r in zip(self.vocab, rows)}
                with _merge_log() as merged:
                    by_pos = _position_values(rows, N)
                    values = union_values(by_pos)
                self.info[node.id] = NodeInfo(node, self.deps[node.id], values, by_pos, local=table)
                self._note_fuzzy(node, merged)

    # ---- float rounding: values the compiled model cannot match to the last bit
    def _note_fuzzy(self, node: ir.SOp, values: Iterable[Any]) -> None:
        """Mark these of node's values fuzzy (matched to its value list with the merge
        tolerance; the callers pick which numbers, ints among them). A listed int is
        marked too: floats merge into it (3 over 3.0 and 3.0000000000000036, when one
        position computes the int), and `x == 3` over `x = (indices + 1) * 3 * mean -
        (indices + 1) * 3 * mean` was a wrong model from max_seq_len 25, its int 3 not
        checked for the variants beside it. A merge whose representative is an int logs
        the int itself: `x == 2` over `x = (ma - mb) * indices + 1` (2 over 2.0 and
        1.9999999999999998) was wrong on 57 of 2,000 inputs at max_seq_len 10."""
        floats = [float(v) for v in values if _is_plain_number(v)]
        if not floats:
            return
        vals = self.info[node.id].values
        hits = self._index_of(node).find_many(floats)
        found = {vals[i] for i in hits[hits >= 0].tolist() if _is_plain_number(vals[i])}
        if found:
            self.fuzzy[node.id] = self.fuzzy.get(node.id, frozenset()) | frozenset(found)

    def _index_of(self, node: ir.Node) -> ValueIndex:
        """The ValueIndex of node's value list, built once per list (rounding checks and
        snapped joint tuples ask for the same node many times)."""
        vals = self.info[node.id].values
        cached = self._value_index.get(node.id)
        if cached is None or cached[0] is not vals:
            cached = self._value_index[node.id] = (vals, ValueIndex(vals))
        return cached[1]

    def _track_rounding(self, node: ir.SOp, merged: list) -> None:
        """node's fuzzy values: merged ones, means of non-integers, and results of fuzzy
        inputs. A map of fuzzy values must give the same result for every float near them
        (else the interpreter's last bits decide it: refused)."""
        self._note_fuzzy(node, merged)
        kids = self.graph.children(node)
        if isinstance(node, ir.Map) and any(k.id in self.fuzzy for k in kids):
            self._note_fuzzy(node, self._check_map_rounding(node, kids))
        elif isinstance(node, ir.Aggregate):
            sel, src = self.sel[kids[0].id], self.info[kids[1].id]
            src_fuzzy = self.fuzzy.get(kids[1].id, frozenset())
            # (numbers among other values are averaged too, see _aggregate_values)
            tracr = node.semantics == "tracr"
            nums = [v for v in src.values if averaged(v, tracr)]
            mean = not sel.one_key and aggregate_rule(src.values, tracr) != "copy"
            if mean and (src_fuzzy or _exact_sum_scale(nums, self.N) is None):
                # (an integer-valued mean too: 2.55 * 2 + 3.3 * 6 summed in another order is 23.999...)
                fuzzy = [v for v in self.info[node.id].values if isinstance(v, float)]
                if (all(float(v) >= 0 for v in nums) or all(float(v) <= 0 for v in nums)) and \
                        not any(v == 0 for v in src_fuzzy):
                    # a mean of numbers of one sign is 0 only where every one is 0: exactly 0
                    fuzzy = [v for v in fuzzy if v != 0]
                self._note_fuzzy(node, fuzzy)
            elif src_fuzzy:
                self._note_fuzzy(node, src_fuzzy)

    def _check_map_rounding(self, node: ir.Map, kids: list[ir.Node]) -> set:
        """Refuse a map whose result at a fuzzy input changes within its rounding; return
        the outputs computed from fuzzy inputs."""
        fn, kids = on_distinct_inputs(node.fn, kids)
        fuzzy = [self.fuzzy.get(k.id, frozenset()) for k in kids]
        outs: set = set()
        # the input combinations that can occur together (paired by length, width or
        # shared sources where the value inference pairs them), else per position
        rows = self.joint_tuples(kids) if self._length_coupled(kids) or self._width_coupled(kids) else None
        if rows is not None:
            groups: Iterable[list] = [rows]
        else:
            distinct = {tuple(id(x) for x in sets): sets
                        for sets in (tuple(self.info[k.id].by_pos[i] for k in kids) for i in range(self.N))}
            total = sum(math.prod(len(x) for x in sets) for sets in distinct.values())
            with_fuzzy = total - sum(math.prod(sum(1 for v in x if v not in f) for x, f in zip(sets, fuzzy))
                                     for sets in distinct.values())
            if with_fuzzy > 4 * MAX_TUPLES or total > 40 * MAX_TUPLES:     # (each checked one by one)
                raise CompileError("this elementwise operation has too many input combinations to check "
                                   "how float rounding of its inputs affects it (use a smaller vocabulary or "
                                   "max_seq_len)", node)
            groups = (itertools.product(*sets) for sets in distinct.values())
        for combos in groups:
            flip = _rounding_flip(fn, combos, fuzzy, outs)
            if flip is not None:
                shown = ", ".join(f"{k.name} = {v!r}" for k, v, f in zip(kids, flip, fuzzy) if v in f)
                if all(self._merged_maps_only(k) for k in kids if k.id in self.fuzzy):
                    # (exact where its table reads the s-ops those maps are computed from,
                    # else refused: see Lowering._lower_mlp_map)
                    self.variant_reads[node.id] = _rounding_message(shown or repr(flip))
                    return set()
                raise CompileError(_rounding_message(shown or repr(flip)), node)
        return outs

    def _check_select_rounding(self, node: ir.Select) -> None:
        keys, queries = self.graph.children(node)
        pred = node.ir_predicate
        kf, qf = self.fuzzy.get(keys.id), self.fuzzy.get(queries.id)
        if pred.comparison in ("TRUE", "FALSE") or not (kf or qf):
            return
        kv, qv = self.info[keys.id].values, self.info[queries.id].values
        check_table_size(len(kv), len(qv), node)
        base = pred.matrix(kv, qv)
        for side, vals, fz in (("key", kv, kf), ("query", qv, qf)):
            if not fz:
                continue
            for sign in (1.0, -1.0):
                moved = [_nudge(v, sign) if v in fz else v for v in vals]
                other = pred.matrix(moved, qv) if side == "key" else pred.matrix(kv, moved)
                diff = np.argwhere(other != base)
                if len(diff):
                    q, k = diff[0]
                    shown = f"{keys.name} = {kv[k]!r}" if side == "key" else f"{queries.name} = {qv[q]!r}"
                    err = CompileError(_rounding_message(shown, self._merged_map(keys if side == "key"
                                                                                  else queries)), node)
                    if all(isinstance(s, ir.Map) and self._merged_maps_only(s)
                           for s in (keys, queries) if s.id in self.fuzzy):
                        self.variant_selects[node.id] = err
                        return
                    raise err

    def _merged_maps_only(self, node: ir.SOp) -> bool:
        """Whether `node`'s values are fuzzy only as merged rounding variants of maps, down to
        s-ops whose values are exact (no mean of non-integers below): each combination of
        those s-ops' values then gives one float64 value, which a table over them computes."""
        if node.id not in self.fuzzy:
            return True
        return isinstance(node, ir.Map) and all(self._merged_maps_only(k) for k in self.graph.children(node))

    def _merged_map(self, node: ir.SOp) -> Optional[str]:
        """The name of a map whose own values were merged as rounding variants (distinct
        floats within 1e-12, such as `x + 1e-14 * i` offsets), when that alone makes it fuzzy."""
        if isinstance(node, ir.Map) and not any(k.id in self.fuzzy for k in self.graph.children(node)):
            return node.name
        return None

    def _run(self, nodes: list[ir.Node], inputs: list[list], arrays: bool = False):
        """The interpreter's values of `nodes` on `inputs` (as run_arrays groups if `arrays`)."""
        try:
            if arrays:
                return Interpreter(nodes).run_arrays(inputs)
            return Interpreter(nodes).run(inputs, nodes)
        except RaspError as err:
            span = err.span
            node = getattr(err, "node", None)
            if span is None and node is not None:
                span = self._first_use_span(node)
            raise CompileError(f"evaluating the program on the vocabulary failed: {err.message}", span=span,
                               notes=("  (this part depends only on positions, the length or single tokens, so it "
                                      "fails on every input with that length or token; the model must agree with "
                                      "the interpreter on all of them: guard it, e.g. "
                                      "`x / (y if y != 0 else 1)`)",)) from None

    def _first_use_span(self, node: ir.Node):
        """Where a builtin (tokens_int, ...), which has no source of its own, is first used."""
        for user_id in self.graph.graph.successors(self.graph.resolve(node).id):
            user = self.graph.node(user_id)
            if user.origin is not None:
                return user.origin.user_span()
        return None

    # ---- joint values of several s-ops
    def joint_tuples(self, nodes: Sequence[ir.Node]) -> Optional[list[tuple]]:
        """Value combinations the s-ops can take at one position (a sound superset).

        Exact when all are structural (enumerate length and position) or all depend on
        token and position only; otherwise the per-position product of value sets (over
        shared sources where the s-ops have some). Every value is one of its s-op's listed
        values: a float computed along another path (2/3 + 2 against 1/6 + 5/2) is replaced
        by the listed one it was merged into, else one value would pass for two.
        """
        key = tuple(n.id for n in nodes)
        if key not in self._joint_cache:
            # (value sets never change once inferred; lowering asks again for the same leaves
            # when a fused table is tried and refused: shuffle_dyck2's two balances)
            self._joint_cache[key] = self._snapped_joint_tuples(nodes)
        rows = self._joint_cache[key]
        return None if rows is None else list(rows)

    def _snapped_joint_tuples(self, nodes: Sequence[ir.Node]) -> Optional[list[tuple]]:
        rows = self._joint_tuples(nodes)
        if rows is None or not rows or not any(self._has_fractions(n) for n in nodes):
            return rows
        cols = [list(c) for c in zip(*rows)]
        dirty = False
        for col, node in zip(cols, nodes):
            if self._has_fractions(node) and self._snap_column(node, col):
                dirty = True
        if not dirty:       # (the common case: the rows hold listed values already)
            return rows
        seen: dict[tuple, tuple] = {}
        for row in zip(*cols):
            seen.setdefault(tuple((type(v), v) for v in row), row)
        return list(seen.values())

    def _snap_column(self, node: ir.Node, col: list) -> bool:
        """Replace, in place, floats of `col` that are not listed values of `node` by the
        listed value they were merged into; whether any was replaced."""
        vals = self.info[node.id].values
        index = self._index_of(node)
        if set(map(type, col)) <= {int, float}:
            found = index.find_many(col)
            listed = np.array([float(v) if isinstance(v, (int, float)) else np.nan for v in vals])
            changed = np.flatnonzero((found >= 0) & (listed[found] != np.asarray(col, dtype=np.float64)))
            for r in changed.tolist():
                col[r] = vals[found[r]]
            return len(changed) > 0
        dirty = False
        for r, v in enumerate(col):
            new = _listed(v, index, vals)
            if new is not v:
                col[r] = new
                dirty = True
        return dirty

    def _joint_tuples(self, nodes: Sequence[ir.Node]) -> Optional[list[tuple]]:
        distinct = list({n.id: n for n in nodes}.values())
        if len(distinct) < len(nodes):     # one s-op twice: its values agree (the diagonal)
            rows = self._joint_tuples(distinct)
            index = {d.id: j for j, d in enumerate(distinct)}
            where = [index[n.id] for n in nodes]
            return None if rows is None else [tuple(r[w] for w in where) for r in rows]
        infos = [self.info[n.id] for n in nodes]
        seen: dict[tuple, tuple] = {}
        if all(i.exact is not None for i in infos):
            for n in range(1, self.N + 1):
                for p in range(n):
                    combo = tuple(i.exact[n, p] for i in infos)
                    seen.setdefault(tuple((type(v), v) for v in combo), combo)
            return list(seen.values())
        if all(i.local is not None or i.per_token is not None or i.exact is not None and i.deps <= {IDX}
               for i in infos) and any(i.local is not None or i.per_token is not None for i in infos):
            for t in self.vocab:
                key = _tok_key(t)
                for p in range(self.N):
                    combo = []
                    for i in infos:
                        if i.local is not None:
                            combo.append(i.local[key][p])
                        elif i.per_token is not None:
                            combo.append(i.per_token[key])
                        else:
                            combo.append(i.exact[p + 1, p] if i.exact[p + 1, p] is not None else i.by_pos[p][0])
                    combo = tuple(combo)
                    seen.setdefault(tuple((type(v), v) for v in combo), combo)
            return list(seen.values())
        shared = self._shared_sources(nodes)
        if shared is not None:
            rows = self._lineage_rows(nodes, shared, range(self.N))
            if rows is not None:
                return rows
        if self._length_coupled(nodes):
            coupled: dict[tuple, tuple] = {}
            for p in range(self.N):
                rows = self._length_coupled_rows(nodes, p)
                if rows is None or len(rows) + len(coupled) > MAX_TUPLES:
                    coupled = None
                    break
                for row in rows:
                    coupled.setdefault(tuple((type(v), v) for v in row), row)
            if coupled is not None:
                return list(coupled.values())
        pair = self._width_coupled(nodes)
        if pair is not None:
            widths = union_values([self.info[pair[0].id].by_pos[p] for p in range(self.N)])
            rows = self._width_coupled_rows(nodes, pair, widths)
            if rows is not None:
                return rows
        cache = set()
        # without bools, == on value tuples is fine as the dedupe key (1 and 1.0 are one
        # value in merged value sets anyway; True == 1 is the collision to avoid)
        plain = not any(isinstance(v, bool) for i in infos for pos in i.by_pos for v in pos)
        plain_seen: dict[tuple, None] = {}
        distinct_sets = []
        for p in range(self.N):
            sets = tuple(i.by_pos[p] for i in infos)
            key = tuple(id(s) for s in sets)
            if key in cache:
                continue
            cache.add(key)
            if not plain:
                distinct_sets.append(sets)
                continue
            if math.prod(len(s) for s in sets) + len(plain_seen) > MAX_TUPLES:
                return None
            plain_seen.update(dict.fromkeys(itertools.product(*sets)))
        return list(plain_seen) if plain else _distinct_products(distinct_sets, MAX_TUPLES)

    # ---- correlated s-ops: maps of shared sources (f and 1 - f)
    def sources(self, node: ir.Node) -> tuple:
        """The s-ops a value-inferred map is computed from, looking through such maps (an
        s-op whose values were tabulated exactly, or that is no map, is its own source)."""
        if node.id in self._sources:
            return self._sources[node.id]
        info = self.info[node.id]
        if not isinstance(node, ir.Map) or info.exact is not None or info.per_token is not None \
                or info.local is not None:
            found: tuple = (node,)
        else:
            out: dict[int, ir.Node] = {}
            for k in self.graph.children(node):
                for src in self.sources(k):
                    out[src.id] = src
            found = tuple(out.values())
        self._sources[node.id] = found
        return found

    def _has_fractions(self, node: ir.Node) -> bool:
        if node.id not in self._fractions:
            self._fractions[node.id] = _has_fractions(self.info[node.id].values)
        return self._fractions[node.id]

    def _shared_sources(self, nodes: Sequence[ir.Node]) -> Optional[list[ir.Node]]:
        """The sources of `nodes` if two of them share one (their values are correlated:
        enumerating the nodes independently pairs values that never occur together)."""
        per_node = [self.sources(n) for n in nodes]
        distinct = {s.id: s for srcs in per_node for s in srcs}
        if len(distinct) == sum(len(srcs) for srcs in per_node):
            return None
        return list(distinct.values())

    def _lineage_rows(self, nodes: Sequence[ir.Node], sources: list[ir.Node],
                      positions: Iterable[int], cap: int = MAX_TUPLES) -> Optional[list[tuple]]:
        """Value tuples of `nodes` at the positions, by evaluating them over every
        combination of their sources' values (None if that is more than `cap`)."""
        seen: dict[tuple, tuple] = {}
        done = set()
        steps, outs = self._evaluation_steps(nodes, sources)
        for p in positions:
            sets = tuple(self.info[src.id].by_pos[p] for src in sources)
            key = tuple(id(x) for x in sets)
            if key in done:
                continue
            done.add(key)
            if math.prod(len(x) for x in sets) + len(seen) > cap:
                return None
            kept, sets, rest = _collapse_private_steps(steps, outs, len(sources), list(sets))
            rows = _lineage_rows_vectorized(kept, sets, rest, outs) if math.prod(map(len, sets)) > 64 else None
            if rows is not None:
                for row in rows:
                    seen.setdefault(tuple((type(v), v) for v in row), row)
                continue
            for combo in itertools.product(*sets):
                vals = dict(zip(kept, combo))
                for out_slot, fn, args in rest:
                    a = [vals[j] for j in args]
                    vals[out_slot] = FAILED if any(x is FAILED for x in a) else call_element(fn, a)
                row = tuple(vals[j] for j in outs)
                if any(v is FAILED for v in row):
                    continue        # (a combination some map rejects: unreachable)
                seen.setdefault(tuple((type(v), v) for v in row), row)
        return list(seen.values())

    def _evaluation_steps(self, nodes: Sequence[ir.Node], sources: list[ir.Node]
                          ) -> tuple[list[tuple[ir.ElementFn, list[int]]], list[int]]:
        """The maps between `sources` and `nodes` in evaluation order, each with the slots
        of its arguments (slot j < len(sources): source j; then one slot per step), and
        the slots of `nodes`: _lineage_rows evaluates millions of combinations (the
        original RASP's long addition), where walking the graph for each cost most."""
        slot = {s.id: j for j, s in enumerate(sources)}
        steps: list[tuple[ir.ElementFn, list[int]]] = []

        def visit(node: ir.Node) -> int:
            if node.id not in slot:
                args = [visit(k) for k in self.graph.children(node)]
                steps.append((node.fn, args))
                slot[node.id] = len(sources) + len(steps) - 1
            return slot[node.id]
        outs = [visit(n) for n in nodes]
        return steps, outs

    # ---- selectors
    def _selector_from_exact(self, node: ir.Selector, mats: list[np.ndarray], positional: bool = False) -> SelectorInfo:
        info = SelectorInfo(node, self.deps[node.id], exact=mats)
        if positional:
            # every length's matrix is the top-left corner of the longest one: a row's
            # count only grows with the length, row i exists from length i + 1 (and is
            # never empty if it selects a key at or before i), and the diagonals nest
            full = mats[-1]
            first = np.where(full.any(axis=1), full.argmax(axis=1), len(full))
            info.at_most_one = info.one_key = bool(full.sum(axis=1).max(initial=0) <= 1)
            info.never_empty = bool((first <= np.arange(len(full))).all())
            info.always_self = bool(np.diagonal(full).all())
            return info
        info.at_most_one = info.one_key = all(m.sum(axis=1).max(initial=0) <= 1 for m in mats)
        info.never_empty = all(m.any(axis=1).all() for m in mats)
        info.always_self = all(np.diagonal(m).all() for m in mats)
        return info

    def _infer_selector(self, node: ir.Selector) -> SelectorInfo:
        kids = self.graph.children(node)
        info = SelectorInfo(node, self.deps[node.id])
        if isinstance(node, ir.Select):
            keys, queries = kids
            kinfo, qinfo = self.info[keys.id], self.info[queries.id]
            pred = node.ir_predicate
            if self._functional(pred, kinfo.values, qinfo.values):
                info.at_most_one = self.injective(keys)
                info.one_key = info.at_most_one or self.injective(keys, offsets=True)
            if keys.id == queries.id and pred.comparison in ("==", "<=", ">=", "TRUE"):
                info.always_self = all(v is not None for v in kinfo.values) or pred.comparison == "TRUE"
            if pred.comparison == "TRUE":
                info.never_empty = True
            if info.always_self:
                info.never_empty = True
        elif isinstance(node, ir.SelectAnd):
            a, b = (self.sel[c.id] for c in kids)
            info.at_most_one = a.at_most_one or b.at_most_one
            info.one_key = a.one_key or b.one_key
            info.always_self = a.always_self and b.always_self
            info.never_empty = info.always_self
        elif isinstance(node, ir.SelectOr):
            a, b = (self.sel[c.id] for c in kids)
            info.always_self = a.always_self or b.always_self
            info.never_empty = a.never_empty or b.never_empty
        return info

    def injective(self, node: ir.Node, offsets: bool = False) -> bool:
        """Distinct positions of an input always hold distinct values of `node` (and never
        None): indices, a width that ranks the positions (see _ranks), or an injective map
        of s-ops one of which is injective (Tracr's sort keys, x + i / max_seq_len).
        `offsets`: also a map injective for each value of its inputs that are uniform over
        an input (see uniform; only value inference relies on these)."""
        key = (node.id, offsets)
        if key not in self._injective:
            self._injective[key] = False        # (a cycle cannot prove itself)
            self._injective[key] = self._find_injective(node, offsets)
        return self._injective[key]

    def _find_injective(self, node: ir.Node, offsets: bool) -> bool:
        info = self.info[node.id]
        if info.exact is not None:
            return all(len(sorted_values([info.exact[n, i] for i in range(n)])) == n and
                       all(info.exact[n, i] is not None for i in range(n)) for n in range(1, self.N + 1))
        if node.id in self.rank_widths:
            return True
        if not isinstance(node, ir.Map):
            return False
        kids = self.graph.children(node)
        if not any(self.injective(k, offsets) for k in kids):
            return False
        # s-ops equal at every position of an input (length, `aggregate(select(tokens,
        # "+", ==), indices)`) only need the map injective for each of their values
        same = [j for j, k in enumerate(kids) if self.uniform(k)] if offsets else []
        rows = self._lineage_rows(kids, list(kids), range(self.N), cap=_MAX_INJECTIVE_ROWS) if same \
            else self._position_products(kids)
        if rows is None:
            return False
        groups: dict[tuple, list] = {}
        for row in rows:
            out = call_element(node.fn, list(row))
            if out is None:
                return False
            if out is not FAILED:          # (a combination the map rejects cannot occur)
                groups.setdefault(tuple((type(row[j]), row[j]) for j in same), []).append(out)
        return all(len(sorted_values(outs)) == len(outs) for outs in groups.values())

    def uniform(self, node: ir.Node) -> bool:
        """Every position of an input holds the same value of `node` (a selector: every
        query selects the same keys): length and constants, maps of such s-ops, and
        aggregates and widths over selects whose queries are such s-ops. The original
        RASP's long addition shifts by `length - aggregate(select(tokens, "+", ==),
        indices)`, the plus sign's position, so its shifted indices are injective and the
        select of them against indices picks one key (its value sets had every mean of
        digits, and it was refused from max_seq_len 7). Memoized."""
        if node.id not in self._uniform:
            self._uniform[node.id] = False          # (a cycle cannot prove itself)
            self._uniform[node.id] = self._find_uniform(node)
        return self._uniform[node.id]

    def _find_uniform(self, node: ir.Node) -> bool:
        if self.deps[node.id] <= {LEN}:
            return True
        info = self.info.get(node.id)
        if info is not None and info.exact is not None:
            # a structural s-op that happens to hold one value per input (`Map(lambda i: 0,
            # indices)`, a query Tracr-style programs use for "select where x == 0")
            return all(len(sorted_values(info.exact[n, :n].tolist())) == 1 for n in range(1, self.N + 1))
        kids = self.graph.children(node)
        if isinstance(node, ir.Select):
            return self.uniform(kids[1])            # (the same query value everywhere)
        if isinstance(node, (ir.SelectAnd, ir.SelectOr, ir.SelectNot, ir.Map)):
            return all(self.uniform(k) for k in kids)
        if isinstance(node, (ir.Aggregate, ir.SelectorWidth)):
            return self.uniform(kids[0])            # (the same keys for every query)
        return False

    def _position_products(self, nodes: Sequence[ir.Node]) -> Optional[list[tuple]]:
        """Value combinations of the s-ops at one position: per position, every combination
        of their values there (a sound superset, cheaper than joint_tuples, which
        enumerates shared sources and made addition's compile 15x slower); None past
        _MAX_RANK_ROWS combinations."""
        return self._lineage_rows(nodes, list(nodes), range(self.N), cap=_MAX_RANK_ROWS)

    def _ranks(self, node: ir.SelectorWidth) -> bool:
        """The width's selector is a strict total order of each input's positions, so the
        widths at length n are 0..n-1, each once: sort's target positions (`select(keys,
        keys, <) or (select(keys, keys, ==) and select(indices, indices, <))`), and a
        select of them against indices picks exactly one key. Shown on the values (see
        _orders_combinations), with one of the s-ops the selector reads injective, so that
        distinct positions hold distinct combinations."""
        read = self._selector_reads(self.graph.children(node)[0])
        return read is not None and any(self.injective(leaf) for leaf in read) and \
            self._orders_combinations(node) is not None

    def _selector_reads(self, selector: ir.Selector) -> Optional[list[ir.Node]]:
        """The s-ops a selector built of selects and and/or/not reads (None for any other)."""
        leaves: dict[int, ir.Node] = {}
        stack = [selector]
        while stack:
            sel = stack.pop()
            if isinstance(sel, ir.Select):
                for k in self.graph.children(sel):
                    leaves.setdefault(k.id, k)
            elif isinstance(sel, (ir.SelectAnd, ir.SelectOr, ir.SelectNot)):
                stack.extend(self.graph.children(sel))
            else:
                return None
        return list(leaves.values())

    def _orders_combinations(self, node: ir.SelectorWidth, reflexive: bool = False) -> Optional[frozenset]:
        """The ids of the s-ops the width's selector reads, when the selector strictly orders
        the distinct combinations of their values a position can hold (total, asymmetric
        and transitive between distinct combinations; irreflexive, or where `reflexive`
        also reflexive, `<=`): the width then grows strictly along that order within an
        input, so two positions with equal widths hold equal combinations (sort_unique's
        target positions over repeated tokens: keys that share a target share their
        token). None otherwise."""
        relation = self._combination_relation(node)
        if relation is None:
            return None
        order, before = relation
        same = np.eye(len(before), dtype=bool)
        diagonal = before[same]
        if diagonal.any() and not (reflexive and diagonal.all()):
            return None
        before = before & ~same
        if (before & before.T).any() or not (before | before.T | same).all():
            return None
        # (a complete asymmetric relation is transitive iff its counts are 0, 1, ..., D-1)
        if not (np.sort(before.sum(axis=0)) == np.arange(len(before))).all():
            return None
        return frozenset(leaf.id for leaf in order)

    def _combination_relation(self, node: ir.SelectorWidth) -> Optional[tuple[list[ir.Node], np.ndarray]]:
        """The s-ops the width's selector reads, and the selector over every combination of
        their values at one position: before[k, q], key combination k is selected by
        query combination q (None past _MAX_RANK_ROWS combinations). Memoized: a
        predicate over 2,000 combinations takes a second."""
        if node.id in self._relations:
            return self._relations[node.id]
        self._relations[node.id] = None
        order = self._selector_reads(self.graph.children(node)[0])
        if order is None:
            return None
        rows = self._position_products(order)
        if not rows or len(rows) ** 2 > MAX_TABLE_CELLS:
            return None
        column = {leaf.id: [row[j] for row in rows] for j, leaf in enumerate(order)}

        def select_table(sel: ir.Select) -> np.ndarray:       # [query, key]
            keys, queries = self.graph.children(sel)
            return sel.ir_predicate.matrix(column[keys.id], column[queries.id])
        relation = combined_table(self.graph.children(node)[0], select_table, self.graph.children)
        self._relations[node.id] = (order, relation.T)
        return self._relations[node.id]

    @staticmethod
    def _functional(pred: ir.Predicate, keys: tuple, queries: tuple) -> bool:
        """Each query value matches at most one key value."""
        if len(keys) * len(queries) > MAX_TUPLES:
            return pred.comparison == "=="
        for q in queries:
            hits = 0
            for k in keys:
                try:
                    if k is not None and q is not None and pred.py(k, q):
                        hits += 1
                except Exception:
                    continue
                if hits > 1:
                    return False
        return True

    # ---- s-ops with attention-dependent values
    def _infer(self, node: ir.SOp) -> NodeInfo:
        deps = self.deps[node.id]
        kids = self.graph.children(node)
        if isinstance(node, ir.Map):
            by_pos = self._map_values(node, kids)
        elif isinstance(node, ir.SelectorWidth):
            by_pos = self._width_values(self.sel[kids[0].id])
            if self.sel[kids[0].id].exact is None and self._ranks(node):
                self.rank_widths.add(node.id)
                by_pos = [tuple(range(self.N)) for _ in range(self.N)]
        elif isinstance(node, ir.Aggregate):
            by_pos = self._aggregate_values(node, self.sel[kids[0].id], self.info[kids[1].id])
        else:  # pragma: no cover - low-dependency nodes are handled exactly
            raise CompileError("internal: unexpected node in value inference", node)
        values = union_values(by_pos)
        if len(values) > MAX_VALUES:
            raise _too_many_values(node)
        if not values and isinstance(node, ir.Map):
            # (every value combination of its inputs raised: no input of the program evaluates)
            raise CompileError("this elementwise operation fails for every value its inputs can take, so the "
                               "interpreter rejects every input of the program; there is nothing to compile", node)
        return NodeInfo(node, deps, values, by_pos)

    def _map_values(self, node: ir.Map, kids: list[ir.Node]) -> list[tuple]:
        shared = self._shared_sources(kids)
        if shared is not None:        # (f * (1 - f): over f's values, not pairs of f and 1 - f)
            by_pos = self._map_values_from_sources(node, kids, shared)
            if by_pos is not None:
                return by_pos
        coupled = self._length_coupled_values(node, kids)
        if coupled is not None:       # (length * mean: each length with its own means)
            return coupled
        coupled = self._width_coupled_values(node, kids)
        if coupled is not None:       # (width * mean over one selector: each width with its own means)
            return coupled
        fn, kids = on_distinct_inputs(node.fn, kids)    # (f * f: one value, not two independent ones)
        inputs = [self.info[k.id] for k in kids]
        distinct: dict[tuple, tuple] = {}
        keys = []
        for i in range(self.N):
            sets = tuple(inp.by_pos[i] for inp in inputs)
            key = tuple(id(s) for s in sets)
            distinct.setdefault(key, sets)
            keys.append(key)
        results = _apply_batched(fn, list(distinct.values()))
        if results is None:
            results = [self._apply(node, fn, sets) for sets in distinct.values()]
        table = dict(zip(distinct, results))
        return [table[k] for k in keys]

    def _width_coupled_values(self, node: ir.Map, kids: list[ir.Node]) -> Optional[list[tuple]]:
        """A map of the width of a selector and of a mean over the same selector, by
        position: each width w paired with the means of w values only (None where that does
        not apply). `width * mean` is then the sum of the selected values, not any product."""
        pair = self._width_coupled(kids)
        if pair is None:
            return None
        out, memo = [], {}
        for p in range(self.N):
            widths = self.info[pair[0].id].by_pos[p]
            if id(widths) not in memo:
                rows = self._width_coupled_rows(kids, pair, widths)
                if rows is None:
                    return None
                memo[id(widths)] = _map_over_rows(node.fn, rows)
            out.append(memo[id(widths)])
        return out

    def _width_coupled(self, nodes: Sequence[ir.Node]) -> Optional[tuple[ir.SelectorWidth, ir.Aggregate]]:
        """(width, mean) when the nodes are the width of a selector and a numerical mean over
        that same selector (and nothing else)."""
        distinct = list({n.id: n for n in nodes}.values())
        width = next((n for n in distinct if isinstance(n, ir.SelectorWidth)), None)
        mean = next((n for n in distinct if isinstance(n, ir.Aggregate)), None)
        if len(distinct) != 2 or width is None or mean is None:
            return None
        selector, source = self.graph.children(mean)
        if self.graph.children(width)[0].id != selector.id or self.sel[selector.id].at_most_one:
            return None
        tracr = mean.semantics == "tracr"
        if not all(averaged(v, tracr) for v in self.info[source.id].values):
            return None
        return width, mean

    def _width_coupled_rows(self, nodes: Sequence[ir.Node], pair: tuple[ir.SelectorWidth, ir.Aggregate],
                            widths: tuple) -> Optional[list[tuple]]:
        """Value tuples of the nodes (a width and a mean over its selector) for these widths:
        width 0 with the default, width w with each mean of w of the source's values (a sound
        superset: whichever positions are selected, their values are among these)."""
        width, mean = pair
        source = self.graph.children(mean)[1]
        by_count = _means_by_count([float(v) for v in self.info[source.id].values], self.N, mean)
        if by_count is None:
            return None
        tracr = mean.semantics == "tracr"
        single = [float(v) if tracr else v for v in self.info[source.id].values]
        found: dict[int, list] = {}
        total, top = 0, int(max(widths, default=0))
        for w, means in by_count:
            if w > top:
                break
            if w in widths:
                found[w] = single if w == 1 else means.tolist()
                total += len(found[w])
                if total > MAX_TUPLES:
                    return None
        rows: list[tuple] = []
        for w in widths:
            values = found.get(int(w)) if w else [mean.default]
            if w == 0 and self.sel[self.graph.children(mean)[0].id].never_empty:
                continue
            for m in values:
                rows.append(tuple(w if n.id == width.id else m for n in nodes))
        return rows

    def _length_coupled_values(self, node: ir.Map, kids: list[ir.Node]) -> Optional[list[tuple]]:
        """A map of a structural s-op that depends on the length (length, or a function of
        it) and of an aggregate over a structural selector, by position: pairs each length
        with the aggregate's values at that length (None where that does not apply)."""
        if not self._length_coupled(kids):
            return None
        out, memo = [], {}
        for i in range(self.N):
            rows = self._length_coupled_rows(kids, i)
            if rows is None:
                return None
            key = tuple((type(v), v) for row in rows for v in row)
            if key not in memo:
                memo[key] = _map_over_rows(node.fn, rows)
            out.append(memo[key])
        return out

    def _length_coupled(self, nodes: Sequence[ir.Node]) -> bool:
        """Some of the nodes are aggregates with values per length, some structural s-ops
        that depend on the length: their values must be paired length by length."""
        return any(n.id in self._by_len for n in nodes) and \
            any(LEN in self.deps[n.id] and self.info[n.id].exact is not None for n in nodes)

    def _length_coupled_rows(self, nodes: Sequence[ir.Node], i: int) -> Optional[list[tuple]]:
        """Value tuples of the nodes at position i over every length n > i: structural ones
        by their exact value at (n, i), aggregates over structural selectors by their values
        at length n, anything else by its values at position i."""
        seen: dict[tuple, tuple] = {}
        for n in range(i + 1, self.N + 1):
            sets = []
            for k in nodes:
                info = self.info[k.id]
                if info.exact is not None:
                    sets.append([info.exact[n, i]])
                elif k.id in self._by_len:
                    at = self._by_len[k.id][i]
                    sets.append(at[n] if isinstance(at, dict) else at)
                else:
                    sets.append(info.by_pos[i])
            if math.prod(len(x) for x in sets) + len(seen) > MAX_TUPLES:
                return None
            for combo in itertools.product(*sets):
                seen.setdefault(tuple((type(v), v) for v in combo), combo)
        return list(seen.values())

    def _map_values_from_sources(self, node: ir.Map, kids: list[ir.Node],
                                 sources: list[ir.Node]) -> Optional[list[tuple]]:
        out, memo = [], {}
        for i in range(self.N):
            key = tuple(id(self.info[src.id].by_pos[i]) for src in sources)
            if key not in memo:
                rows = self._lineage_rows(kids, sources, [i])
                if rows is None:
                    return None
                memo[key] = _map_over_rows(node.fn, rows)
            out.append(memo[key])
        return out

    def _apply(self, node: ir.Map, fn: ir.ElementFn, sets: tuple) -> tuple:
        total = math.prod(len(s) for s in sets)
        if total > MAX_TUPLES:
            raise CompileError(f"the inputs of this elementwise operation have {total} value combinations "
                               f"(limit {MAX_TUPLES}); the compiler cannot enumerate them exactly", node)
        if total > 64 and fn.vec is not None:
            arrays = [_typed_array(s) for s in sets]
            if all(a is not None for a in arrays):   # (a None or mixed types: none)
                fast = apply_vectorized(fn, [_grid_column(arrays, k) for k in range(len(arrays))])
                if fast is not None:
                    return sorted_values(fast if fast.dtype.kind in "iuf" else fast.tolist())
            else:
                return _sorted_chunks(_apply_by_type(fn, sets))
        may_be_none = any(None in s for s in sets) and not fn.takes_none
        table = _lookup_dict(fn)
        if table is not None and len(sets) == 1:
            return sorted_values(_dict_lookups(table, sets[0], may_be_none))
        results = []
        py = fn.py
        for args in itertools.product(*sets):
            if may_be_none and None in args:
                results.append(None)
                continue
            try:
                results.append(py(*args))
            except Exception:
                # unreachable combination (or one the interpreter rejects too)
                continue
        return sorted_values(results)

    def _width_values(self, sel: SelectorInfo) -> list[tuple]:
        N = self.N
        if sel.exact is not None:
            return [sorted_values(int(sel.exact[n - 1][i].sum()) for n in range(i + 1, N + 1)) for i in range(N)]
        lo = 1 if sel.always_self else 0
        hi_by_pos = [N for _ in range(N)]
        if sel.one_key:
            return [tuple(range(lo, 2)) for _ in range(N)]
        return [tuple(range(lo, hi_by_pos[i] + 1)) for i in range(N)]

    def _aggregate_values(self, node: ir.Aggregate, sel: SelectorInfo, src: NodeInfo) -> list[tuple]:
        N = self.N
        default = node.default
        tracr = node.semantics == "tracr"
        kind = aggregate_rule(src.values, tracr)
        numeric_src, mixed = kind == "numeric", kind == "mixed"
        agree = self._selected_keys_agree(node, src) if kind != "copy" and sel.exact is None else None
        if agree is not None:
            # the mean of equal values is one of them, the query's own where it selects by
            # its own value (a float under Tracr's rule)
            self.equal_copies.add(node.id)
            held = src.by_pos if agree == "own" else [union_values(src.by_pos)] * N
            own = [[float(v) if tracr and averaged(v, tracr) else v for v in vals] for vals in held]
            return [sorted_values([*vals, *([] if sel.never_empty else [default])]) for vals in own]
        if sel.exact is not None:
            out = []
            memo: dict[tuple, list] = {}
            prefix_sums: dict[tuple, tuple] = {}
            last = sel.exact[N - 1]
            set_ids = [id(s) for s in src.by_pos]
            # positions that see the same key sets share one value set (one object, which
            # later stages' caches recognise: shift_by's 40 positions are one set)
            shared: dict[frozenset, tuple] = {}
            by_len: list = []
            one_set = set_ids[0] if len(set(set_ids)) == 1 else None
            interval = _integer_interval(src.by_pos[0]) if kind == "numeric" and one_set is not None else None
            increasing: set[tuple] = set()      # memo entries already sorted and distinct
            for i in range(N):
                seen: set = set()
                row = np.flatnonzero(last[i])
                # a query that only selects keys up to itself sees the same keys at every length
                same = sel.deps <= {IDX} and (len(row) == 0 or row[-1] <= i)
                lengths = [N] if same else range(i + 1, N + 1)
                at_length: dict[int, list] = {}
                for n in lengths:
                    keys = np.flatnonzero(sel.exact[n - 1][i]).tolist()
                    if not keys:
                        seen.add(None)          # the default
                        at_length[n] = [default]
                        continue
                    sets = (one_set,) * len(keys) if one_set is not None else tuple(set_ids[j] for j in keys)
                    if sets not in memo:
                        closed = _interval_means(*interval, len(keys), node) \
                            if interval is not None and len(keys) > 1 else None
                        if closed is not None and max(map(abs, interval)) * len(keys) < 2 ** 30:
                            increasing.add(sets)    # (steps of 1 / count: none to merge)
                        memo[sets] = closed if closed is not None else \
                            self._means_over_positions(node, [src.by_pos[j] for j in keys], kind, tracr, prefix_sums)
                    seen.add(sets)
                    # (with the default: a head patched to read BOS alone gives it anywhere,
                    # and inspection's patched runs must stay inside the tables)
                    at_length[n] = memo[sets] if sel.never_empty else [*memo[sets], default]
                by_len.append(at_length[N] if same else at_length)
                key = frozenset(seen)
                if key not in shared:
                    only = next(iter(seen)) if len(seen) == 1 else None
                    if only is not None and kind == "numeric" and len(only) > 1:
                        # (one key set's means: sums over a count, already increasing)
                        shared[key] = tuple(memo[only]) if only in increasing else _increasing_values(memo[only])
                    else:
                        vals = [v for sets in seen for v in (memo[sets] if sets is not None else [default])]
                        shared[key] = sorted_values(vals)
                out.append(shared[key])
            self._by_len[node.id] = by_len
            return out
        anchored = self._anchored_means(node, src, tracr) if numeric_src else None
        if anchored is not None:
            return anchored
        everywhere = union_values(src.by_pos)
        with_default = sorted_values([*everywhere, default]) if not sel.never_empty else everywhere
        if sel.one_key or kind == "copy":
            if tracr and numeric_src:
                with_default = sorted_values([*(float(v) for v in everywhere),
                                              *([] if sel.never_empty else [default])])
            return [with_default] * N
        if kind == "numeric" and src.exact is not None and src.deps <= {LEN}:
            # the same value at every position of an input (the length): its mean is itself
            means = sorted_values([*(everywhere if not tracr else ()), *(float(v) for v in everywhere),
                                   *([] if sel.never_empty else [default])])
            return [means] * N
        if mixed:
            means = sorted_values([*self._all_means(node, tuple(v for v in everywhere if averaged(v, tracr))),
                                   *(v for v in everywhere if not averaged(v, tracr))])
        else:
            means = self._all_means(node, everywhere)
        if not sel.never_empty:
            means = sorted_values([*means, default])
        return [means] * N

    def _anchored_means(self, node: ir.Aggregate, src: NodeInfo, tracr: bool) -> Optional[list[tuple]]:
        """Per position, the means of a structural s-op that is 0 except at key positions
        every query selects: the original RASP's selector width with BOS, `1 /
        aggregate(s or select(indices, 0, ==), indicator(indices == 0)) - 1`. Its mean is
        C / count, C the sum at those positions, count from their number to the length;
        averaged as any mixture of 0s and 1s (every fraction j / k), the paper's
        sort_by_most_freq took 8 layers and d_model 1,390 at max_seq_len 10 (and 635 s at
        16). None where the rule does not apply. The anchors' values are small integers,
        so their sum is exact in any order; the interpreter then divides once, as here
        (one selected value stays itself, an int an int, except under Tracr's rule)."""
        if src.exact is None:
            return None
        N = self.N
        nonzero = sorted({p for n in range(1, N + 1) for p in range(n) if src.exact[n, p] != 0})
        if not nonzero or nonzero[0] != 0:
            return None         # (a length without an anchor may select nothing)
        selector = self.graph.children(node)[0]
        if not all(self._always_selects(selector, p) for p in nonzero):
            return None
        per_pos: list[list] = [[] for _ in range(N)]
        for n in range(1, N + 1):
            held = [src.exact[n, p] for p in nonzero if p < n]
            if not all(is_number(v) and float(v).is_integer() for v in held) or \
                    not _small_ints([abs(float(v)) for v in held], N):
                return None
            total = float(sum(held))
            alone = float(held[0]) if tracr and averaged(held[0], tracr) else held[0]
            means = [alone if len(held) == 1 else total / len(held)] + \
                [total / k for k in range(len(held) + 1, n + 1)]
            for i in range(n):
                per_pos[i].extend(means)
        if nonzero == [0] and len({(type(src.exact[n, 0]), src.exact[n, 0]) for n in range(1, N + 1)}) == 1 \
                and type(src.exact[1, 0]) in (int, float):
            self.anchored_widths[node.id] = src.exact[1, 0]
        return [sorted_values(vals) for vals in per_pos]

    def _always_selects(self, selector: ir.Selector, p: int) -> bool:
        """Every query selects key position p, at every length that has it (shown on the
        values each side can hold; False where unsure)."""
        info = self.sel[selector.id]
        if info.exact is not None:
            return all(info.exact[n - 1][:, p].all() for n in range(p + 1, self.N + 1))
        if isinstance(selector, ir.SelectOr):
            return any(self._always_selects(k, p) for k in self.graph.children(selector))
        if isinstance(selector, ir.SelectAnd):
            return all(self._always_selects(k, p) for k in self.graph.children(selector))
        if not isinstance(selector, ir.Select):
            return False
        if selector.id in self.graph.joint_sources and \
                self._source_always_selects(self.graph.joint_sources[selector.id], p):
            return True
        keys, queries = self.graph.children(selector)
        key_vals = self.info[keys.id].by_pos[p]
        query_vals = self.info[queries.id].values
        if len(key_vals) * len(query_vals) > MAX_TUPLES:
            return False
        return bool(selector.ir_predicate.matrix(key_vals, query_vals).all())

    def _source_always_selects(self, source: ir.Selector, p: int) -> bool:
        """_always_selects for the `or` a joint select replaced, part by part: a part that
        reads no token is run by the interpreter at every length. The joint select's own
        predicate table grows with the product of its tuples (96 keys x 4,608 queries in
        the paper's sort_by_most_freq at max_seq_len 48, past MAX_TUPLES), where its part
        `select(indices, 0, ==)` alone shows that every query selects key 0."""
        if isinstance(source, ir.SelectOr):
            return any(self._source_always_selects(k, p) for k in source.children)
        if isinstance(source, ir.SelectAnd):
            return all(self._source_always_selects(k, p) for k in source.children)
        if not isinstance(source, ir.Select):
            return False
        mats = tokenless_selector_matrices(source, self.vocab, range(p + 1, self.N + 1))
        return mats is not None and all(m[:, p].all() for m in mats)

    def _selected_keys_agree(self, node: ir.Aggregate, src_info: NodeInfo) -> Optional[str]:
        """Whether every key a query selects holds one value of the aggregated s-op, so that
        their mean is that value: "own" where it is the query's own value, "shared" where
        it is some key's, None where keys may differ.

        The selector is `select(k, q, ==)`, or an `and` with one, where no two distinct values
        of k compare equal (True == 1 and 1 == 1.0 would select keys a function tells
        apart); every selected key then holds the same k. The aggregated s-op is a function
        of s-ops that k determines within an input (k itself; for a width over a selector
        that strictly orders what it reads, those s-ops, see _orders_combinations) and of
        s-ops equal at every position (length, constants); "own" where k is q. Its values are
        small enough that the interpreter's sum of them stays exact (it adds before
        dividing: 1e308 + 1e308 overflows). `aggregate(select(tokens, tokens, ==), tokens *
        length)` had the means of every mixture enumerated (d_model 3,150 at max_seq_len
        10), and sort_unique over repeated tokens was refused at max_seq_len 80 (its
        means 1/6320 apart); both are copies."""
        sel, src = self.graph.children(node)
        nums = [abs(float(v)) for v in src_info.values if is_number(v)]
        if not _small_ints(nums, self.N):
            return None
        own: set[int] = set()
        shared: list[set[int]] = []
        stack = [sel]
        while stack:
            y = stack.pop()
            if isinstance(y, ir.SelectAnd):
                stack.extend(self.graph.children(y))
            elif isinstance(y, ir.Select) and y.ir_predicate.comparison == "==":
                keys, queries = self.graph.children(y)
                vals = self.info[keys.id].values
                if len(set(vals)) != len(vals):
                    continue
                if keys.id == queries.id:
                    own.add(keys.id)
                determined = {keys.id}
                if isinstance(keys, ir.SelectorWidth) and self.sel[self.graph.children(keys)[0].id].exact is None:
                    determined |= self._orders_combinations(keys, reflexive=True) or set()
                shared.append(determined)

        def function_of(y: ir.Node, known: set[int]) -> bool:
            if y.id in known or self.deps[y.id] <= {LEN}:
                return True
            return isinstance(y, ir.Map) and all(function_of(k, known) for k in self.graph.children(y))
        if own and function_of(src, own):
            return "own"
        return "shared" if any(function_of(src, known) for known in shared) else None

    def _means_over_positions(self, node: ir.Aggregate, sets: list[tuple], kind: str, tracr: bool,
                              prefix_sums: Optional[dict] = None) -> list:
        """Every value the aggregate can produce when exactly these key positions are selected
        (kind: "numeric" means, "copy" equal values, "mixed" either)."""
        if len(sets) == 1:      # (Tracr's mean of one int or bool is a float)
            return [float(v) if tracr and kind != "copy" and averaged(v, tracr) else v for v in sets[0]]
        if kind == "numeric":
            return _means_of(sets, node, prefix_sums)
        common = set.intersection(*(set((type(v), v) for v in s) for s in sets))
        out = [v for _, v in common if kind == "copy" or not averaged(v, tracr)]
        if kind == "mixed":
            parts = [self._numeric_part(s, tracr) for s in sets]
            if all(parts):
                out.extend(_means_of(parts, node, prefix_sums))
        return out

    def _numeric_part(self, values: tuple, tracr: bool) -> tuple:
        """The averaged values of a value set, one tuple per set (sumsets cache by the
        tuple's id)."""
        hit = self._numeric_parts.get((id(values), tracr))
        if hit is None:
            hit = self._numeric_parts[(id(values), tracr)] = \
                (values, tuple(v for v in values if averaged(v, tracr)))
        return hit[1]

    def _all_means(self, node: ir.Aggregate, values: tuple) -> tuple:
        """Means of any 1..N selected values drawn from `values` (with repetition)."""
        nums = [float(v) for v in values if isinstance(v, (int, float))]
        if not nums:
            return values
        by_count = _means_by_count(nums, self.N, node)
        if by_count is not None:
            fractions = []
            total = 0
            for _, means in by_count:
                fractions.append(means)
                total += len(means)
                if total > MAX_VALUES * 8:
                    raise CompileError("the mean of this aggregate can take too many different values to "
                                       "enumerate exactly", node)
            floats = np.unique(np.concatenate(fractions))
            if len(floats) > MAX_VALUES:
                raise CompileError(f"the mean of this aggregate can take {len(floats)} different values "
                                   f"(limit {MAX_VALUES}); the compiler cannot guarantee an exact model", node)
            out = floats.tolist()
            if node.semantics != "tracr":
                # a single selected int stays an int; list it just before the equal float
                ints = sorted({v for v in values if isinstance(v, int) and not isinstance(v, bool)})
                merged, j = [], 0
                for x in out:
                    while j < len(ints) and ints[j] <= x:
                        merged.append(ints[j])
                        j += 1
                    if not (merged and merged[-1] == x):   # 3 and 3.0 are one value: keep the int
                        merged.append(x)
                merged.extend(ints[j:])
                out = merged
            return tuple(out)
        if all(float(v).is_integer() for v in nums):
            raise _too_large_to_average(node)
        raise CompileError("the mean of several non-integer values cannot be enumerated exactly (their float "
                           "sums depend on the order of addition); aggregate integer-valued s-ops, or values "
                           "such as halves and quarters whose sums are exact (or make the selection unique)",
                           node)


def apply_vectorized(fn: ir.ElementFn, columns: Sequence[Any]) -> Optional[np.ndarray]:
    """fn over columns of arguments through its numpy implementation, the one the
    interpreter itself uses (so the results are the interpreter's); None where that does
    not apply: no implementation, a None or mixed types in a column, or an error (an
    error of one combination is for the Python loop to skip, as an unreachable one)."""
    if fn.vec is None:
        return None
    arrays = [c if isinstance(c, np.ndarray) else array_of(c) for c in columns]
    if not arrays or any(a.dtype == object for a in arrays):
        return None
    try:
        with np.errstate(all="raise"):
            out = np.asarray(fn.vec(*arrays))
    except (NotImplementedError, FloatingPointError, TypeError, ValueError, ArithmeticError):
        return None
    if out.shape != arrays[0].shape:
        out = np.broadcast_to(out, arrays[0].shape)
    return out


def on_distinct_inputs(fn: ir.ElementFn, kids: list[ir.Node]) -> tuple[ir.ElementFn, list[ir.Node]]:
    """fn as a function of its distinct inputs (`f * f` -> x * x of one input), so that
    value enumeration never pairs two different values of one s-op."""
    distinct = list({k.id: k for k in kids}.values())
    if len(distinct) == len(kids):
        return fn, kids
    index = {d.id: j for j, d in enumerate(distinct)}
    where = [index[k.id] for k in kids]
    expand = lambda args: [args[w] for w in where]       # noqa: E731
    vec = (lambda *a: fn.vec(*expand(a))) if fn.vec is not None else None
    return ir.ElementFn(lambda *a: fn.py(*expand(a)), len(distinct), fn.label, vec=vec,
                        takes_none=fn.takes_none), distinct


def _is_fraction(v: Any) -> bool:
    return isinstance(v, float) and math.isfinite(v) and not v.is_integer()


def _means_by_count(nums: list[float], count: int, node: ir.Aggregate) -> Optional[Iterator[tuple[int, np.ndarray]]]:
    """(m, every mean of m values drawn from `nums` with repetition) for m = 1..count, each
    sumset computed only when asked for; None where their sums are not exact in any order.

    Integers, or floats whose sums are exact (halves, quarters...), are summed as integers
    in units of 1/scale; s/(m*scale) is a correctly rounded float per rational (dividing by
    the power of two `scale` is exact, so it is also the interpreter's (s/scale)/m).
    Fractions with other small denominators (tenths) are summed in units of the lcm of
    their denominators: the means are the exact rationals, which the interpreter's float
    sums miss by rounding (such means are fuzzy, see Inference._track_rounding).
    """
    scale = _exact_sum_scale(nums, count)
    if scale is not None:
        ints = np.array(sorted({int(v * scale) for v in nums}), dtype=np.int64)
    else:
        scale = _fraction_scale(nums, count)
        if scale is None:
            return None
        ints = np.array(sorted({p * (scale // q) for p, q in map(_as_fraction, nums)}), dtype=np.int64)

    def by_count() -> Iterator[tuple[int, np.ndarray]]:
        current = ints
        for m in range(1, count + 1):
            if m > 1:
                current = _int_sumset(current, ints, node)
            yield m, current / (m * scale)
    return by_count()


def _exact_sum_scale(values: Sequence[float], count: int) -> Optional[int]:
    """The power of two that makes every value an integer, if sums of up to `count` of them
    are then exact in float64 whatever the order of addition (integers, halves, 0.375...);
    else None (0.1 is 3602879701896397 / 2**55: its sums round)."""
    scale = 1
    for v in values:
        if not math.isfinite(v):
            return None
        scale = max(scale, float(v).as_integer_ratio()[1])
    top = max((abs(float(v)) for v in values), default=0.0)
    return scale if top * scale * max(1, count) < 2.0 ** 52 else None


def _listed(value: Any, index: ValueIndex, values: Sequence[Any]) -> Any:
    """The listed value a float matches (see ValueIndex), or the value itself."""
    if not isinstance(value, float):
        return value
    i = index.find(value)
    return value if i is None else values[i]


def _has_fractions(values: Sequence[Any]) -> bool:
    return any(_is_fraction(v) for v in values)


def _nudge(v: Any, sign: float) -> Any:
    """A float a little past the rounding variants of v (10x the merge tolerance); other
    values unchanged."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return v
    return v + sign * 1e-11 * max(1.0, abs(v))


def _rounding_message(shown: str, merged_map: Optional[str] = None) -> str:
    if merged_map is not None:
        return (f"the result depends on the last bits of a float ({shown}): `{merged_map}` takes distinct "
                "values closer than 1e-12 of their size (offsets such as 1e-14 * indices), which the compiler "
                "counts as rounding variants of one value (float64 sums along different paths differ in such "
                "bits), and here a comparison tells them apart; space the values further apart (offsets of "
                "1e-10 of their size or more)")
    return (f"the result depends on the last bits of a float ({shown}): the interpreter computes it with "
            "float64 sums in an order the compiled model cannot reproduce (a mean of non-integer values, or "
            "values that are equal up to rounding), and here a comparison or rounding falls exactly on it; "
            "use integer values (e.g. tokens_int rather than tokens_int / 10) or a threshold between the "
            "values that can occur (values of separately computed s-ops are paired as if independent, so "
            "this one may not occur; a count is exact as selector_width)")


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
                not isinstance(a, bool) and not isinstance(b, bool):
            return abs(a - b) > 1e-9 * max(1.0, abs(a))
    return type(a) is not type(b) or a != b


def _rounding_flip(fn: ir.ElementFn, rows: Iterable[tuple], fuzzy: list, outs: set) -> Optional[tuple]:
    """An input combination (among `rows`) where fn changes if a fuzzy input moves by its
    rounding (see _nudge), or None; adds to `outs` the results of combinations with a fuzzy
    input. Errors at a moved point are skipped (no evidence either way)."""
    if len(fuzzy) == 1:
        only = fuzzy[0]
        combos = [args for args in rows if args[0] in only]
        table = _lookup_dict(fn)
        if table is not None:
            # (a key the dict lacks fails, so it is skipped: not called, and not raised)
            combos = [args for args in combos if args[0] in table]
    else:
        combos = [args for args in rows if any(a in f for a, f in zip(args, fuzzy))]
    for args in combos:
        base = call_element(fn, args)
        if base is FAILED:
            continue
        if isinstance(base, float):
            outs.add(base)
        for j, f in enumerate(fuzzy):
            if args[j] not in f:
                continue
            for sign in (1.0, -1.0):
                moved = call_element(fn, args[:j] + (_nudge(args[j], sign),) + args[j + 1:])
                if moved is not FAILED and _differs(base, moved):
                    return args
                if type(base) is int and moved is not FAILED and moved != base:
                    # (an int result that moves with its input, `x * 2` of a listed int 2
                    # that stands for 1.9999999999999998: the interpreter computes a variant
                    # of it; `round(x)` stays put and stays exact)
                    outs.add(base)
    return None


FAILED = object()      # (what call_element gives where the function raises)


_TAG_TUPLES_UP_TO = 4096       # (_distinct_products tags this few tuples one by one)


def _distinct_products(set_tuples: list[tuple], cap: int) -> Optional[list[tuple]]:
    """The distinct tuples of itertools.product(*sets) over every entry of `set_tuples`,
    in first-seen order, values told apart by type (True is not 1); None once an entry's
    product and the distinct tuples before it number more than `cap`. Each value becomes
    its index among its column's distinct values and each tuple one mixed-radix integer,
    so numpy dedupes them: tagging every value of every tuple took 2 s in the original
    RASP's rover.rasp."""
    if not set_tuples:
        return []
    width = len(set_tuples[0])
    index: list[dict] = [{} for _ in range(width)]
    small = sum(math.prod(len(s) for s in sets) for sets in set_tuples) <= _TAG_TUPLES_UP_TO
    ids_of: dict[tuple, np.ndarray] = {}      # (column, id of a set) -> its values' indices
    for sets in set_tuples if not small else ():
        for j, s in enumerate(sets):
            if (j, id(s)) not in ids_of:
                ix = index[j]
                ids_of[j, id(s)] = np.array([ix.setdefault((type(v), v), len(ix)) for v in s], dtype=np.int64)
    radix = [max(1, len(ix)) for ix in index]
    if small or math.prod(radix) >= 2 ** 62:      # (few tuples: tagging them is quicker)
        seen: dict[tuple, tuple] = {}
        for sets in set_tuples:
            if math.prod(len(s) for s in sets) + len(seen) > cap:
                return None
            for combo in itertools.product(*sets):
                seen.setdefault(tuple((type(v), v) for v in combo), combo)
        return list(seen.values())
    codes = []
    # the distinct codes so far, counted (in a set: a numpy union after each entry took a
    # second in long addition at 64) only once their upper bound, every code so far,
    # could pass the cap
    distinct: Optional[set] = None
    so_far = 0
    for sets in set_tuples:
        size = math.prod(len(s) for s in sets)
        if size + so_far > cap:
            if distinct is None:
                distinct = set(np.concatenate(codes).tolist()) if codes else set()
            if size + len(distinct) > cap:
                return None
        code = np.zeros(1, dtype=np.int64)
        for j, s in enumerate(sets):      # (row-major, like itertools.product)
            code = (code[:, None] * radix[j] + ids_of[j, id(s)][None, :]).reshape(-1)
        codes.append(code)
        if distinct is not None:
            distinct.update(code.tolist())
            so_far = len(distinct)
        else:
            so_far += len(code)
    every = np.concatenate(codes)
    _, first = np.unique(every, return_index=True)
    kept = every[np.sort(first)]
    values = [[v for _, v in ix] for ix in index]
    columns = []
    for j in range(width - 1, -1, -1):
        columns.append(kept % radix[j])
        kept = kept // radix[j]
    columns.reverse()
    return list(zip(*([values[j][c] for c in col.tolist()] for j, col in enumerate(columns))))


def _map_over_rows(fn: ir.ElementFn, rows: Iterable[Sequence[Any]]) -> tuple:
    """The values of fn over these input combinations (those where it raises skipped)."""
    return sorted_values([r for r in (call_element(fn, list(row)) for row in rows) if r is not FAILED])


def _collapse_private_steps(steps: list, outs: list[int], n_sources: int, sets: list
                           ) -> tuple[list[int], list, list[tuple[int, ir.ElementFn, list[int]]]]:
    """Enumerate a map whose arguments nothing else reads over those arguments alone: the
    rows depend on them only through its value, so its distinct values replace them
    (`indices > add_index` in long addition: 2 values, not 7 x 109 pairs). Returns the
    slots still enumerated, their value lists, and the steps left to evaluate per
    combination (with their result slots)."""
    uses: dict[int, int] = {}
    for _, args in steps:
        for j in args:
            uses[j] = uses.get(j, 0) + 1
    for j in outs:
        uses[j] = uses.get(j, 0) + 1
    values = {j: list(v) for j, v in enumerate(sets)}       # slot -> value list, while enumerated
    rest: list[tuple[int, ir.ElementFn, list[int]]] = []
    for k, (fn, args) in enumerate(steps):
        slot = n_sources + k
        if args and all(j in values and uses[j] == 1 for j in args) and len(set(args)) == len(args):
            seen: dict[tuple, Any] = {}
            for combo in itertools.product(*(values[j] for j in args)):
                v = call_element(fn, list(combo))
                if v is not FAILED:        # (a failing combination drops every row it is in)
                    seen.setdefault((type(v), v), v)
            for j in args:
                del values[j]
            values[slot] = list(seen.values())
        else:
            rest.append((slot, fn, args))
    kept = list(values)
    return kept, [values[j] for j in kept], rest


# the value types numpy holds exactly, and the array kinds that convert back to them
_PLAIN_TYPES = (bool, int, float, str)
_PLAIN_KINDS = "biufU"


def _split_by_type(values: Sequence[Any]) -> list[tuple[type, list[int]]]:
    """Each type among the values with their positions (types in order of first
    appearance): a value list's parts that numpy can hold without changing a type."""
    by_type: dict[type, list[int]] = {}
    for i, v in enumerate(values):
        by_type.setdefault(type(v), []).append(i)
    return list(by_type.items())


def _apply_by_type(fn: ir.ElementFn, sets: tuple) -> list:
    """fn's results over every combination of the sets, as Inference._apply's loop gives
    them (None once for combinations with a None that fn does not take; none for those
    that raise), in chunks: lists of values, and numpy arrays of the numbers that fn's
    numpy form computed. Each set is split by the types of its values and every choice
    of parts goes through that numpy form where there is one: a mean of indices holds
    ints where one key is selected and floats elsewhere, which made the loop run over
    every pair (long addition's refusal at max_seq_len 32 took 5 s of such loops)."""
    parts_per_set = [_parts_by_type(values) for values in sets]
    chunks: list = []
    for choice in itertools.product(*parts_per_set):
        types, lists = [t for t, _ in choice], [vs for _, vs in choice]
        if type(None) in types and not fn.takes_none:
            chunks.append([None])
            continue
        if all(t in _PLAIN_TYPES for t in types):
            arrays = [array_of(vs) for vs in lists]
            if all(a.dtype.kind in _PLAIN_KINDS for a in arrays):
                fast = apply_vectorized(fn, [_grid_column(arrays, k) for k in range(len(arrays))])
                if fast is not None and fast.dtype.kind in _PLAIN_KINDS:
                    chunks.append(fast if fast.dtype.kind in "iuf" else fast.tolist())
                    continue
        results = []
        for args in itertools.product(*lists):
            try:
                results.append(fn.py(*args))
            except Exception:
                continue        # (unreachable combination, or one the interpreter rejects too)
        chunks.append(results)
    return chunks


def _parts_by_type(values: Sequence[Any]) -> list[tuple[type, list]]:
    """Each type among the values with its values (types in order of first appearance)."""
    types = list(dict.fromkeys(map(type, values)))
    if len(types) == 1:
        return [(types[0], list(values))]
    return [(t, [v for v in values if type(v) is t]) for t in types]


def _typed_array(values: Sequence[Any]) -> Optional[np.ndarray]:
    """array_of(values) where its dtype is not object (values of one type, or ints or
    floats from Python and numpy), else None without building the object array."""
    types = set(map(type, values))
    if len(types) == 1 or types <= {int, np.int64} or types <= {float, np.float64}:
        arr = array_of(values)
        return arr if arr.dtype != object else None
    return None


def _sorted_chunks(chunks: list) -> tuple:
    """sorted_values of _apply_by_type's chunks, as of their values in order; numbers
    (with at most a None besides) are sorted and merged in numpy. (Listed one by one,
    the 1.5 million values of a sum with a fraction in long addition at max_seq_len 64
    took 3 s to sort.)"""
    arrays = [c for c in chunks if isinstance(c, np.ndarray)]
    lists = [c for c in chunks if not isinstance(c, np.ndarray)]
    if arrays and all(v is None for c in lists for v in c):
        numbers = _sorted_number_arrays([a for a in arrays if a.dtype.kind in "iu"],
                                        [a for a in arrays if a.dtype.kind == "f"])
        if numbers is not None:
            return numbers + ((None,) if lists and any(lists) else ())
    return sorted_values([v for c in chunks for v in (c.tolist() if isinstance(c, np.ndarray) else c)])


def _sorted_number_arrays(int_arrays: list[np.ndarray], float_arrays: list[np.ndarray]) -> Optional[tuple]:
    """_sorted_plain_numbers of the arrays' values (as Python ints and floats), or None
    where the order of the values could matter (a NaN; -0.0, which a set keeps or drops
    by what came first) or ints are too large to compare with floats exactly."""
    if any(a.dtype.kind == "u" for a in int_arrays):
        return None     # (unsigned with signed ints would concatenate as floats)
    ints = np.unique(np.concatenate(int_arrays)) if int_arrays else np.empty(0, dtype=np.int64)
    if ints.size and max(-int(ints[0]), int(ints[-1])) >= 10 ** 11:
        return None     # (ints this far apart from 0 may be within the merge tolerance of each other)
    ints = ints.astype(np.int64)
    floats = np.concatenate(float_arrays) if float_arrays else np.empty(0)
    if floats.size and (np.isnan(floats).any() or np.signbit(floats[floats == 0]).any()):
        return None
    floats = np.unique(floats)
    if not floats.size:
        return tuple(ints.tolist())
    if not ints.size:
        return _merge_near(floats.tolist(), floats, floats_only=True)
    floats = floats[~np.isin(floats, ints.astype(np.float64))]    # (the int of 3 and 3.0)
    values = np.concatenate([ints.astype(np.float64), floats])
    order = np.argsort(values, kind="stable")
    merged = np.concatenate([ints.astype(object), floats.astype(object)])[order].tolist()
    return _merge_near(merged, values[order], is_int=order < len(ints))


def _lineage_rows_vectorized(kept: list[int], sets: list, rest: list[tuple[int, ir.ElementFn, list[int]]],
                             outs: list[int]) -> Optional[list[tuple]]:
    """_lineage_rows' rows for one position through the maps' numpy implementations (the
    interpreter's own), in the order the combination loop finds them. A value list that
    mixes types (a mean of ints: an int where one key is selected, else a float) is split
    into one array per type, and each choice of parts evaluated apart, so every map sees
    the types the loop would give it. None where a value is no bool, number or string, a
    map has no numpy form or fails on some combination (the loop then drops just those),
    or a result is NaN. (The original RASP's autoregressive reverse at max_seq_len 16
    evaluated 7.6 million combinations one call at a time: 9 s.)"""
    parts_per_set = []
    for values in sets:
        parts = []
        for t, idx in _split_by_type(values):
            if t not in _PLAIN_TYPES:
                return None
            arr = array_of([values[i] for i in idx])
            if arr.dtype.kind not in _PLAIN_KINDS:
                return None
            parts.append((np.array(idx, dtype=np.int64), arr))
        parts_per_set.append(parts)
    strides = [math.prod(len(v) for v in sets[k + 1:]) for k in range(len(sets))]
    orders, pieces = [], [[] for _ in outs]
    for choice in itertools.product(*parts_per_set):
        arrays = [arr for _, arr in choice]
        vals = {slot: _grid_column(arrays, k) for k, slot in enumerate(kept)}
        for slot, fn, args in rest:
            out = apply_vectorized(fn, [vals[j] for j in args])
            if out is None or out.dtype.kind not in _PLAIN_KINDS:
                return None
            vals[slot] = out
        positions = [idx for idx, _ in choice]
        orders.append(sum((_grid_column(positions, k) * strides[k] for k in range(len(sets))),
                          np.zeros(math.prod(len(a) for a in arrays), dtype=np.int64)))
        for j, slot in enumerate(outs):
            column = np.broadcast_to(np.asarray(vals[slot]), orders[-1].shape)
            if column.dtype.kind == "f" and np.isnan(column).any():
                return None
            pieces[j].append(column)
    order = np.concatenate(orders) if orders else np.zeros(0, dtype=np.int64)
    if not len(order):
        return []
    if not outs:
        return [()]
    # each output's values coded across the parts by (type, value), as the loop keys rows
    codes = np.empty((len(order), len(outs)), dtype=np.int64)
    decoded: list[list] = []
    for j, column_parts in enumerate(pieces):
        index: dict[tuple, int] = {}
        values_of: list = []
        start = 0
        for part in column_parts:
            uniq, inverse = np.unique(part, return_inverse=True)
            ids = []
            for v in uniq.tolist():
                if (type(v), v) not in index:
                    index[(type(v), v)] = len(values_of)
                    values_of.append(v)
                ids.append(index[(type(v), v)])
            codes[start:start + len(part), j] = np.array(ids, dtype=np.int64)[inverse.reshape(-1)]
            start += len(part)
        decoded.append(values_of)
    # distinct rows, each at the first combination the loop would meet it (smallest order)
    radix = np.cumprod([1] + [len(v) for v in decoded[:-1]]).astype(np.int64)
    if math.prod(len(v) for v in decoded) < 2 ** 62:
        keys, inverse = np.unique(codes @ radix, return_inverse=True)
        distinct = (keys[:, None] // radix[None, :]) % np.array([len(v) for v in decoded], dtype=np.int64)
    else:
        distinct, inverse = np.unique(codes, axis=0, return_inverse=True)
    first = np.full(len(distinct), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inverse.reshape(-1), order)
    distinct = distinct[np.argsort(first)]
    return [tuple(decoded[j][c] for j, c in enumerate(row)) for row in distinct.tolist()]


def call_element(fn: ir.ElementFn, args: Sequence[Any]) -> Any:
    """fn on one combination as the interpreter applies it: a None argument gives None
    (unless fn takes None); an error gives FAILED."""
    if not fn.takes_none and any(a is None for a in args):
        return None
    try:
        return fn.py(*args)
    except Exception:
        return FAILED


def _lookup_dict(fn: ir.ElementFn) -> Optional[dict]:
    """The dict a `d[x]` lookup reads (rasp.ops.lookup_fn keeps it as its constant), or None
    for any other function: its value for x is the dict's where x is a key, else an error."""
    return fn.consts[0] if fn.op == "lookup" and isinstance(fn.consts[0], dict) else None


def _dict_lookups(table: dict, values: tuple, none_gives_none: bool) -> list:
    """Inference._apply's loop for a dict lookup (`char[x]`), without raising an error for
    each missing key: the map of a fractional sum in long addition looked up 806,000
    values at max_seq_len 64, nearly all of them missing."""
    out = []
    for x in values:
        if x is None and none_gives_none:
            out.append(None)
        elif x in table:
            out.append(table[x])
    return out


def _apply_batched(fn: ir.ElementFn, set_list: list[tuple]) -> Optional[list[tuple]]:
    """The map's value set for each tuple of input value sets, in one numpy pass over all
    of them (a map over means has a different input set at every position: 40 small
    passes cost more than one big one); None where that does not apply and each tuple
    goes through Inference._apply."""
    if fn.vec is None or len(set_list) < 2:
        return None
    totals = [math.prod(len(s) for s in sets) for sets in set_list]
    if max(totals) > MAX_TUPLES or sum(totals) > 4 * MAX_TUPLES or max(totals) <= 64:
        return None
    arrays = [[array_of(s) for s in sets] for sets in set_list]
    if any(a.dtype == object for row in arrays for a in row) or \
            any(len({row[k].dtype for row in arrays}) > 1 for k in range(fn.arity)):
        return None     # (mixed dtypes would change the arithmetic: int // int vs float)
    columns = [np.concatenate([_grid_column(row, k) for row in arrays]) for k in range(fn.arity)]
    out = apply_vectorized(fn, columns)
    if out is None or out.dtype.kind not in "iuf":
        return None
    return _sorted_values_grouped(out, totals)


def _grid_column(arrays: list[np.ndarray], k: int) -> np.ndarray:
    """Input k of every combination of the arrays, in itertools.product order
    (np.meshgrid's column, without its overhead)."""
    inner = math.prod(len(a) for a in arrays[k + 1:])
    outer = math.prod(len(a) for a in arrays[:k])
    return np.tile(np.repeat(arrays[k], inner), outer)


def _sorted_values_grouped(values: np.ndarray, sizes: list[int]) -> Optional[list[tuple]]:
    """sorted_values of each run of a numeric array (runs of `sizes`) at once (None if a
    NaN or a merge needs the one-at-a-time rule)."""
    v = values.copy()
    bounds = np.cumsum([0] + sizes).tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        v[a:b].sort()       # (one lexsort of everything took longer than these small sorts)
    g = np.repeat(np.arange(len(sizes)), sizes)
    count = len(sizes)
    if v.dtype.kind == "f" and np.isnan(v).any():
        return None
    fresh = np.ones(len(v), dtype=bool)
    fresh[1:] = (v[1:] != v[:-1]) | (g[1:] != g[:-1])
    v, g = v[fresh], g[fresh]
    if v.dtype.kind == "f" and len(v) > 1:
        near = _near_mask(v) & (g[1:] == g[:-1])
        if near.any():
            merged = _merge_float_groups(v, near)
            if merged is None:
                return None
            v, g = merged[0], g[merged[1]]
    bounds = np.searchsorted(g, np.arange(count + 1)).tolist()
    flat = v.tolist()
    return [tuple(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _too_many_values(node: ir.SOp) -> CompileError:
    return CompileError(f"this s-op can take more than {MAX_VALUES} different values over the domain; "
                        "the compiler cannot guarantee an exact model (use a smaller vocabulary or "
                        "max_seq_len)", node)


def _too_large_to_average(node: ir.Aggregate) -> CompileError:
    return CompileError("the values of this aggregate are too large to average exactly (sums must stay "
                        "below 2**52)", node)


def _small_ints(values: Sequence[float], count: int) -> bool:
    """Sums of `count` of these integers stay exact in int64 (and in float64)."""
    return max((abs(v) for v in values), default=0.0) * max(1, count) < 2.0 ** 52


def _int_sumset(a: np.ndarray, b: np.ndarray, node: ir.Aggregate) -> np.ndarray:
    """All sums x + y (x in a, y in b; sorted distinct int64 arrays), sorted and distinct.

    Dense (indicator vectors convolved) when the value ranges are narrow, sparse (outer
    sums) when they are wide: a vocabulary {0, 10**6} has 2 values but a span of 10**6,
    which made the dense convolution run for minutes.
    """
    span_a, span_b = int(a[-1] - a[0]) + 1, int(b[-1] - b[0]) + 1
    if span_a * span_b <= 8 * len(a) * len(b) + 4096:
        da = np.zeros(span_a, dtype=bool)
        da[a - a[0]] = True
        db = np.zeros(span_b, dtype=bool)
        db[b - b[0]] = True
        return np.flatnonzero(np.convolve(da, db)) + (a[0] + b[0])
    if len(a) * len(b) <= 8 * MAX_VALUES:
        return np.unique(np.add.outer(a, b))
    if span_a + span_b <= _MAX_FFT_SPAN:
        # many values over a span that is wide but not huge (a mean of means in units of
        # 1/3600): the indicators convolved by FFT (the counts are integers, and float64
        # rounding stays far below 1/2 at these sizes)
        size = span_a + span_b - 1
        n_fft = 1 << (size - 1).bit_length()
        da = np.zeros(span_a)
        da[a - a[0]] = 1.0
        db = np.zeros(span_b)
        db[b - b[0]] = 1.0
        counts = np.fft.irfft(np.fft.rfft(da, n_fft) * np.fft.rfft(db, n_fft), n_fft)[:size]
        return np.flatnonzero(counts > 0.5) + (a[0] + b[0])
    raise CompileError("the mean of this aggregate can take too many different values to enumerate "
                       "exactly", node)


def _integer_interval(values: tuple) -> Optional[tuple[int, int]]:
    """(lo, hi) where the values are, as numbers, every integer from lo to hi (a token
    indicator's {False, True}, a digit 0..9); else None."""
    try:
        nums = sorted({float(v) for v in values})
    except (TypeError, ValueError):
        return None
    if not nums or not all(x.is_integer() for x in nums) or nums[-1] - nums[0] + 1 != len(nums):
        return None
    return int(nums[0]), int(nums[-1])


def _interval_means(lo: int, hi: int, count: int, node: ir.Aggregate) -> Optional[list]:
    """_means_of `count` (>= 2) sets that each hold every integer lo..hi, in closed form:
    the sums are every integer from count * lo to count * hi (a causal mean of a token
    indicator at max_seq_len 40 had one convolution per query). None where the sums
    might not be exact (the general path then refuses)."""
    if not _small_ints([float(lo), float(hi)], count):
        return None
    if count * (hi - lo) + 1 > MAX_VALUES:
        raise _too_many_values(node)
    return (np.arange(count * lo, count * hi + 1, dtype=np.int64) / count).tolist()


def _means_of(sets: list[tuple], node: ir.Aggregate, prefix_cache: Optional[dict] = None) -> list:
    """Every mean picking one value from each set (sets of numbers), as floats."""
    sums, scale = _sumset_many(sets, node, prefix_cache)
    if len(sums) > MAX_VALUES:      # (distinct sums: as many distinct means; refused now, not
        raise _too_many_values(node)  # after sorting millions of them into the value set)
    # (integer sums over an integer: one correctly rounded division, the same float for
    # the same rational however it arises)
    return (sums / (scale * len(sets))).tolist()


def _sumset_many(sets: list[tuple], node: ir.Aggregate, prefix_cache: Optional[dict] = None
                 ) -> tuple[np.ndarray, int]:
    """All sums picking one value from each set (sets of numbers): (sums, scale), the sums
    being `sums / scale`.

    Integer sets are convolved as indicator vectors; so are sets of fractions with small
    denominators (the means of an inner aggregate: 2/3, 5/7...), in units of 1/scale, the
    least common multiple of their denominators. Summing their floats instead listed every
    rounding variant of every sum, and merging those took minutes for a mean of a mean.
    `prefix_cache` (keyed by the ids of a prefix of the sets) lets a causal selector reuse
    the sums of the previous query, so all queries together cost O(N) convolutions
    instead of O(N^2).
    """
    distinct = {id(s): s for s in sets}         # (a causal mean over tokens: one set, i times)
    floats = {k: [float(v) for v in s] for k, s in distinct.items()}
    scale = 1
    if not all(all(v.is_integer() for v in s) for s in floats.values()):
        scale = _fraction_scale([v for s in floats.values() for v in s], len(sets))
    if scale is not None:
        if not _small_ints([v * scale for s in floats.values() for v in s], len(sets)):
            raise _too_large_to_average(node)
        units = (lambda v: int(v)) if scale == 1 else (lambda v: _as_fraction(v)[0] * (scale // _as_fraction(v)[1]))
        ints = {k: np.array(sorted({units(v) for v in s}), dtype=np.int64) for k, s in floats.items()}
        cache = prefix_cache if prefix_cache is not None else {}
        ids = (scale,) + tuple(id(s) for s in sets)
        start = len(sets)
        while start > 0 and ids[:start + 1] not in cache:
            start -= 1
        acc = cache.get(ids[:start + 1], np.zeros(1, dtype=np.int64))
        try:
            for k in range(start, len(sets)):
                acc = _int_sumset(acc, ints[ids[k + 1]], node)
                cache[ids[:k + 2]] = acc
            return acc, scale
        except CompileError:
            if scale == 1:
                raise
            # (fine units spread the sums too far for the convolution: sum the floats)
    current = {0.0}
    for s in sets:
        if len(current) * len(floats[id(s)]) > 8 * MAX_VALUES:     # (refused before, not after, building it)
            raise CompileError("the mean of this aggregate can take too many different values", node)
        current = {a + b for a in current for b in floats[id(s)]}
        if len(current) > MAX_VALUES:
            raise CompileError("the mean of this aggregate can take too many different values", node)
    return np.array(sorted(current), dtype=np.float64), 1


_MAX_RANK_ROWS = 2000        # (a rank check costs a few rows**2 operations)
_MAX_INJECTIVE_ROWS = 100_000   # (an injectivity check over uniform inputs costs one call per row)
_MAX_FRACTION_SCALE = 1 << 20
_MAX_FFT_SPAN = 1 << 23


def _fraction_scale(values: list[float], count: int) -> Optional[int]:
    """The least common multiple of the values' denominators when each value is (to the
    merge tolerance) a fraction with a small denominator and sums of `count` of them stay
    exact integers in those units; else None."""
    scale = 1
    for v in set(values):
        p, q = _as_fraction(v)
        if q == 0:
            return None
        scale = scale * q // math.gcd(scale, q)
        if scale > _MAX_FRACTION_SCALE:
            return None
    top = max((abs(v) for v in values), default=0.0)
    return scale if top * scale * max(1, count) < 2.0 ** 52 else None


@functools.lru_cache(maxsize=65536)
def _as_fraction(v: float) -> tuple[int, int]:
    """(p, q) with p/q the simplest fraction within the merge tolerance of v (q <= 10**6),
    or (0, 0) if there is none."""
    if not math.isfinite(v):
        return 0, 0
    f = Fraction(v).limit_denominator(1_000_000)
    if abs(float(f) - v) > 1e-12 * max(1.0, abs(v)):
        return 0, 0
    return f.numerator, f.denominator


def _object_row(row: list) -> np.ndarray:
    out = np.empty(len(row), dtype=object)
    out[:] = row if not any(isinstance(v, (list, tuple)) for v in row) else [None] * len(row)
    if any(isinstance(v, (list, tuple)) for v in row):
        for i, v in enumerate(row):
            out[i] = v
    return out


def _tok_key(t: Any) -> tuple:
    return (type(t), t)


def infer(graph: ProgramGraph, vocab: Sequence[Any], max_seq_len: int) -> Inference:
    return Inference(graph, vocab, max_seq_len)
