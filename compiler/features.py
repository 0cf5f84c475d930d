"""Residual-stream features: named directions, and linear reads of them.

A `Feature` is one direction of the residual stream with a meaning: it holds a known
real function of one s-op's value (`sop_id`, `fn` over that s-op's value list), or
one of the two constants every position has (`one`, and `bos` at the BOS position).
Blocks read the residual through `Read`s (sparse linear combinations of features) and
write features; the residual layout (`compiler.residual`) gives each feature its
index only at the end, so no stage below depends on the layout.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Optional

import numpy as np

_feature_ids = itertools.count()


@dataclass(eq=False)
class Feature:
    """One residual direction."""

    label: str
    sop_id: Optional[int] = None            # the s-op whose value it encodes
    fn: Optional[np.ndarray] = None         # its value for each of the s-op's values
    kind: str = "value"                     # "onehot", "value", "aux", "one", "bos", "raw"
    value: Any = None                       # for one-hot features: the value it marks
    uid: int = field(default_factory=lambda: next(_feature_ids))

    def __hash__(self) -> int:
        return self.uid

    def __repr__(self) -> str:
        return f"Feature({self.label})"

    @cached_property
    def integer_valued(self) -> bool:
        """Whether every value it holds is an integer (`one` and `bos` are 0/1); asked once
        per feature and read many times (fn does not change after creation)."""
        if self.kind in ("one", "bos"):
            return True
        return self.fn is not None and bool((np.mod(self.fn, 1.0) == 0).all())


ONE = Feature("one", kind="one")
BOS = Feature("bos", kind="bos")


def integer_combination(terms: dict) -> bool:
    """Integer coefficients of features whose values are all integers (`one` and `bos` are
    0/1): float32 sums such a read of near-integer values to near an integer, exactly where
    the values are exact and small."""
    # (two passes of C-level maps: this is asked of every row of a position embedding)
    return all(map(float.is_integer, map(float, terms.values()))) and all(map(_integer_valued, terms))


_integer_valued = operator.attrgetter("integer_valued")

# largest ratio of a basis combination's summed term sizes to its result's size that
# express_or_add accepts (float32 rounding grows with it)
MAX_AMPLIFICATION = 1000.0


class Read:
    """A linear function of the residual: sum of coefficient * feature (sparse)."""

    __slots__ = ("terms",)

    def __init__(self, terms: Optional[dict[Feature, float]] = None) -> None:
        self.terms: dict[Feature, float] = {f: float(c) for f, c in terms.items() if c != 0.0} if terms else {}

    @staticmethod
    def const(value: float) -> "Read":
        return Read({ONE: value}) if value != 0 else Read()

    def __add__(self, other: "Read") -> "Read":
        out = dict(self.terms)
        for f, c in other.terms.items():
            out[f] = out.get(f, 0.0) + c
        return Read(out)

    def scale(self, k: float) -> "Read":
        return Read({f: c * k for f, c in self.terms.items()})

    def features(self) -> Iterable[Feature]:
        return self.terms.keys()

    def max_abs(self) -> float:
        return max((abs(c) for c in self.terms.values()), default=0.0)

    def __repr__(self) -> str:
        return " + ".join(f"{c:g}*{f.label}" for f, c in self.terms.items()) or "0"


class Basis:
    """Features spanning functions on a finite domain; new functions reuse the span.

    `express(vec)` returns coefficients over the existing features if `vec` is (up to
    float tolerance) a linear combination of them and the constant; otherwise None.
    Used so that, e.g., a token-dependent function costs a new residual direction only
    when it is not already a combination of the token features that exist.

    Kept as an incremental QR factorisation (B = Q R), so each query costs
    O(size * features) instead of a fresh least-squares solve; sets of indicator
    (one-hot) functions are recognised directly.
    """

    def __init__(self, size: int, with_constant: bool = True) -> None:
        self.size = size
        self.features: list[Feature] = []
        self.vectors: list[np.ndarray] = []
        self._sizes: dict[int, float] = {}     # feature uid -> largest |entry| of its vector
        self.with_constant = with_constant
        # Q (orthonormal columns) and R^-1 kept in preallocated buffers: a compile asks
        # thousands of small questions, so appending must not copy the factorisation
        self._k = 0
        self._q_buf = np.zeros((size, 8))
        self._rinv_buf = np.zeros((8, 8))
        self._cols: list[Optional[Feature]] = []     # feature per QR column (None: the constant)
        # domain index -> the feature that is nonzero there alone, and its value there
        self._indicator: dict[int, tuple[Feature, float]] = {}
        # added columns not yet in the factorisation: one-hot features (most embedding
        # features) are expressed without it, so it is only updated when a query needs it
        self._pending: list[tuple[Feature, np.ndarray]] = []
        self._only_indicators = True    # every feature added so far is a (scaled) indicator
        self._off = np.ones(size, dtype=bool)   # positions without an indicator feature
        if with_constant and size:
            self._append_column(None, np.ones(size))

    @property
    def _q(self) -> np.ndarray:
        return self._q_buf[:, :self._k]

    def _append_column(self, feature: Optional[Feature], vec: np.ndarray) -> bool:
        q = self._q
        coef = q.T @ vec
        resid = vec - q @ coef
        coef2 = q.T @ resid          # second Gram-Schmidt pass for stability
        resid = resid - q @ coef2
        coef = coef + coef2
        norm = math.sqrt(float(resid @ resid))
        if norm <= 1e-10 * max(1.0, math.sqrt(float(vec @ vec))):
            return False
        k = self._k
        if k == self._q_buf.shape[1]:
            self._q_buf = np.concatenate([self._q_buf, np.zeros_like(self._q_buf)], axis=1)
            grown = np.zeros((2 * k, 2 * k))
            grown[:k, :k] = self._rinv_buf
            self._rinv_buf = grown
        self._q_buf[:, k] = resid / norm
        # inverse of [[R, coef], [0, norm]] from R^-1: [[R^-1, -R^-1 coef / norm], [0, 1 / norm]]
        rinv = self._rinv_buf
        rinv[:k, k] = -(rinv[:k, :k] @ coef) / norm
        rinv[k, k] = 1.0 / norm
        self._k = k + 1
        self._cols.append(feature)
        return True

    @staticmethod
    def _indicator_index(vec: np.ndarray) -> Optional[int]:
        nz = vec.nonzero()[0]
        return int(nz[0]) if len(nz) == 1 and math.isfinite(vec[nz[0]]) else None

    def express(self, vec: np.ndarray) -> Optional[dict[Feature, float]]:
        # (array methods, not numpy's functions: a compile asks thousands of questions about
        # vectors of a few dozen entries, where the functions' overhead dominated)
        vec = np.asarray(vec, dtype=np.float64)
        if vec.size == 0:
            return {}
        hi, lo = float(vec.max()), float(vec.min())
        if not (math.isfinite(hi) and math.isfinite(lo)):
            return None
        top = max(hi, -lo)
        if top == 0.0:
            return {}
        if self._indicator:
            # supported on positions that have indicator features: the vector is their
            # combination with its own entries as coefficients (exact, no solve)
            nz = vec.nonzero()[0].tolist()
            ind = self._indicator
            if all(j in ind for j in nz):
                vals = vec.tolist()
                return {ind[j][0]: vals[j] / ind[j][1] for j in nz}
        if self._only_indicators and len(self._indicator) < self.size and (self.with_constant or self._indicator):
            return self._express_over_indicators(vec, top)
        for feature, column in self._pending:
            self._append_column(feature, column)
        self._pending.clear()
        k = self._k
        if k == 0:
            return None
        q = self._q
        coef = q.T @ vec
        resid = vec - q @ coef
        if float(np.abs(resid).max()) > 1e-9 * max(1.0, top):
            return None
        sol = self._rinv_buf[:k, :k] @ coef
        terms: dict[Feature, float] = {}
        for f, c in zip(self._cols, sol.tolist()):
            if abs(c) > 1e-12:
                key = f if f is not None else ONE
                terms[key] = terms.get(key, 0.0) + c
        return terms

    def _well_conditioned(self, terms: dict[Feature, float], top: float) -> bool:
        """Whether the combination computes a vector of largest entry `top` without
        amplifying float32 rounding: its terms' sizes add up to at most MAX_AMPLIFICATION
        times the vector's own size. A position's one-hot written as 12288 - 125.6 * code +
        0.32 * code^2 (code ~ 190) rounds by ~1e-3 in float32, and a gate read that way broke
        an MLP's AND units; a direction of its own is exact."""
        if len(terms) <= 1:
            return True
        total = sum(abs(c) * self._sizes.get(f.uid, 1.0) for f, c in terms.items())
        return total <= MAX_AMPLIFICATION * max(1.0, top)

    def _acceptable(self, terms: Optional[dict[Feature, float]], top: float, integral: bool,
                    single: bool) -> bool:
        """Whether express_or_add may use this combination (see there)."""
        return terms is not None and self._well_conditioned(terms, top) and \
            (not integral or integer_combination(terms)) and \
            (not single or sum(f is not ONE for f in terms) <= 1)

    def _express_over_indicators(self, vec: np.ndarray, top: float) -> Optional[dict[Feature, float]]:
        """express() while every feature is an indicator of its own position (and some
        position has none): the vector is in their span (with the constant) exactly when
        it is constant off those positions; the terms are the ones the solve would give,
        without building the factorisation (an embedding of 40 positions asked ~80 such
        questions)."""
        rest = vec[self._off]
        c = float(rest.sum()) / rest.size if self.with_constant else 0.0
        if max(float(rest.max()) - c, c - float(rest.min())) > 1e-9 * max(1.0, top):
            return None
        terms: dict[Feature, float] = {ONE: c} if abs(c) > 1e-12 else {}
        vals = vec.tolist()
        for j, (f, scale) in self._indicator.items():
            coef = (vals[j] - c) / scale
            if abs(coef) > 1e-12:
                terms[f] = coef
        return terms

    def add(self, feature: Feature, vec: np.ndarray) -> None:
        vec = np.asarray(vec, dtype=np.float64)
        self.features.append(feature)
        self.vectors.append(vec)
        self._sizes[feature.uid] = float(np.abs(vec).max(initial=0.0))
        j = self._indicator_index(vec)
        if j is None or j in self._indicator:
            self._only_indicators = False
        if j is not None:
            self._indicator[j] = (feature, float(vec[j]))
            self._off[j] = False
        self._pending.append((feature, vec))

    def express_or_add(self, vec: np.ndarray, make: "callable", integral: bool = False,
                       single: bool = False) -> dict[Feature, float]:
        """`vec` as a well-conditioned combination of the basis, else a new feature.
        `integral`: the combination must also be one of integer multiples of integer-valued
        features (integer_combination), which float32 sums exactly; `single`: of one
        feature (and the constant), so that its error is one feature's."""
        terms = self.express(vec)
        if self._acceptable(terms, float(np.abs(vec).max(initial=0.0)) if terms else 0.0, integral, single):
            return terms
        feature = make()
        self.add(feature, vec)
        return {feature: 1.0}

    def express_or_add_many(self, vecs: list[np.ndarray], make: "callable",
                            integral: "callable" = lambda j: False,
                            single: "callable" = lambda j: False) -> list[dict[Feature, float]]:
        """express_or_add of each vector in turn (`make(i)` builds vector i's feature,
        `integral(i)` and `single(i)` say what its combination must be).
        (One vector at a time: batched projections with rank-one updates of the rest
        measured slower, 1.3 s against 11 s for 2,400 vectors of 1,200 values.)"""
        if len(vecs) >= 8 and self.size and self._only_indicators and (self.with_constant or self._indicator):
            mat = np.asarray(vecs, dtype=np.float64)
            if mat.shape == (len(vecs), self.size) and bool(np.isfinite(mat).all()):
                return self._many_over_indicators(vecs, mat, make, integral, single)
        return [self.express_or_add(v, lambda j=j: make(j), integral(j), single(j)) for j, v in enumerate(vecs)]

    def _many_over_indicators(self, vecs: list[np.ndarray], mat: np.ndarray, make: "callable",
                              integral: "callable", single: "callable") -> list[dict[Feature, float]]:
        """express_or_add_many while every feature is an indicator of its own position (a
        position embedding: 40 one-hot queries and 40 prefix keys at max_seq_len 40), with
        the nonzeros of all vectors found at once. A vector supported on positions that
        have indicators is their combination, its entries the coefficients (express's first
        rule); one nonzero entry elsewhere, with two or more positions uncovered, is in no
        combination (_express_over_indicators), so it becomes the next indicator; any
        other vector, or any once a non-indicator feature exists, goes one at a time."""
        rows, cols = np.nonzero(mat)
        ends = np.cumsum(np.bincount(rows, minlength=len(vecs))).tolist()
        cols_l, vals_l = cols.tolist(), mat[rows, cols].tolist()
        magnitudes = np.abs(mat)
        # (an indicator's size is its scale, so a combination of them sums its terms' sizes
        # to the vector's own absolute sum: _well_conditioned without a pass over the terms)
        amplified = (magnitudes.sum(axis=1) > MAX_AMPLIFICATION * np.maximum(1.0, magnitudes.max(axis=1))).tolist()
        uncovered = int(self._off.sum())
        out: list[dict[Feature, float]] = []
        start = 0
        for j, vec in enumerate(vecs):
            nz, vals = cols_l[start:ends[j]], vals_l[start:ends[j]]
            start = ends[j]
            ind = self._indicator
            fresh_indicator = len(nz) == 1 and nz[0] not in ind and uncovered >= 2 and abs(vals[0]) > 1e-6
            if not self._only_indicators or not nz or not (fresh_indicator or all(map(ind.__contains__, nz))):
                out.append(self.express_or_add(vec, lambda j=j: make(j), integral(j), single(j)))
                uncovered = int(self._off.sum())
                continue
            if not fresh_indicator:
                terms = {ind[p][0]: v / ind[p][1] for p, v in zip(nz, vals)}
                if (len(terms) <= 1 or not amplified[j]) and \
                        (not integral(j) or integer_combination(terms)) and \
                        (not single(j) or len(terms) <= 1):
                    out.append(terms)
                    continue
            feature = make(j)
            self.add(feature, vec)
            uncovered -= fresh_indicator
            out.append({feature: 1.0})
        return out

    def remove(self, drop: set[int]) -> None:
        """Forget features (by uid) and rebuild the factorisation."""
        kept = [(f, v) for f, v in zip(self.features, self.vectors) if f.uid not in drop]
        self.__init__(self.size, self.with_constant)
        for f, v in kept:
            self.add(f, v)

