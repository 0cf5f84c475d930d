"""Exact ReLU MLPs for functions on finite sets ("lookup tables in ReLUs").

A table maps each reachable input point to output values. Inputs come as
* gates: discrete inputs available one-hot (token, position, a categorical s-op...),
* one coordinate `z`: a number read linearly from the residual (a numerical s-op, or
  a linear projection of several).
For every combination of gate values, the outputs are a step function of z. Each step
sits at the midpoint of two consecutive reachable z values, with a ramp half a gap
wide, so any input within a quarter gap of a reachable point produces *exactly* the
table's outputs (up to float rounding): errors are reset, never amplified.

    step(z) = relu(p + 1/2) - relu(p - 1/2),   p = (z - midpoint) / (gap / 2)

is 0 below the gap and 1 above it. Each step is oriented (rising or falling) so that
its units are active on the shorter side of the z range, which keeps activations
small. A step that belongs to one gate combination is switched off elsewhere by
adding M * (gate_sum - r) to its pre-activations (gate_sum counts matching one-hot
gate features, r the number of gates), with M just above the largest activation.

The result is a list of hidden units (pre-activation as a linear read plus bias) and
output weights, plus the error analysis used by the precision checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


@dataclass
class Unit:
    """One hidden ReLU unit: relu(sum_i coef_i * input_i + bias)."""

    z: float                      # coefficient on the z coordinate
    gates: dict[tuple[int, Any], float]   # (gate index, value) -> coefficient on that one-hot feature
    bias: float
    label: str = ""


@dataclass
class TablePlan:
    """Hidden units and output weights computing a table exactly."""

    units: list[Unit] = field(default_factory=list)
    out_weights: list[dict[int, float]] = field(default_factory=list)   # per output: unit -> weight
    out_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_preactivation: float = 0.0
    min_half_gap: float = np.inf       # smallest ramp half-width (tolerance on z is half of it)
    z_tolerance: float = np.inf        # largest z error that still gives exact outputs


def build_table(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray, n_gates: int,
                gate_index_ok: bool = True) -> TablePlan:
    """Units computing outputs[i] at input point (combos[i], z[i]) for every i.

    combos: per point, the tuple of gate values (length n_gates).
    z: per point, the z coordinate (zeros if there is no numeric input).
    outputs: (points, n_out) float table; points with equal (combo, z) must agree.
    """
    n_out = outputs.shape[1]
    plan = TablePlan(out_weights=[{} for _ in range(n_out)], out_bias=np.zeros(n_out))
    by_combo: dict[tuple, list[int]] = {}
    for i, c in enumerate(combos):
        by_combo.setdefault(tuple(c), []).append(i)
    z_all = np.asarray(z, dtype=np.float64)
    z_lo, z_hi = (float(z_all.min()), float(z_all.max())) if len(z_all) else (0.0, 0.0)
    steps = []  # (combo, midpoint, halfwidth, delta vector)
    base_by_combo: dict[tuple, np.ndarray] = {}
    for combo, idx in by_combo.items():
        idx = np.asarray(idx)
        zs = z_all[idx]
        order = np.argsort(zs, kind="stable")
        zs_sorted = zs[order]
        outs_sorted = outputs[idx[order]]
        uniq_z, first, inverse = np.unique(zs_sorted, return_index=True, return_inverse=True)
        uniq_out = outs_sorted[first]
        # consistency: every point with the same z must give the same outputs
        if outs_sorted.size and np.max(np.abs(outs_sorted - uniq_out[inverse.reshape(-1)])) > 1e-12:
            raise ValueError("inconsistent table: one input point maps to different outputs")
        deltas = np.diff(uniq_out, axis=0)
        changed = np.flatnonzero(np.any(deltas != 0, axis=1))
        mids = (uniq_z[changed] + uniq_z[changed + 1]) / 2
        halves = (uniq_z[changed + 1] - uniq_z[changed]) / 2
        for k, mid, half in zip(changed, mids, halves):
            steps.append((combo, float(mid), float(half), deltas[k]))
        base_by_combo[combo] = uniq_out[0].copy()
    # orientation and magnitude of each step
    oriented = []
    max_act = 0.0
    for combo, mid, half, delta in steps:
        rise = (z_hi - mid) / half       # activation reach if active above the midpoint
        fall = (mid - z_lo) / half       # ... if active below
        rising = rise <= fall
        reach = (rise if rising else fall) + 0.5
        max_act = max(max_act, reach)
        oriented.append((combo, mid, half, delta, rising))
        plan.min_half_gap = min(plan.min_half_gap, half)
    gate_m = max_act + 1.0 if n_gates else 0.0
    # base values: per combo (needs an AND unit when gated), folded with falling steps
    for combo, mid, half, delta, rising in oriented:
        if not rising:
            base_by_combo[combo] = base_by_combo[combo] + delta
    if n_gates == 0:
        (combo,) = base_by_combo.keys() if base_by_combo else ((),)
        if base_by_combo:
            plan.out_bias += base_by_combo[combo]
    else:
        # one AND unit per gate combination with a non-zero base
        for combo, base in base_by_combo.items():
            if not np.any(base != 0):
                continue
            gates = {(g, v): 1.0 for g, v in enumerate(combo)}
            u = len(plan.units)
            plan.units.append(Unit(0.0, gates, -(n_gates - 1.0), f"and{combo}"))
            for o in range(n_out):
                if base[o] != 0:
                    plan.out_weights[o][u] = float(base[o])
    for combo, mid, half, delta, rising in oriented:
        sign = 1.0 if rising else -1.0
        coef = sign / half
        bias0 = -sign * mid / half
        gates = {(g, v): gate_m for g, v in enumerate(combo)} if n_gates else {}
        gate_bias = -gate_m * n_gates if n_gates else 0.0
        u = len(plan.units)
        plan.units.append(Unit(coef, dict(gates), bias0 + 0.5 + gate_bias, f"step@{mid:g}{combo}"))
        plan.units.append(Unit(coef, dict(gates), bias0 - 0.5 + gate_bias, f"step@{mid:g}{combo}'"))
        for o in range(n_out):
            if delta[o] != 0:
                w = float(delta[o]) * sign
                plan.out_weights[o][u] = w
                plan.out_weights[o][u + 1] = -w
    plan.max_preactivation = max(max_act, 1.0) + (gate_m * n_gates if n_gates else 0.0)
    plan.z_tolerance = plan.min_half_gap / 4 if np.isfinite(plan.min_half_gap) else np.inf
    return plan


def output_error_bound(plan: TablePlan, input_scale: float) -> float:
    """A bound on the float32 rounding error of each output (absolute)."""
    worst = 0.0
    for weights in plan.out_weights:
        total = sum(abs(w) for w in weights.values())
        worst = max(worst, total)
    # each active unit carries a rounding error ~ eps * its pre-activation magnitude
    return 4 * EPS32 * worst * (plan.max_preactivation + input_scale) + EPS32 * float(np.max(np.abs(plan.out_bias), initial=0.0))
