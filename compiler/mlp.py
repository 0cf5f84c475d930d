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
from typing import Any, Callable, Optional, Sequence

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


@dataclass
class Unit:
    """One hidden ReLU unit: relu(sum_i coef_i * input_i + bias)."""

    z: float                      # coefficient on the z coordinate
    gates: dict[tuple[int, Any], float]   # (gate index, value) -> coefficient on that one-hot feature
    bias: float


@dataclass
class TablePlan:
    """Hidden units and output weights computing a table exactly."""

    units: list[Unit] = field(default_factory=list)
    out_weights: list[dict[int, float]] = field(default_factory=list)   # per output: unit -> weight
    out_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_preactivation: float = 0.0
    min_half_gap: float = np.inf       # smallest ramp half-width (tolerance on z is half of it)
    z_tolerance: float = np.inf        # largest z error that still gives exact outputs
    z_gain: Any = None                 # interpolating tables: per output, how much a z error grows
    # step tables: the reachable z values on either side of each step, and that step's half
    # width (a z error at such a point may reach a quarter of it; see compiler.bounds)
    step_z: Optional[np.ndarray] = None
    step_half: Optional[np.ndarray] = None
    # build_table(lazy=True): step units not yet in `units` and `out_weights` (see _Steps)
    pending: Optional["_Steps"] = None
    # per output, how far the table's outputs at its points are from the tabulated ones
    # before any rounding (gated interpolation without its noise units; rounding_error adds it)
    approx: Optional[np.ndarray] = None

    def complete(self) -> "TablePlan":
        """The plan with its pending step units made (as build_table makes them)."""
        if self.pending is not None:
            self.pending.make(self)
            self.pending = None
        return self

    def gate_gains(self) -> tuple[float, np.ndarray, np.ndarray]:
        """How gate errors reach the outputs (compiler.bounds, _checked_interpolation): the
        coefficient M of a gate in the units that read z, and per output the summed |weight|
        of those gated units and of the AND units (which read gates alone, linearly)."""
        gate_m = max((c for u in self.units if u.z for c in u.gates.values()), default=0.0)
        return gate_m, _weight_sums(self, lambda u: u.z and u.gates), _weight_sums(self, lambda u: u.z == 0 and u.gates)

    def precise_enough(self, z_err: float) -> bool:
        """An input off by z_err still gives the exact outputs, and no activation is so large
        that float32 loses the precision the steps need."""
        return z_err <= self.z_tolerance and self.max_preactivation * EPS32 * 8 <= 0.25


@dataclass
class OutputRows:
    """A table's outputs as its distinct rows: point i's outputs are `distinct[code[i]]`,
    and two points' outputs are equal exactly where their codes are. A table's points
    share few output rows (the paper's Dyck-3 at max_seq_len 43: 58,738 points, 328 rows of
    330 one-hot outputs), and passes over the dense table were most of its compile."""

    code: np.ndarray
    distinct: np.ndarray

    def changes(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nonzeros of distinct[after] - distinct[before] (row codes, one pair per
        step), as (step, output, change) in step order, outputs ascending within a step."""
        if not len(before):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        # (pairs as one integer each, in the order of (before, after): numpy's unique over
        # rows of a two-column array was most of this)
        size = len(self.distinct)
        keys, pair_of = np.unique(before.astype(np.int64) * size + after, return_inverse=True)
        pairs = np.stack([keys // size, keys % size], axis=1)
        pair_of = pair_of.reshape(-1)
        diff = self.distinct[pairs[:, 1]] - self.distinct[pairs[:, 0]]
        pair_row, pair_col = np.nonzero(diff)
        counts = np.bincount(pair_row, minlength=len(pairs))
        starts = np.cumsum(counts) - counts
        per_step = counts[pair_of]
        step = np.repeat(np.arange(len(pair_of)), per_step)
        within = np.arange(len(step)) - np.repeat(np.cumsum(per_step) - per_step, per_step)
        entry = starts[pair_of][step] + within
        return step, pair_col[entry], diff[pair_row[entry], pair_col[entry]]


# tables of at least this many output entries are worked on by their distinct rows
ROWS_FROM = 50_000


def output_rows(outputs: np.ndarray, from_size: Optional[int] = None) -> Optional[OutputRows]:
    """`outputs` by its distinct rows (found by a random projection, then checked row by
    row), or None: a table of fewer than `from_size` entries (default ROWS_FROM), NaN, or
    two rows projecting alike."""
    if outputs.ndim != 2 or outputs.size < (ROWS_FROM if from_size is None else from_size) or \
            not outputs.shape[1]:
        return None
    with np.errstate(all="ignore"):
        key = outputs @ np.random.default_rng(0).uniform(1.0, 2.0, outputs.shape[1])
    _, first, code = np.unique(key, return_index=True, return_inverse=True)
    code = code.reshape(-1)
    distinct = outputs[first]
    # (checked a block of rows at a time: the whole table again, 58,738 x 330 for the
    # paper's Dyck-3, took a second to allocate and compare)
    for at in range(0, len(code), _ROWS_CHECKED_AT_ONCE):
        if not np.array_equal(distinct[code[at:at + _ROWS_CHECKED_AT_ONCE]], outputs[at:at + _ROWS_CHECKED_AT_ONCE]):
            return None
    return OutputRows(code, distinct)


_ROWS_CHECKED_AT_ONCE = 2048


def _combination_codes(combos: Sequence[tuple]) -> tuple[np.ndarray, list[tuple]]:
    """Each point's gate combination as its index among the distinct ones, and those in
    order of first appearance."""
    index: dict[tuple, int] = {}
    code = np.fromiter((index.setdefault(tuple(c), len(index)) for c in combos), dtype=np.int64, count=len(combos))
    return code, list(index)


def _weight_sums(plan: TablePlan, pick: Callable) -> np.ndarray:
    """Per output, the summed |weight| of the table's units that `pick` accepts."""
    return np.array([sum(abs(w) for u, w in weights.items() if pick(plan.units[u])) for weights in plan.out_weights],
                    dtype=np.float64)


def _add_and_unit(plan: TablePlan, combo: tuple, values: np.ndarray) -> None:
    """A unit that is 1 where every gate of `combo` holds and 0 elsewhere (the gates are
    0/1 indicators), writing `values` (its nonzero ones) to the outputs."""
    plan.units.append(Unit(0.0, {(g, v): 1.0 for g, v in enumerate(combo)}, -(len(combo) - 1.0)))
    for o in np.flatnonzero(values).tolist():
        plan.out_weights[o][len(plan.units) - 1] = float(values[o])


def _weight_matrix(out_weights: list[dict[int, float]], n_units: int) -> np.ndarray:
    """The output weights as a [units, outputs] matrix."""
    W = np.zeros((n_units, len(out_weights)))
    for o, weights in enumerate(out_weights):
        for u, w in weights.items():
            W[u, o] = w
    return W


class InconsistentTable(ValueError):
    """Two input points that the table cannot tell apart need different outputs."""


def build_table(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray, n_gates: int,
                gate_index_ok: bool = True, z_span: Optional[tuple[float, float]] = None,
                rows: Optional[OutputRows] = None, lazy: bool = False) -> TablePlan:
    """Units computing outputs[i] at input point (combos[i], z[i]) for every i.

    combos: per point, the tuple of gate values (length n_gates).
    z: per point, the z coordinate (zeros if there is no numeric input).
    outputs: (points, n_out) float table; points with equal (combo, z) must agree.
    z_span: the range z takes at points outside the table, where its gated units must
    stay off (a table for one gate combination among several, each with its own z).
    rows: `outputs` by its distinct rows (output_rows), where it has them.
    lazy: the step units are left pending (TablePlan.complete makes them): a table that is
    only checked (precise_enough, rounding_error) and refused never builds them (the
    paper's Dyck-2 at max_seq_len 40 tried tables of a million steps in all).
    """
    n_out = outputs.shape[1]
    plan = TablePlan(out_weights=[{} for _ in range(n_out)], out_bias=np.zeros(n_out))
    if n_gates:
        code, combos_in_order = _combination_codes(combos)
    else:                           # (no gates: one group, without a pass over the points)
        code = np.zeros(len(combos), dtype=np.int64)
        combos_in_order = [()] if len(combos) else []
    z_all = np.asarray(z, dtype=np.float64)
    z_lo, z_hi = (float(z_all.min()), float(z_all.max())) if len(z_all) else (0.0, 0.0)
    if z_span is not None:
        z_lo, z_hi = min(z_lo, z_span[0]), max(z_hi, z_span[1])
    # per combination (in order of first appearance), its points by z (ties in input order)
    order = np.lexsort((z_all, code))
    sc, sz = code[order], z_all[order]
    out_all = np.asarray(outputs, dtype=np.float64).reshape(len(order), n_out)
    first = np.ones(len(order), dtype=bool)
    first[1:] = (sc[1:] != sc[:-1]) | (sz[1:] != sz[:-1])
    uniq_code, uniq_z = sc[first], sz[first]
    # consistency: every point with the same combination and z must give the same outputs
    # (the repeated points against the first of theirs: tables over value tuples repeat few;
    # by distinct rows, only those whose rows differ at all)
    repeats = np.flatnonzero(~first)
    if len(repeats) and out_all.size:
        leader = np.flatnonzero(first)[np.cumsum(first)[repeats] - 1]
        if rows is not None:
            differ = rows.code[order[repeats]] != rows.code[order[leader]]
            repeats, leader = repeats[differ], leader[differ]
        if len(repeats) and np.max(np.abs(out_all[order[repeats]] - out_all[order[leader]])) > 1e-12:
            raise InconsistentTable("inconsistent table: one input point maps to different outputs")
    # the steps: between consecutive reachable z values of one combination whose outputs
    # differ (a step changes few outputs, a one-hot table's two of hundreds: the changes
    # are kept by their nonzeros, in step order)
    if rows is None:
        uniq_out = out_all[order[first]]
        deltas = np.diff(uniq_out, axis=0)
        change_row, out_of = np.nonzero(deltas)
        is_step = np.zeros(len(deltas), dtype=bool)
        is_step[change_row] = True
        is_step &= uniq_code[1:] == uniq_code[:-1]
        changed = np.flatnonzero(is_step)
        kept = is_step[change_row]
        step_of = (np.cumsum(is_step) - 1)[change_row[kept]]
        out_of = out_of[kept]
        step_delta = deltas[change_row[kept], out_of]
    else:
        uniq_row = rows.code[order[first]]
        changed = np.flatnonzero((uniq_code[1:] == uniq_code[:-1]) & (uniq_row[1:] != uniq_row[:-1]))
        step_of, out_of, step_delta = rows.changes(uniq_row[changed], uniq_row[changed + 1])
    combo_of = uniq_code[changed]
    mid = (uniq_z[changed] + uniq_z[changed + 1]) / 2
    half = (uniq_z[changed + 1] - uniq_z[changed]) / 2
    base = np.zeros((len(combos_in_order), n_out))
    starts = np.flatnonzero(np.r_[True, uniq_code[1:] != uniq_code[:-1]]) if len(uniq_code) else np.zeros(0, int)
    base[uniq_code[starts]] = uniq_out[starts] if rows is None else rows.distinct[uniq_row[starts]]
    # orientation and magnitude of each step: active on the shorter side of the z range
    rise = (z_hi - mid) / half if len(mid) else mid       # activation reach if active above the midpoint
    fall = (mid - z_lo) / half if len(mid) else mid       # ... if active below
    rising = rise <= fall
    max_act = float(np.max(np.where(rising, rise, fall) + 0.5, initial=0.0))
    if len(half):
        plan.min_half_gap = min(plan.min_half_gap, float(half.min()))
    gate_m = max_act + 1.0 if n_gates else 0.0
    # base values: per combo (needs an AND unit when gated), folded with falling steps
    falling = ~rising[step_of]
    if falling.any():
        np.add.at(base, (combo_of[step_of[falling]], out_of[falling]), step_delta[falling])
    if n_gates == 0:
        if combos_in_order:
            plan.out_bias += base[0]
    else:
        # one AND unit per gate combination with a non-zero base
        for c, combo in enumerate(combos_in_order):
            if np.any(base[c] != 0):
                _add_and_unit(plan, combo, base[c])
    sign = np.where(rising, 1.0, -1.0)
    coef = sign / half if len(half) else half
    bias0 = -sign * mid / half if len(half) else half
    gate_bias = -gate_m * n_gates if n_gates else 0.0
    gates_of = [{(g, v): gate_m for g, v in enumerate(combo)} if n_gates else {} for combo in combos_in_order]
    plan.pending = _Steps(combos_in_order, gates_of, coef, bias0, gate_bias, combo_of, step_of, out_of,
                          step_delta * sign[step_of])
    if not lazy:
        plan.complete()
    plan.max_preactivation = max(max_act, 1.0) + (gate_m * n_gates if n_gates else 0.0)
    plan.z_tolerance = plan.min_half_gap / 4 if np.isfinite(plan.min_half_gap) else np.inf
    plan.step_z = np.concatenate([mid - half, mid + half])
    plan.step_half = np.concatenate([half, half])
    return plan


@dataclass
class _Steps:
    """build_table's step units before they are made: step s is the pair of units
    relu(coef[s] z + bias0[s] +- 0.5 + gate_bias + its combination's gates), with output
    weights +-weight[k] for output out_of[k] of step step_of[k]."""

    combos: list                  # the gate combinations, in order of first appearance
    gates_of: list                # per combination: its gates' coefficients (shared dicts)
    coef: np.ndarray
    bias0: np.ndarray
    gate_bias: float
    combo_of: np.ndarray          # per step: its combination
    step_of: np.ndarray
    out_of: np.ndarray
    weight: np.ndarray

    def make(self, plan: TablePlan) -> None:
        first_unit = len(plan.units)
        gate_bias = self.gate_bias
        for cf, b0, c in zip(self.coef.tolist(), self.bias0.tolist(), self.combo_of.tolist()):
            gates = self.gates_of[c]                              # (shared, never mutated)
            plan.units.append(Unit(cf, gates, b0 + 0.5 + gate_bias))
            plan.units.append(Unit(cf, gates, b0 - 0.5 + gate_bias))
        by_output = np.argsort(self.out_of, kind="stable")      # (each output's steps in order)
        ends = np.cumsum(np.bincount(self.out_of, minlength=len(plan.out_weights))).tolist()
        units_all = (first_unit + 2 * self.step_of[by_output]).tolist()
        ws_all = self.weight[by_output].tolist()
        start = 0
        for o, weights in enumerate(plan.out_weights):
            for u, w in zip(units_all[start:ends[o]], ws_all[start:ends[o]]):
                weights[u] = w
                weights[u + 1] = -w
            start = ends[o]

    def arrays(self, codes: dict) -> tuple[np.ndarray, ...]:
        """rounding_error's per-unit arrays of the units `make` would add: coefficient,
        bias, summed gate coefficients, combination code among `codes` (-2 ungated)."""
        coef = np.repeat(self.coef, 2)
        bias = np.empty(2 * len(self.coef))
        bias[0::2] = self.bias0 + 0.5 + self.gate_bias
        bias[1::2] = self.bias0 - 0.5 + self.gate_bias
        per_combo_sum = np.array([float(sum(g.values())) for g in self.gates_of])
        per_combo_code = np.array([codes.get(tuple(c), -1) if g else -2 for c, g in zip(self.combos, self.gates_of)],
                                  dtype=np.int64)
        gate_sum = np.repeat(per_combo_sum[self.combo_of], 2) if len(self.combo_of) else np.zeros(0)
        unit_code = np.repeat(per_combo_code[self.combo_of], 2) if len(self.combo_of) else np.zeros(0, np.int64)
        return coef, bias, gate_sum, unit_code


def and_rounding(plan: TablePlan) -> Optional[np.ndarray]:
    """Each output's float32 error when the table is made of AND units alone over exact
    0/1 indicators (a snapped table): at any point one unit is exactly 1 and the rest are 0,
    so the output is that unit's weight, off only by float32's representation of it. None
    for any other table."""
    if np.any(plan.out_bias != 0) or not all(
            u.z == 0 and u.gates and all(c == 1.0 for c in u.gates.values()) and u.bias == -(len(u.gates) - 1.0)
            for u in plan.units):
        return None
    out = np.zeros(len(plan.out_weights))
    for o, weights in enumerate(plan.out_weights):
        ws = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
        out[o] = float(np.max(np.abs(ws.astype(np.float32).astype(np.float64) - ws), initial=0.0))
    return out


def rounding_error(plan: TablePlan, combos: Sequence[tuple], z: np.ndarray, n_gates: int) -> np.ndarray:
    """A bound on each output's error over every tabulated point, with exact inputs: the
    float32 rounding (_float32_rounding) and how far the table was built from its outputs
    (TablePlan.approx)."""
    bound = _float32_rounding(plan, combos, z, n_gates)
    return bound if plan.approx is None else bound + plan.approx


def _float32_rounding(plan: TablePlan, combos: Sequence[tuple], z: np.ndarray, n_gates: int) -> np.ndarray:
    """An estimate of each output's float32 rounding error over every tabulated point.

    At each point, every active unit contributes eps * (its pre-activation terms) * |its
    output weight|; many active units with large activations cancel to a small output and
    lose precision, which is what this measures. (The lowering's estimate: a sum of m
    terms rounds by up to about m * eps/2 of its terms' sizes in the worst order, which
    compiler.bounds charges through proof_rounding; this charges 2 eps, which the
    differential tests back up.)
    """
    arrays = _rounding_arrays(plan, combos, z)
    if arrays is None:
        return EPS32 * np.abs(plan.out_bias) if len(plan.out_weights) else np.zeros(0)
    z, signed, coef, bias, gate_sum, point_code, unit_code = arrays
    W = np.abs(signed)
    n_units = len(coef)
    if len(z) * n_units > _DENSE_ROUNDING_LIMIT:
        return 2 * EPS32 * _worst_active_sums(z, point_code, unit_code, coef, bias, gate_sum, W) \
            + EPS32 * np.abs(plan.out_bias)
    worst = np.zeros(len(plan.out_weights))
    for zs, act in _active_chunks(z, point_code, unit_code, coef, bias, gate_sum, 2_000_000):
        terms = np.where(act > 0, act + np.abs(zs[:, None] * coef[None, :]) + np.abs(bias[None, :])
                         + gate_sum[None, :], 0.0)
        worst = np.maximum(worst, (terms @ W).max(axis=0))
    return 2 * EPS32 * worst + EPS32 * np.abs(plan.out_bias)


def _rounding_arrays(plan: TablePlan, combos: Sequence[tuple], z: np.ndarray) -> Optional[tuple]:
    """The table's units as arrays for the rounding bounds: (z, output weights [units,
    outputs], coefficients on z, biases, summed gate coefficients, each point's gate
    combination code, each unit's code: -2 ungated, -1 a combination no point has);
    None for a table without units or points. Pending step units come after the made ones."""
    units = plan.units
    steps = plan.pending
    n_units = len(units) + (2 * len(steps.coef) if steps is not None else 0)
    if not n_units or len(z) == 0:
        return None
    W = _signed_weights(plan, n_units)
    coef = np.array([u.z for u in units])
    bias = np.array([u.bias for u in units])
    gate_sum = np.array([sum(u.gates.values()) for u in units])
    codes: dict[tuple, int] = {}
    point_code = np.array([codes.setdefault(tuple(c), len(codes)) for c in combos])
    unit_code = np.array([codes.get(tuple(v for (_, v) in sorted(u.gates)), -1) if u.gates else -2
                          for u in units], dtype=np.int64)
    if steps is not None:       # (the pending step units, after the made ones)
        s_coef, s_bias, s_gates, s_code = steps.arrays(codes)
        coef, bias = np.concatenate([coef, s_coef]), np.concatenate([bias, s_bias])
        gate_sum, unit_code = np.concatenate([gate_sum, s_gates]), np.concatenate([unit_code, s_code])
    return np.asarray(z, dtype=np.float64), W, coef, bias, gate_sum, point_code, unit_code


def _active_chunks(z: np.ndarray, point_code: np.ndarray, unit_code: np.ndarray, coef: np.ndarray,
                   bias: np.ndarray, gate_sum: np.ndarray, cells: int):
    """Per chunk of points (about `cells` points x units at a time): their z and each
    unit's activation there (0 where its gate combination is not the point's)."""
    step = max(1, cells // max(1, len(coef)))
    for start in range(0, len(z), step):
        zs = z[start:start + step]
        pc = point_code[start:start + step]
        pre = zs[:, None] * coef[None, :] + bias[None, :] + gate_sum[None, :]
        active = (unit_code[None, :] == -2) | (unit_code[None, :] == pc[:, None])
        yield zs, np.where(active, np.maximum(pre, 0.0), 0.0)


def gamma32(m: Any) -> Any:
    """gamma_m = m u / (1 - m u), u = eps/2: a float32 sum or dot product of m terms, in any
    order (recursive, blocked, pairwise, with or without FMA), is off by at most gamma_m
    times the sum of its terms' sizes (Higham, Accuracy and Stability of Numerical
    Algorithms, 3.1)."""
    u = EPS32 / 2
    return m * u / (1 - m * u)


def _dot_rounding(m: Any, sizes: Any, one_sign: Any) -> Any:
    """A float32 dot product's error, in any order of summation, for m nonzero terms whose
    sizes add up to `sizes`, the larger of its positive and its negative terms' sums being
    `one_sign`: every weight and product rounds by u of its size (2u of `sizes`), and each
    of the m - 1 additions by u of the sum it forms, which adds up a subset of the terms,
    at most `one_sign` in size. Higher-order terms: (m+1)^2 u^2 / (1 - (m+1) u) of `sizes`.
    For a step table, whose units come in pairs of opposite weights, that is about half of
    gamma_(m+1) of `sizes`."""
    u = EPS32 / 2
    k = m + 1
    return 2 * u * sizes + np.maximum(m - 1, 0) * u * one_sign + k * k * u * u / (1 - k * u) * sizes


def _unit_gate_counts(plan: TablePlan) -> np.ndarray:
    """How many gates each unit reads (pending step units included, after the made ones)."""
    counts = [len(u.gates) for u in plan.units]
    steps = plan.pending
    if steps is not None:
        per_combo = np.array([len(g) for g in steps.gates_of], dtype=np.int64)
        counts += np.repeat(per_combo[steps.combo_of], 2).tolist() if len(steps.combo_of) else []
    return np.array(counts, dtype=np.float64)


def _signed_weights(plan: TablePlan, n_units: int) -> np.ndarray:
    """The output weights as a [units, outputs] matrix, pending step units included after
    the made ones (as _Steps.make would add them)."""
    W = _weight_matrix(plan.out_weights, n_units)
    steps = plan.pending
    if steps is not None:       # (unit 2k of step k adds its weight, unit 2k + 1 takes it away)
        units = len(plan.units) + np.concatenate([2 * steps.step_of, 2 * steps.step_of + 1])
        W[units, np.tile(steps.out_of, 2)] = np.concatenate([steps.weight, -steps.weight])
    return W


@dataclass
class ProofRounding:
    """compiler.bounds' float32 rounding of a table's outputs, per output, valid for any
    order of summation: at each point the output is a dot product of its m nonzero terms
    (active units times their weights, and the bias), off by _dot_rounding of them (at most
    gamma_(m+1) of their sizes, the +1 for the weights' own float32 rounding), plus each
    active unit's pre-activation rounding (gamma of its terms, likewise) times its weight.
    `pre`, `sums` and `terms` are each the largest over the points, for combined."""

    bound: np.ndarray       # the largest such error over the table's points (approx included)
    pre: np.ndarray         # the largest summed pre-activation share (already times its gamma)
    sums: np.ndarray        # the largest sum of the output's terms' sizes
    terms: np.ndarray       # the most nonzero terms the output sums at any point
    approx: np.ndarray      # TablePlan.approx (0 where None)

    @staticmethod
    def combined(parts: list["ProofRounding"]) -> np.ndarray:
        """The bound of tables that are all on at once in one MLP (each output one dot
        product over all their units): their largest shares added, with gamma of every
        term they may sum."""
        pre = sum(p.pre for p in parts)
        sums = sum(p.sums for p in parts)
        terms = sum(p.terms for p in parts)
        return pre * (1 + gamma32(terms + 1)) + gamma32(terms + 1) * sums + sum(p.approx for p in parts)


def proof_rounding(plan: TablePlan, combos: Sequence[tuple], z: np.ndarray, z_terms: int) -> ProofRounding:
    """ProofRounding of a table (see there); `z_terms`: the features the z coordinate
    reads, which a unit reading z sums with its gates and its bias. Points x units up to
    _DENSE_ROUNDING_LIMIT are evaluated point by point; past it, the largest term sizes
    (_worst_active_sums) and the most units with a nonzero weight that any point can have
    on bound it."""
    n_out = len(plan.out_weights)
    bias_out = np.abs(np.asarray(plan.out_bias, dtype=np.float64)) if n_out else np.zeros(0)
    has_bias = (bias_out > 0).astype(np.float64)
    approx = np.zeros(n_out) if plan.approx is None else np.asarray(plan.approx, dtype=np.float64)
    arrays = _rounding_arrays(plan, combos, z)
    if arrays is None:
        bound = gamma32(has_bias + 1) * bias_out
        return ProofRounding(bound + approx, np.zeros(n_out), bias_out, has_bias, approx)
    z, signed, coef, bias, gate_sum, point_code, unit_code = arrays
    W = np.abs(signed)
    weighted = (W > 0).astype(np.float64)
    # (each unit's pre-activation sums z's features where it reads z, its gates and its
    # bias, and rounds by gamma of that many terms plus one for its weights' rounding)
    pre_factor = gamma32(np.where(coef != 0, z_terms, 0) + _unit_gate_counts(plan) + (bias != 0) + 1)
    if len(z) * len(coef) > _DENSE_ROUNDING_LIMIT:
        total = _worst_active_sums(z, point_code, unit_code, coef, bias, gate_sum, W)
        shared = weighted[unit_code == -2].sum(axis=0)
        own = [weighted[unit_code == c].sum(axis=0) for c in np.unique(unit_code[unit_code >= 0]).tolist()]
        terms = shared + (np.max(own, axis=0) if own else 0.0) + has_bias
        sums = total + bias_out
        pre = float(np.max(pre_factor)) * total
        return ProofRounding(pre * (1 + gamma32(terms + 1)) + gamma32(terms + 1) * sums + approx, pre, sums, terms,
                             approx)
    up, down = np.maximum(signed, 0.0), np.maximum(-signed, 0.0)
    bias_signed = np.asarray(plan.out_bias, dtype=np.float64) if n_out else np.zeros(0)
    bound, pre, sums, terms = (np.zeros(n_out) for _ in range(4))
    for zs, act in _active_chunks(z, point_code, unit_code, coef, bias, gate_sum, 500_000):
        on = act > 0
        # (a unit's pre-activation: z * coef + bias + gates, rounded relative to their sizes)
        pre_sizes = np.where(on, np.abs(zs[:, None] * coef[None, :]) + np.abs(bias[None, :]) + gate_sum[None, :], 0.0)
        m = on.astype(np.float64) @ weighted + has_bias[None, :]
        positive = act @ up + np.maximum(bias_signed, 0.0)[None, :]
        negative = act @ down + np.maximum(-bias_signed, 0.0)[None, :]
        s = positive + negative
        p = (pre_sizes * pre_factor[None, :]) @ W
        # (the sum rounds the activations as computed, each off by its share of p: p once
        # more times gamma)
        bound = np.maximum(bound, (p * (1 + gamma32(m + 1)) + _dot_rounding(m, s, np.maximum(positive, negative)))
                           .max(axis=0))
        pre, sums, terms = np.maximum(pre, p.max(axis=0)), np.maximum(sums, s.max(axis=0)), \
            np.maximum(terms, m.max(axis=0))
    return ProofRounding(bound + approx, pre, sums, terms, approx)


# points x units past which rounding_error sorts the units' breakpoints instead of
# evaluating every unit at every point (17,080 x 34,158 took 10 s per table; dense
# evaluation of tables with many gate combinations, where a unit is active at few points,
# was 15 s of rover.rasp's 36 s compile at max_seq_len 12)
_DENSE_ROUNDING_LIMIT = 1_000_000


def _worst_active_sums(z: np.ndarray, point_code: np.ndarray, unit_code: np.ndarray, coef: np.ndarray,
                       bias: np.ndarray, gate_sum: np.ndarray, W: np.ndarray) -> np.ndarray:
    """rounding_error's largest weighted sum of active units' terms, per output, in
    O((points + units) log(points + units)): a unit is active on one side of its
    breakpoint z = -(bias + gates) / coef, and its term z*coef + |z*coef| + bias + |bias|
    + 2*gates is linear in z and |z|, so breakpoints sorted with the points, per gate
    combination (segment), and prefix sums give every point's sum. Ungated units count at
    every point (one segment of their own); a unit of a combination no point has, nowhere.
    (A Python loop per combination took 40 s for tables of 100,000 combinations.)"""
    n_out = W.shape[1]
    const_factor = bias + np.abs(bias) + 2 * gate_sum
    const = const_factor[:, None] * W
    shared, own = unit_code == -2, unit_code >= 0
    total = np.zeros((len(z), n_out))
    flat = coef == 0
    on = flat & (bias + gate_sum > 0)
    total += const[on & shared].sum(axis=0)
    if np.any(on & own):
        per_code = np.zeros((int(point_code.max(initial=0)) + 1, n_out))
        ok = on & own & (unit_code <= point_code.max(initial=-1))
        np.add.at(per_code, unit_code[ok], const[ok])
        total += per_code[point_code]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -(bias + gate_sum) / coef
    for group, p_seg, u_seg in ((shared, np.zeros(len(z), dtype=np.int64), np.zeros(len(coef), dtype=np.int64)),
                                (own, point_code.astype(np.int64), unit_code.astype(np.int64))):
        for above in (True, False):
            sel = group & ((coef > 0) if above else (coef < 0))
            if not np.any(sel):
                continue
            ranges = _active_ranges(z, p_seg, t[sel], u_seg[sel], above)
            weights = W[sel]
            if np.count_nonzero(weights) <= _SPARSE_PARTS * weights.size:
                factors = np.stack([coef[sel], np.abs(coef[sel]), const_factor[sel]], axis=1)
                _add_column_sums(total, z, ranges, weights, factors)
                continue
            parts = np.concatenate([coef[sel][:, None] * weights, np.abs(coef[sel])[:, None] * weights, const[sel]],
                                   axis=1)
            sums = _range_sums(ranges, parts)
            lin, absl, cst = sums[:, :n_out], sums[:, n_out:2 * n_out], sums[:, 2 * n_out:]
            total += z[:, None] * lin + np.abs(z)[:, None] * absl + cst
    return total.max(axis=0, initial=0.0) if len(z) else np.zeros(n_out)


def _active_ranges(z: np.ndarray, p_seg: np.ndarray, t: np.ndarray, u_seg: np.ndarray,
                   above: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Units and points sorted together by segment and value: (each unit's rank, and per
    point the ranks [lo, hi) of the units of its segment active there, breakpoint t < z
    (`above`) or t > z (a unit exactly at z is inactive either way), and the count)."""
    n_u = len(t)
    values = np.concatenate([t, z])
    seg = np.concatenate([u_seg, p_seg])
    is_point = np.concatenate([np.zeros(n_u, dtype=bool), np.ones(len(z), dtype=bool)])
    # at a tie, the point sorts before the unit when counting units below it, after it
    # when counting those above
    tie = ~is_point if above else is_point
    order = np.lexsort((tie, values, seg))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    sorted_seg = seg[order]
    p_rank = rank[n_u:]
    # from its segment's start up to the point (above), or from it to the segment's end
    if above:
        lo, hi = np.searchsorted(sorted_seg, p_seg, side="left"), p_rank
    else:
        lo, hi = p_rank + 1, np.searchsorted(sorted_seg, p_seg, side="right")
    return rank[:n_u], lo, hi, len(order)


def _range_sums(ranges: tuple, parts: np.ndarray) -> np.ndarray:
    """Per point, the sum of `parts` over its active units (`ranges` from _active_ranges),
    by prefix sums over every column."""
    unit_rank, lo, hi, count = ranges
    contrib = np.zeros((count + 1, parts.shape[1]))
    contrib[1:][unit_rank] = parts
    cum = np.cumsum(contrib, axis=0)          # cum[i]: the first i sorted entries
    return cum[hi] - cum[lo]


# share of nonzero unit weights below which _worst_active_sums sums each output over its
# own units: a step table's unit changes the one-hot outputs on either side of its step,
# so of the paper's Dyck-2's 150 outputs at max_seq_len 26 a unit writes ~2, and prefix
# sums over every column (27,700 entries x 450) took 4 s of its 10 s compile
_SPARSE_PARTS = 0.1


def _add_column_sums(total: np.ndarray, z: np.ndarray, ranges: tuple, weights: np.ndarray,
                     factors: np.ndarray) -> None:
    """total[:, o] += each point's sum over its active units (`ranges`) of weight[u, o]
    times the unit's term (factors: its z, |z| and constant coefficients), one output at a
    time over the units that write it."""
    unit_rank, lo, hi, _ = ranges
    abs_z = np.abs(z)
    for o in np.flatnonzero(weights.any(axis=0)).tolist():
        units = np.flatnonzero(weights[:, o])
        by_rank = np.argsort(unit_rank[units])
        units = units[by_rank]
        ranks = unit_rank[units]
        cum = np.zeros((len(units) + 1, 3))
        np.cumsum(factors[units] * weights[units, o][:, None], axis=0, out=cum[1:])
        sums = cum[np.searchsorted(ranks, hi)] - cum[np.searchsorted(ranks, lo)]
        total[:, o] += z * sums[:, 0] + abs_z * sums[:, 1] + sums[:, 2]


# a gated step table of more units than this is compared with a gated interpolating one
FEW_UNITS = 64


def _units(plan: TablePlan) -> int:
    """The units the plan has, its pending steps' included."""
    return len(plan.units) + (2 * len(plan.pending.coef) if plan.pending is not None else 0)


def exact_table(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray, n_gates: int,
                z_err: float, steps_only: bool = False, low_error: bool = False,
                precision: "float | None" = None, z_span: Optional[tuple[float, float]] = None,
                tolerance: Optional[np.ndarray] = None, rows: Optional[OutputRows] = None,
                gated_interpolation: Optional[float] = None, readout_only: bool = False) -> "TablePlan | None":
    """build_table, or None where float32 cannot make it exact: the input error, the size of
    the activations, or the rounding of the outputs beyond what their readers tolerate.

    Without gates, a step table that fails is retried as an interpolating one
    (`interpolation_table`) unless `steps_only`; with gates, as a gated one
    (`gated_interpolation_table`) where `gated_interpolation` is the most the caller's
    gate indicators can be off (None: not tried; see _checked_interpolation and
    compiler.bounds); with `low_error`, the interpolating table
    is also taken when its outputs' error bound is the smaller (a smooth function of a
    fine-grained mean: large step activations round its outputs by up to 1e-3).
    `precision`: the outputs may round by at most this fraction of their size (score
    features of a mean whose selected keys must weigh the same); a step table only.
    `z_span`: see build_table (gated tables only); `tolerance`: per output, how far it may
    be off (default: output_tolerance of these outputs; a part of a table passes the whole's).
    `rows`: `outputs` by its distinct rows (default: output_rows of them; a caller trying
    several projections of one table finds them once). Where one fails, or a step table
    takes more than FEW_UNITS units, steps at a few jumps with interpolation between them
    (_jumps_and_interpolation) are tried; `readout_only`: the outputs are read by the
    model's readout alone (see interpolation_limit).
    """
    rows = output_rows(outputs) if rows is None else rows
    plan = build_table(combos, z, outputs, n_gates, z_span=z_span, rows=rows, lazy=True)
    step_error = rounding_error(plan, combos, z, n_gates) if plan.precise_enough(z_err) else None
    tolerance = output_tolerance(outputs, rows) if tolerance is None else tolerance
    if precision is not None:
        steps_only = True
        tolerance = np.minimum(tolerance, precision * np.maximum(1.0, _largest(outputs, rows)))
    if step_error is not None and not np.any(step_error > tolerance):
        if low_error and not n_gates and not steps_only:
            alt = _checked_interpolation(combos, z, outputs, z_err, rows)
            if alt is not None and \
                    np.max(rounding_error(alt, combos, z, 0) + alt.z_gain * z_err) < np.max(step_error):
                return alt
        if n_gates and gated_interpolation is not None and not steps_only and _units(plan) > FEW_UNITS:
            # (a function linear per gate combination, `x * token`: a step per value of x
            # and token, 364 units at max_seq_len 6, where interpolation takes one per token)
            alt = _checked_interpolation(combos, z, outputs, z_err, rows, n_gates, z_span, gated_interpolation)
            if alt is not None and len(alt.units) * 4 <= _units(plan):
                return alt
        if not n_gates and not steps_only and _units(plan) > FEW_UNITS:
            # (a sawtooth of a mean, `m % 1`: a step per value where a few jumps would do)
            alt = _jumps_and_interpolation(combos, z, outputs, z_err, interpolation_limit(outputs, rows, readout_only),
                                           rows, max_units=_units(plan) // 4 + 1)
            if alt is not None:
                return alt
        return plan.complete()
    if steps_only or (n_gates and gated_interpolation is None):
        return None
    plan = _checked_interpolation(combos, z, outputs, z_err, rows, n_gates, z_span, gated_interpolation or 0.0)
    if plan is None and not n_gates:
        plan = _jumps_and_interpolation(combos, z, outputs, z_err, interpolation_limit(outputs, rows, readout_only),
                                        rows)
    return plan


def _largest(outputs: np.ndarray, rows: Optional[OutputRows]) -> np.ndarray:
    """Each output's largest size (over its distinct rows where known: the same rows)."""
    return np.max(np.abs(outputs if rows is None else rows.distinct), axis=0, initial=0.0)


def _points_by_z(z: np.ndarray, outputs: np.ndarray,
                 rows: Optional[OutputRows] = None) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A table over z alone by its distinct z values: (the points in ascending z, the
    distinct z, the position in that order of each one's first point), or None where one
    z has two outputs (only gates could tell them apart). Each repeated z is checked
    against the first point of its z, where their rows differ at all (`rows`)."""
    order = np.argsort(z, kind="stable")
    uz, first, inverse = np.unique(z[order], return_index=True, return_inverse=True)
    repeats = np.ones(len(z), dtype=bool)
    repeats[first] = False
    repeats = np.flatnonzero(repeats)
    leader = first[inverse.reshape(-1)[repeats]]
    if rows is not None:
        differ = rows.code[order[repeats]] != rows.code[order[leader]]
        repeats, leader = repeats[differ], leader[differ]
    if np.max(np.abs(outputs[order[repeats]] - outputs[order[leader]]), initial=0.0) > 1e-12:
        return None
    return order, uz, first


def _interpolation_z_tolerance(plan: TablePlan, room: np.ndarray, z_err: float) -> Optional[float]:
    """The z error an interpolating plan allows with `room` left per output after its
    rounding (z_gain times it must fit), or None where even z_err does not fit."""
    if np.any(room <= 0) or np.any(plan.z_gain * z_err > room):
        return None
    with np.errstate(divide="ignore"):
        return float(np.min(np.where(plan.z_gain > 0, room / plan.z_gain, np.inf)))


def interpolation_table(z: np.ndarray, outputs: np.ndarray, z_err: float = 0.0,
                        limit: "np.ndarray | None" = None, rows: Optional[OutputRows] = None) -> "TablePlan | None":
    """Units interpolating the outputs linearly between consecutive reachable z values:

        f(z) = y_0 + s_0 (z - z_0) + sum_i (s_i - s_(i-1)) relu(z - z_i)

    (s_i the slope after z_i; the first term is a unit kept active one gap below z_0).
    A step table's units reach activations of (z range) / (half a gap) and its outputs
    sum many of them, so float32 rounding swamps a smooth function of a fine-grained
    mean (x * x of a fraction with denominators up to 20); here activations stay within
    the z range and each unit weighs a change of slope. The price: a z error is not
    reset but passed on, times the slope (`z_gain`). None if one z has two outputs, or if
    z_err * z_gain already exceeds `limit` (per output; the check before any unit is built;
    from the distinct `rows` where given, without the dense table of slopes).
    """
    z = np.asarray(z, dtype=np.float64)
    n_out = outputs.shape[1]
    plan = TablePlan(out_weights=[{} for _ in range(n_out)], out_bias=np.zeros(n_out))
    plan.z_gain = np.zeros(n_out)
    if len(z) == 0:
        return plan
    by_z = _points_by_z(z, outputs, rows)
    if by_z is None:
        return None
    order, uz, first = by_z
    gaps = np.diff(uz)
    if rows is not None and len(uz) > 1 and limit is not None:
        # (the slopes' largest sizes from the steps where the rows change)
        at = rows.code[order[first]]
        moved = np.flatnonzero(at[1:] != at[:-1])
        step, out, change = rows.changes(at[moved], at[moved + 1])
        z_gain = np.zeros(n_out)
        np.maximum.at(z_gain, out, np.abs(change / gaps[moved][step]))
        if np.any(z_gain * z_err > limit):
            return None
    ys = outputs[order[first]]
    plan.out_bias = ys[0].astype(np.float64).copy()
    if len(uz) == 1:
        return plan
    slopes = np.diff(ys, axis=0) / gaps[:, None]
    plan.z_gain = np.max(np.abs(slopes), axis=0)
    if limit is not None and np.any(plan.z_gain * z_err > limit):
        return None
    lead = float(gaps[0])                     # the first unit is active from z_0 - lead up
    changes = np.vstack([slopes[:1], np.diff(slopes, axis=0)])
    knots = np.concatenate([[uz[0] - lead], uz[1:-1]])
    used = np.flatnonzero(np.any(changes != 0, axis=1))
    plan.units = [Unit(1.0, {}, -k) for k in knots[used].tolist()]
    for o in range(n_out):
        rows = np.flatnonzero(changes[used, o])
        plan.out_weights[o] = dict(zip(rows.tolist(), changes[used[rows], o].tolist()))
    plan.out_bias = plan.out_bias - slopes[0] * lead
    plan.max_preactivation = max(float(uz[-1] - uz[0]) + lead, 1.0)
    plan.min_half_gap = float(gaps.min()) / 2
    return plan


def gated_interpolation_table(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray, n_gates: int,
                              z_err: float = 0.0, limit: "np.ndarray | None" = None,
                              z_span: Optional[tuple[float, float]] = None) -> "TablePlan | None":
    """interpolation_table of each gate combination's points, its units gated: a unit
    reads every gate of its combination with weight M and M * n_gates less bias, so it is
    relu(z - z_i) where they all hold and stays at least 1 below firing elsewhere (M is
    the z range over every point, and `z_span`, plus 1); each combination's constant is an
    AND unit of its gates, as in build_table. A token times a mean (`x * y`, 155 means of
    indices over 4 tokens at max_seq_len 8) is one unit per token instead of a step per
    mean and token, whose large activations rounded past the outputs' gaps. None where a
    combination's table is (see interpolation_table)."""
    z = np.asarray(z, dtype=np.float64)
    n_out = outputs.shape[1]
    code, combos_in_order = _combination_codes(combos)
    parts = []
    plan = TablePlan(out_weights=[{} for _ in range(n_out)], out_bias=np.zeros(n_out))
    plan.z_gain = np.zeros(n_out)
    plan.approx = np.zeros(n_out)
    for c in range(len(combos_in_order)):
        at = np.flatnonzero(code == c)
        part = interpolation_table(z[at], outputs[at], z_err, limit)
        if part is None:
            return None
        plan.approx = np.maximum(plan.approx, _drop_noise_units(part, z[at], outputs[at]))
        parts.append(part)
    if not len(z):
        return plan
    z_lo, z_hi = float(z.min()), float(z.max())
    if z_span is not None:
        z_lo, z_hi = min(z_lo, z_span[0]), max(z_hi, z_span[1])
    lowest = min((-u.bias for part in parts for u in part.units), default=z_lo)
    gate_m = z_hi - min(lowest, z_lo) + 1.0
    for combo, part in zip(combos_in_order, parts):
        offset = len(plan.units)
        gates = {(g, v): gate_m for g, v in enumerate(combo)}
        plan.units += [Unit(u.z, gates, u.bias - gate_m * n_gates) for u in part.units]
        if np.any(part.out_bias != 0):
            _add_and_unit(plan, combo, part.out_bias)
        for o, weights in enumerate(part.out_weights):
            for u, w in weights.items():
                plan.out_weights[o][offset + u] = w
        plan.z_gain = np.maximum(plan.z_gain, part.z_gain)
        plan.min_half_gap = min(plan.min_half_gap, part.min_half_gap)
    plan.max_preactivation = max(z_hi - min(lowest, z_lo), 1.0) + gate_m * n_gates
    return plan


def _drop_noise_units(part: TablePlan, z: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Drop an interpolation's units whose slope changes are float64 noise (a linear
    function's slopes between its points differ in the last bits: x * y of 155 means took
    a unit per mean and token), where the outputs at every point stay within 1e-12 of
    their scale; returns by how much they moved (TablePlan.approx), or zeros where nothing
    was dropped."""
    n_out = len(part.out_weights)
    moved = np.zeros(n_out)
    if not part.units:
        return moved
    W = _weight_matrix(part.out_weights, len(part.units))
    noise = np.all(np.abs(W) <= 1e-9 * np.maximum(1.0, part.z_gain)[None, :], axis=1)
    if not noise.any() or noise.all():
        return moved
    knots = np.array([-u.bias for u in part.units])
    keep = np.flatnonzero(~noise)
    got = part.out_bias[None, :] + np.maximum(z[:, None] - knots[None, keep], 0.0) @ W[keep]
    moved = np.max(np.abs(got - outputs), axis=0)
    if np.any(moved > 1e-12 * np.maximum(1.0, np.max(np.abs(outputs), axis=0))):
        return np.zeros(n_out)
    part.units = [part.units[u] for u in keep.tolist()]
    part.out_weights = [{k: float(W[u, o]) for k, u in enumerate(keep.tolist()) if W[u, o] != 0}
                        for o in range(n_out)]
    # (the slopes left: each piece's, summed from the kept changes in knot order)
    order = np.argsort(knots[keep], kind="stable")
    slopes = np.cumsum(W[keep][order], axis=0)
    part.z_gain = np.maximum(part.z_gain, np.max(np.abs(slopes), axis=0))
    return moved


def _checked_interpolation(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray,
                           z_err: float, rows: Optional[OutputRows] = None, n_gates: int = 0,
                           z_span: Optional[tuple[float, float]] = None, gate_err: float = 0.0
                           ) -> "TablePlan | None":
    """interpolation_table (with gates: gated_interpolation_table) if its outputs, off by
    z_gain * z_err plus float32 rounding, stay within what their readers tolerate, and
    within the 1e-4 * scale that later tables assume of any MLP output (they are lowered
    first, so they cannot know better); its z_tolerance is the z error that allows.
    Gates off by up to `gate_err` (copied by attention: its rounding) move a gated unit's
    pre-activation by its gate coefficient M times that per gate: its units must stay off
    where their gates do not all hold (at least 1 below firing, half of which the z error
    and rounding may take), and its outputs take M * gate_err times the weights of its
    gated units, and gate_err times those of its AND units (as compiler.bounds charges)."""
    limit = interpolation_limit(outputs, rows)
    plan = gated_interpolation_table(combos, z, outputs, n_gates, z_err, limit, z_span) if n_gates else \
        interpolation_table(z, outputs, z_err, limit, rows)
    if plan is None or plan.max_preactivation * EPS32 * 8 > 0.25:
        return None
    room = limit - rounding_error(plan, combos, z, n_gates)
    if gate_err:
        gate_m, gated, and_units = plan.gate_gains()
        if z_err + n_gates * gate_m * gate_err + 8 * EPS32 * plan.max_preactivation >= 0.5:
            return None
        room = room - gate_err * (gate_m * gated + and_units)
    tolerance = _interpolation_z_tolerance(plan, room, z_err)
    if tolerance is None:
        return None
    plan.z_tolerance = tolerance
    return plan


def interpolation_limit(outputs: np.ndarray, rows: Optional[OutputRows] = None,
                        readout_only: bool = False) -> np.ndarray:
    """Per output, how far an interpolating table may leave it off: what its readers
    tolerate (output_tolerance) and, unless only the readout reads it (which checks the
    error it is given), the 1e-4 * scale that later tables assume of any MLP output (they
    are lowered first, so they cannot know better)."""
    tolerance = output_tolerance(outputs, rows)
    if readout_only:
        return tolerance
    return np.minimum(tolerance, 1e-4 * np.maximum(1.0, _largest(outputs, rows)))


# a gap between neighbouring points whose slope is this many times the function's median
# slope is a jump for _jumps_and_interpolation, which takes tables of at most this many
# points times outputs, and distinct z values (dropping an interpolation's noise units
# costs points x units; the paper's Dyck-2 and Dyck-3 at max_seq_len 40 and 43 try tables
# of ~48,000 points of many one-hot outputs, and compiled 4-6 times slower without them)
JUMP_SLOPES = 16
JUMP_TABLE_MAX_CELLS = 65536
JUMP_TABLE_MAX_POINTS = 4096


def _jumps_and_interpolation(combos: Sequence[tuple], z: np.ndarray, outputs: np.ndarray, z_err: float,
                             limit: np.ndarray, rows: Optional[OutputRows] = None,
                             max_units: Optional[int] = None) -> "TablePlan | None":
    """A function of a fine-grained input that is smooth but for a few jumps, as one plan:
    the jumps by steps and the rest by interpolation, both summed into the outputs.

    `(2 * m - 1) % 3` of a prefix mean m of digits takes 253 values at max_seq_len 9: a
    step table needs a step per value, so many that float32 rounds its outputs past their
    gaps, and interpolating across its six jumps makes slopes of ~200 that pass m's error
    on past them (it was refused from max_seq_len 9; at 8 its step table took 396 units,
    now 13).

    Here a gap between neighbouring points is a jump where interpolating across it would
    pass more than a quarter of `limit` (per output, what the outputs may be off by) of
    z's error, or where its slope is JUMP_SLOPES times the function's median slope (the
    units of a steep interpolation cancel, and round). The jumps' total below each point
    is tabulated by steps (their units reset a z error: exact while it stays within their
    half gaps), and the rest, which keeps its slope across the jumps, by interpolation (the
    z error passed on times the remaining slopes, `z_gain`): one unit per change of slope
    between the jumps, none for a sawtooth. Checked as _checked_interpolation checks, but
    with the proof's rounding; None where it does not apply (more than a few jumps), is
    not exact, or would take `max_units` units or more."""
    z = np.asarray(z, dtype=np.float64)
    if not outputs.shape[1] or not 3 <= len(z) * outputs.shape[1] <= JUMP_TABLE_MAX_CELLS:
        return None
    by_z = _points_by_z(z, outputs, rows)
    if by_z is None or not 3 <= len(by_z[1]) <= JUMP_TABLE_MAX_POINTS:
        return None
    order, uz, first = by_z
    ys = np.asarray(outputs, dtype=np.float64)[order[first]]
    rises, gaps = np.diff(ys, axis=0), np.diff(uz)[:, None]
    slopes = rises / gaps
    # (steeper than z's error allows, or far steeper than the function's usual slope: the
    # jumps' steep slopes also make interpolation's units cancel, rounding in float32)
    steep = np.abs(slopes)
    usual = np.array([np.median(col[col > 0]) if np.any(col > 0) else 0.0 for col in steep.T])
    jump = (steep * z_err > limit[None, :] / 4) | (steep > JUMP_SLOPES * usual[None, :])
    at_jump = jump.any(axis=1)
    n_jumps = int(np.count_nonzero(at_jump))
    if 2 * n_jumps >= (FEW_UNITS if max_units is None else min(max_units, FEW_UNITS)):
        return None         # (not a few jumps: a step table, where one fits)
    if n_jumps and z_err > float(gaps[at_jump].min()) / 8:
        return None         # (its steps allow an eighth of their gaps: build_table's z_tolerance)
    # across a jump the smooth part keeps the slope of the last gap before it that is no
    # jump (of the first one, before any), so that a function linear between its jumps
    # stays one line: only the rest of the rise is a step
    last = np.maximum.accumulate(np.where(jump, -1, np.arange(len(gaps))[:, None]), axis=0)
    first_smooth = np.argmax(~jump, axis=0)
    kept = np.where(last >= 0, last, first_smooth[None, :])
    carried = np.take_along_axis(slopes, kept, axis=0) * ~jump[kept, np.arange(jump.shape[1])[None, :]]
    step_rises = np.where(jump, rises - carried * gaps, 0.0)
    below = np.vstack([np.zeros((1, ys.shape[1])), np.cumsum(step_rises, axis=0)])
    smooth = interpolation_table(uz, ys - below, z_err, limit)
    if smooth is None:
        return None
    # (the slopes of a function linear between jumps differ in their last bits: a unit each)
    approx = _drop_noise_units(smooth, uz, ys - below)
    steps = build_table([()] * len(uz), uz, below, 0)
    if not steps.precise_enough(z_err) or \
            (max_units is not None and len(smooth.units) + len(steps.units) >= max_units):
        return None
    offset = len(smooth.units)
    plan = TablePlan(units=smooth.units + steps.units, out_bias=smooth.out_bias + steps.out_bias,
                     out_weights=[{**mine, **{offset + u: w for u, w in theirs.items()}}
                                  for mine, theirs in zip(smooth.out_weights, steps.out_weights)],
                     max_preactivation=max(smooth.max_preactivation, steps.max_preactivation),
                     min_half_gap=steps.min_half_gap, z_gain=smooth.z_gain, step_z=steps.step_z,
                     step_half=steps.step_half, approx=approx)
    if plan.max_preactivation * EPS32 * 8 > 0.25:
        return None
    # (its rounding as the proof charges it, for any order of summation (z read as one
    # feature): where a step table fits as well, one the proof can pass is kept)
    tolerance = _interpolation_z_tolerance(plan, limit - proof_rounding(plan, combos, z, 1).bound, z_err)
    if tolerance is None:
        return None
    plan.z_tolerance = min(steps.z_tolerance, tolerance)
    return plan


def output_tolerance(outputs: np.ndarray, rows: Optional[OutputRows] = None) -> np.ndarray:
    """How far each output may be off and still be read right downstream.

    One-hot-like features (values within [-1, 1]) may be off by 0.05 (a score term weighs
    them by 30, far from the 15 that would flip a selection); other features by a quarter
    of the gap between their values, the margin every table and decoder that reads them has.
    """
    # (every column sorted at once, over the distinct rows where given: the gaps between
    # its distinct values are the nonzero steps between neighbours; a unique() per column
    # took a second of Dyck-2's compile)
    ordered = np.sort(outputs if rows is None else rows.distinct, axis=0)
    with np.errstate(invalid="ignore"):         # (inf - inf between two infinite values)
        steps = np.diff(ordered, axis=0)
        # values within 1e-9 (relative) are one value for every reader: ignore those gaps
        real = steps > 1e-9 * np.maximum(1.0, np.abs(ordered[1:]))
    gap = np.min(np.where(real, steps, np.inf), axis=0, initial=np.inf)
    gap = np.where(real.any(axis=0), gap, 1.0)
    small = _largest(outputs, rows) <= 1.0     # one-hot-like features
    return np.where(small, np.minimum(0.05, 0.25 * gap), 0.25 * gap)
