"""Forward error bounds: every feature's worst-case distance from its exact value.

Blocks are lowered reader first (a reader asks its inputs for the functions it needs),
so when a table is built the errors of its inputs are not known yet: it is built for an
estimate. Once every block exists, this pass walks them in dependency order and
replaces the estimates by bounds computed from the blocks' actual inputs:

* an attention head passes on the error of the values it averages (a convex
  combination), adds the leak of unselected keys and BOS, and, when its query or key
  features are computed ones, the effect of their errors on the scores (a score off by
  `s` narrows the gap between selected and unselected keys by `2s` and makes the
  weights of selected keys unequal by up to a factor `e^(2s)`);
* a table MLP is exact while its z coordinate stays within the table's tolerance and
  its one-hot gates, shifting step pre-activations by `M * error`, stay within the
  margin the z error and float32 rounding leave; its outputs then carry only their
  float32 rounding, plus, for interpolating tables, the z error times the slope, and
  for AND units (which read gates linearly) the gates' errors.

A table whose inputs are further off than it tolerates is where the proof fails; with
the output read against its decoding margin, this gives `model.exactness()` (see
`compiler.lower.certify`). Compiling itself is gated by the estimates
(`estimate_problems` and the readout check), which the differential tests back up: the
proof is stricter, and leaves sort-like programs, exact on every input tried, unproven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import networkx as nx
import numpy as np

from .features import Feature, Read
from .mlp import EPS32

# a step's pre-activation p = (z - midpoint) / half-gap is at least 1 away from the
# midpoint at every reachable point, and its ramp spans |p| <= 1/2: the margin all of a
# unit's input errors and rounding share
STEP_MARGIN = 0.5


@dataclass
class TableBound:
    """What the error pass needs of one table (one `TablePlan`) inside an MLP block."""

    z: Any                            # the z coordinate's read (a Lin of refs/features)
    z_tolerance: float                # largest z error the table allows
    min_half_gap: float               # smallest ramp half width (p units = z / half)
    max_preactivation: float
    gates: list[list[Any]]            # per gate: the reads of its one-hot features
    gate_gain: float                  # coefficient M of a gate in a step unit
    and_gain: np.ndarray              # per output: sum |weight| of AND units (read gates linearly)
    rounding: np.ndarray              # per output: float32 rounding bound at reachable points
    z_gain: Optional[np.ndarray]      # interpolating tables: per output, slope passed to z errors
    label: str
    estimated_z_error: float = 0.0    # the z error the table was built for (inputs lowered later)


def estimate_problems(mlps: list, read_of) -> list[str]:
    """The lowering-time checks: each table against the input error it was built for, plus
    the float32 rounding of computing its z coordinate from the residual (known only now
    that every read is resolved; `read_of` resolves a Lin): a coordinate read through an
    index code and its square (0.018 * 35721 - 7.09 * 189 + 704) rounds by ~1e-4, a
    hundred times the estimate of the index's own error."""
    return [msg for block in mlps for b in block.bounds
            if (msg := _table_problem(b, b.estimated_z_error + read_rounding(read_of(b.z))))]


def read_rounding(read: Read) -> float:
    """A bound on the float32 error of computing `read` from exact residual values: each
    weight rounds to float32 and the products are summed in float32, each step off by at
    most eps times the sum of the terms' sizes."""
    return 2 * EPS32 * sum(abs(c) * _magnitude(f) for f, c in read.terms.items())


def _table_problem(b: TableBound, z_err: float) -> Optional[str]:
    """Why the table is not exact with its z coordinate off by z_err (None if it is)."""
    if z_err > b.z_tolerance:
        return (f"{b.label}: its input can be off by {z_err:.2e} but the table needs "
                f"{b.z_tolerance:.2e} (values too close together for float32)")
    if b.max_preactivation * EPS32 * 8 > 0.25:
        return f"{b.label}: activations up to {b.max_preactivation:.3g} lose float32 precision"
    return None


def read_error(read: Read, err: dict[int, float]) -> float:
    return sum(abs(c) * err.get(f.uid, 0.0) for f, c in read.terms.items())


def read_magnitude(read: Read) -> float:
    """Largest |value| the read takes: exact over the value list of each s-op it reads
    (one-hot features of one s-op are never 1 together), summed over s-ops."""
    by_sop: dict[Any, Any] = {}
    total = 0.0
    for f, c in read.terms.items():
        if f.sop_id is None or f.fn is None:
            total += abs(c) * _magnitude(f)
        elif f.sop_id in by_sop and len(by_sop[f.sop_id]) != len(f.fn):
            total += abs(c) * _magnitude(f)
        else:
            by_sop[f.sop_id] = by_sop.get(f.sop_id, 0.0) + c * f.fn
    return total + sum(float(np.max(np.abs(v), initial=0.0)) for v in by_sop.values())


def _magnitude(f: Feature) -> float:
    """Largest absolute value a feature holds (1 for the constant, BOS and auxiliary ones)."""
    return float(np.max(np.abs(f.fn), initial=1.0)) if f.fn is not None else 1.0


def attention_error(n: int, gap: float, score_error: float, biggest: float, uniform: bool = True,
                    empty: bool = False, summed: int = 0) -> float:
    """Bound on a head output's own error (not counting its inputs' errors): leak of up to
    n + 1 unselected keys and BOS, float32 softmax rounding, and, where the selected keys
    must weigh the same (`uniform`), their unequal weights when scores are off by up to
    `score_error`. `empty`: the selection can be empty, so BOS, half a gap above the
    unselected keys, must outweigh all n of them; `summed`: terms of the softmax sums
    whose rounding grows with them (the compile-time estimate leaves it out)."""
    s2 = 2.0 * score_error
    half = math.exp(min(0.0, -(gap / 2 - s2)))
    leak = (n + 1) * math.exp(min(0.0, -(gap - s2))) + half + (n * half if empty else 0.0)
    uneven = 0.0 if not uniform or s2 == 0 else 2.0 * math.expm1(s2) if s2 < 50 else math.inf
    return biggest * (leak + (8 + summed) * EPS32 + uneven)


def propagate(heads: list, mlps: list, err: dict[int, float], n: int, resolve) -> list[str]:
    """Recompute `err` for every head and MLP output in dependency order; return the
    problems (tables whose inputs are further off than they allow)."""
    producer: dict[int, Any] = {}
    for block in heads:
        for f, _, _ in block.values:
            producer[f.uid] = block
    for block in mlps:
        for f, _, _ in block.outputs:
            producer[f.uid] = block
    order = nx.DiGraph()
    for block in [*heads, *mlps]:
        order.add_node(id(block))
        if hasattr(block, "terms"):
            rs = [resolve(lin) for q, k in block.terms for lin in (q, k)] + \
                 [resolve(lin) for _, lin, _ in block.values]
        else:
            rs = [resolve(u.pre) for u in block.units]
        for r in rs:
            for f in r.terms:
                src = producer.get(f.uid)
                if src is not None and src is not block:
                    order.add_edge(id(src), id(block))
    blocks = {id(b): b for b in [*heads, *mlps]}
    problems: list[str] = []
    for key in nx.topological_sort(order):
        block = blocks[key]
        if hasattr(block, "terms"):
            _head_errors(block, err, n, resolve)
        else:
            problems.extend(_table_errors(block, err, resolve))
    return problems


def score_error(head, err: dict[int, float], resolve) -> float:
    total = 0.0
    for q, k in head.terms:
        rq, rk = resolve(q), resolve(k)
        eq, ek = read_error(rq, err), read_error(rk, err)
        if eq or ek:
            total += read_magnitude(rq) * ek + read_magnitude(rk) * eq + eq * ek
    return total


def _head_errors(head, err: dict[int, float], n: int, resolve) -> None:
    s = score_error(head, err, resolve)
    biggest = max([1.0] + [abs(bos) for _, _, bos in head.values] +
                  [read_magnitude(resolve(lin)) for _, lin, _ in head.values])
    # (2 * biggest: a convex combination moves by at most its values' spread)
    own = attention_error(n, head.gap, s, 2 * biggest, head.uniform, empty=head.may_be_empty, summed=2 * (n + 1))
    for f, lin, _ in head.values:
        err[f.uid] = own + read_error(resolve(lin), err)


def _table_errors(block, err: dict[int, float], resolve) -> list[str]:
    if not block.bounds:
        return []
    problems = []
    total = np.zeros(len(block.outputs))
    for b in block.bounds:
        z_err = read_error(resolve(b.z), err) if b.z else 0.0
        gate_err = sum(max((read_error(resolve(r), err) for r in reads), default=0.0) for reads in b.gates)
        problem = _table_problem(b, z_err)
        if problem:
            problems.append(problem)
            continue
        if b.gate_gain and gate_err:
            left = STEP_MARGIN - z_err / b.min_half_gap - 8 * EPS32 * b.max_preactivation
            if b.gate_gain * gate_err >= left:
                problems.append(f"{b.label}: its one-hot inputs can be off by {gate_err:.2e}, which moves its "
                                f"steps by {b.gate_gain * gate_err:.2e} where they allow {max(left, 0.0):.2e}")
                continue
        total += b.rounding + b.and_gain * gate_err
        if b.z_gain is not None:
            total += b.z_gain * z_err
    for (f, _, _), e in zip(block.outputs, total.tolist()):
        err[f.uid] = e
    return problems


def readout_errors(readout, err: dict[int, float]) -> list[tuple[float, float]]:
    """(error bound, margin) of each read of the output: the margin is half the smallest
    gap between output numbers (snapped to the nearest), or 1/2 for a code (rounded) or
    an indicator (argmax, or the None flag's threshold); the bound adds the float32
    rounding of the read itself."""
    margins = [0.5] * len(readout.reads)
    if readout.mode == "numeric":
        vals = np.array(readout.values, dtype=object)
        nums = np.unique(vals[~np.equal(vals, None)].astype(np.float64))
        gaps = np.diff(nums)
        gaps = gaps[gaps > 1e-9 * np.maximum(1.0, np.abs(nums[1:]))]   # one number to every reader
        margins[0] = float(gaps.min()) / 2 if len(gaps) else np.inf
    out = []
    for ref, margin in zip(readout.reads, margins):
        read = ref.read()
        out.append((sum(abs(c) * (err.get(f.uid, 0.0) + EPS32 * _magnitude(f)) for f, c in read.terms.items()),
                    margin))
    return out
