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
from dataclasses import dataclass, field
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


ONE = Feature("one", kind="one")
BOS = Feature("bos", kind="bos")


class Read:
    """A linear function of the residual: sum of coefficient * feature (sparse)."""

    __slots__ = ("terms",)

    def __init__(self, terms: Optional[dict[Feature, float]] = None) -> None:
        self.terms: dict[Feature, float] = {}
        for f, c in (terms or {}).items():
            if c != 0.0:
                self.terms[f] = float(c)

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
    """

    def __init__(self, size: int, with_constant: bool = True) -> None:
        self.size = size
        self.features: list[Feature] = []
        self.vectors: list[np.ndarray] = []
        self.with_constant = with_constant
        self._matrix: Optional[np.ndarray] = None

    def _basis_matrix(self) -> np.ndarray:
        if self._matrix is None:
            cols = list(self.vectors)
            if self.with_constant:
                cols.append(np.ones(self.size))
            self._matrix = np.stack(cols, axis=1) if cols else np.zeros((self.size, 0))
        return self._matrix

    def express(self, vec: np.ndarray) -> Optional[dict[Feature, float]]:
        vec = np.asarray(vec, dtype=np.float64)
        if not np.all(np.isfinite(vec)):
            return None
        A = self._basis_matrix()
        if A.shape[1] == 0:
            return {} if np.all(vec == 0) else None
        coef, *_ = np.linalg.lstsq(A, vec, rcond=None)
        scale = max(1.0, float(np.max(np.abs(vec))))
        if np.max(np.abs(A @ coef - vec)) > 1e-9 * scale:
            return None
        terms: dict[Feature, float] = {}
        for f, c in zip(self.features, coef[:len(self.features)]):
            if abs(c) > 1e-12:
                terms[f] = float(c)
        if self.with_constant and abs(coef[-1]) > 1e-12:
            terms[ONE] = float(coef[-1])
        return terms

    def add(self, feature: Feature, vec: np.ndarray) -> None:
        self.features.append(feature)
        self.vectors.append(np.asarray(vec, dtype=np.float64))
        self._matrix = None

    def express_or_add(self, vec: np.ndarray, make: "callable") -> dict[Feature, float]:
        terms = self.express(vec)
        if terms is not None:
            return terms
        feature = make()
        self.add(feature, vec)
        return {feature: 1.0}
