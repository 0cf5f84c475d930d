"""Reading s-ops back out of the residual stream of a compiled model.

Every function of an s-op that some block reads (a `Ref`) is, by construction, a linear
functional of the residual stream that equals a known function of the s-op's value.
Collecting them per s-op gives a probe: apply the functionals to a residual vector and
find the value whose known functions match. This is exact by construction (no fitting),
covers virtual s-ops (their reads are combinations of their inputs' features), and is
the basis of per-layer decoding, interventions and the compiler's own self-checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rasp import ir

from .features import Read
from .lower import Lowered
from .residual import Layout
from .schedule import Schedule


@dataclass
class Probe:
    """Linear read-outs of one s-op: reads @ resid + consts == table[:, value index]."""

    node: ir.SOp
    values: tuple
    reads: np.ndarray          # [k, d_model]
    consts: np.ndarray         # [k]
    table: np.ndarray          # [k, number of values]
    time: int                  # residual time from which the reads are valid (0 = embedding)

    def functions(self, resid: np.ndarray) -> np.ndarray:
        """The k probed functions at each position: resid [..., d_model] -> [..., k]."""
        return resid @ self.reads.T + self.consts

    def decode(self, resid: np.ndarray) -> list:
        """The most consistent value at each position (resid: [positions, d_model])."""
        f = self.functions(resid)                                   # [P, k]
        err = ((f[:, :, None] - self.table[None, :, :]) ** 2).sum(axis=1)  # [P, V]
        return [self.values[i] for i in np.argmin(err, axis=1)]

    def error(self, resid: np.ndarray, values: Sequence[Any], index) -> np.ndarray:
        """Per position, the largest gap between a probed function and its true value."""
        f = self.functions(resid)
        cols = np.array([index(v) for v in values])
        return np.max(np.abs(f - self.table[:, cols].T), axis=1, initial=0.0)

    def separates(self) -> bool:
        """Whether the probed functions tell every pair of values apart."""
        return len({tuple(np.round(col, 9)) for col in self.table.T}) == len(self.values)


def build_probes(lowered: Lowered, layout: Layout, sched: Schedule, values_of) -> dict[int, Probe]:
    """A probe for every s-op that some block or the readout reads."""
    probes: dict[int, Probe] = {}
    d = layout.d_model
    for sop_id, refs in lowered.refs.items():
        if not refs:
            continue
        node, values = values_of(sop_id)
        rows, consts, table = [], [], []
        time = 0
        for ref in refs:
            read: Read = ref.read()
            if not np.any(ref.vec != ref.vec[0]):
                continue  # a constant function tells nothing about the value
            row = np.zeros(d)
            const = 0.0
            for f, c in read.terms.items():
                if f.kind == "one":
                    const += c
                    continue
                row[layout[f]] += c
                time = max(time, sched.producer_time.get(f.uid, 0))
            rows.append(row)
            consts.append(const)
            table.append(ref.vec)
        if not rows:
            continue
        probes[sop_id] = Probe(node, values, np.array(rows), np.array(consts), np.array(table), time)
    return probes
