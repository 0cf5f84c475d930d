"""Forward error bounds: every feature's worst-case distance from its exact value.

Blocks are lowered reader first (a reader asks its inputs for the functions it needs),
so when a table is built the errors of its inputs are not known yet: it is built for an
estimate. Once every block exists, this pass walks them in dependency order and
replaces the estimates by bounds computed from the blocks' actual inputs:

* an attention head passes on the error of the values it averages (a convex
  combination), adds the leak of unselected keys and BOS, and the effect of score
  errors (a score off by `s` narrows the gap between selected and unselected keys by
  `2s` and makes the weights of selected keys unequal by up to a factor `e^(2s)`; a
  width's output, BOS's weight against its keys', moves by expm1 of a key's score
  error plus BOS's alone, and BOS's key is exact up to the rounding of its cancellation).
  An error on one side of a score counts with the other side's value at each value of
  the s-op it reads (a one-hot query meets one dimension's key error at a time).
  Scores are off through their inputs' errors and through float32 computing them,
  which is exact only where every number is a small multiple of a power of two; BOS's
  key, set by cancelling the rest of BOS's residual, is charged its rounding too. Where
  every averaged value is at least 0, the head's output also gets a pointwise bound,
  `a + r * (its exact value)`: rounding and unequal weights scale with the output, and
  a width's 1/(w+1) is smallest exactly where its decoder's steps are narrowest (and
  `a + r * (its largest value)` bounds the output anywhere, which for a mean of 0/1
  values is far below twice their size);
* a table MLP is exact while its z coordinate stays within the table's tolerance and
  its one-hot gates, shifting step pre-activations by `M * error`, stay within the
  margin the z error and float32 rounding leave (checked at the points beside each step
  where z reads features with pointwise bounds); its outputs then carry only their
  float32 rounding, plus, for interpolating tables, the z error times the slope, and
  for AND units (which read gates linearly) the gates' errors.

Every float32 sum and dot product is charged for any order of summation (CPU and GPU
kernels differ): a read of k terms gamma_(k+1) of their sizes (`mlp.gamma32`). A table's
output sums every active unit, so its rounding is counted point by point
(`mlp.proof_rounding`: each addition by u of a partial sum, at most the larger of the
positive and negative terms' sums), not taken from the lowering's estimate (2 eps of the
terms, which holds for 3 terms only).

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

from .features import Feature, Read, integer_combination
from .mlp import EPS32, ProofRounding, gamma32, proof_rounding

# a step's pre-activation p = (z - midpoint) / half-gap is at least 1 away from the
# midpoint at every reachable point, and its ramp spans |p| <= 1/2: the margin all of a
# unit's input errors and rounding share
STEP_MARGIN = 0.5
# how far from an integer a snap head's input may be (see compiler.lower.SNAP_OFFSET)
SNAP_MARGIN = 0.25


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
    step_z: Optional[np.ndarray] = None      # step tables: the z values beside each step ...
    step_half: Optional[np.ndarray] = None   # ... and that step's half width
    # tables of one block with the same `exclusive` id are gated on different gate-value
    # combinations: at any point one is on and the others' units are off (exactly 0), so
    # their rounding errors do not add up (their AND units' leaks through gate errors do)
    exclusive: Optional[int] = None
    # gated interpolating tables: per output, the summed |weight| of units that read z and
    # gates (their gate errors pass on, times the gate gain), whose units stay at least 1
    # (in z) below firing where a gate is off
    gated_z_gain: Optional[np.ndarray] = None
    # (plan, combos, z) of the table, for its proof rounding (see proof_rounding);
    # None where `rounding` holds for any order already (a snapped table's AND units: one
    # is on at any point, and the output is its weight)
    table: Optional[tuple] = None
    proof: Optional[ProofRounding] = None     # (computed when the proof first asks)

    def proof_rounding(self, read_of) -> ProofRounding:
        """The table's float32 rounding for any order of summation (mlp.proof_rounding;
        the lowering's `rounding` is an estimate)."""
        if self.proof is None:
            if self.table is None:      # (one term: its size is the rounding over gamma_2)
                n = len(self.rounding)
                self.proof = ProofRounding(self.rounding, np.zeros(n), np.asarray(self.rounding) / gamma32(2.0),
                                           np.ones(n), np.zeros(n))
            else:
                plan, combos, z = self.table
                self.proof = proof_rounding(plan, combos, z, len(read_of(self.z).terms) if self.z else 0)
        return self.proof


def estimate_head_problems(heads: list, err: dict[int, float], read_of) -> list[str]:
    """The lowering-time check of heads whose selected keys must weigh the same (means
    of different values, widths): the scores' error through their query and key
    features' estimated errors must stay below the gap between selected and unselected
    keys. A coarse net, far looser than the proof's bound (which the differential tests
    back up): the keys of an `or` of selects over different s-ops, joined into one
    tuple-valued select, were outputs of a 504-unit MLP, estimated 130 off against a gap
    of 60, and in float32 made a mean's selected keys weigh unequally (wrong from
    max_seq_len 22). A copy's keys only need to stay on their side of the gap (the
    paper's sort_bos, exact, is estimated 65 off there), and a width's unequal weights are
    its decoder's concern (Tracr's make_sort with min_key -5, exact at max_seq_len 64,
    was estimated past its gap)."""
    problems = []
    for head in heads:
        if head.snap:
            problems += [f"{head.label}: its input {f.label} is not within {SNAP_MARGIN} of an integer"
                         for f, lin, _ in head.values
                         if snap_input_error(read_of(lin), err, any_order=False) > SNAP_MARGIN]
            continue
        if not head.uniform or head.width:
            continue
        s = score_input_error(head, err, read_of)
        if s >= head.gap:
            problems.append(f"{head.label}: its scores can be off by {s:.3g} (the float32 error of the computed "
                            f"features its query and key read), more than the gap of {head.gap:g} between "
                            "the keys it selects and the others")
    return problems


def snap_input_error(read: Read, err: dict[int, float], any_order: bool = True) -> float:
    """How far a snap head's read can be from its integer value, or inf where it is no
    sum of integer multiples of integer-valued features (float32 rounds each partial sum
    that holds the offset to an integer, so every term must be near one). `any_order`:
    see read_rounding."""
    if not integer_combination(read.terms):
        return math.inf
    return read_error(read, err) + read_rounding(read, any_order)


def score_input_error(head, err: dict[int, float], resolve) -> float:
    """How far a score can be off through its query and key features' errors."""
    total = 0.0
    for q, k in head.terms:
        rq, rk = resolve(q), resolve(k)
        eq, ek = read_error(rq, err), read_error(rk, err)
        if eq or ek:
            total += read_magnitude(rq) * ek + read_magnitude(rk) * eq + eq * ek
    return total


def estimate_problems(mlps: list, read_of) -> list[str]:
    """The lowering-time checks: each table against the input error it was built for, plus
    the float32 rounding of computing its z coordinate from the residual (known only now
    that every read is resolved; `read_of` resolves a Lin): a coordinate read through an
    index code and its square (0.018 * 35721 - 7.09 * 189 + 704) rounds by ~1e-4, a
    hundred times the estimate of the index's own error."""
    return [msg for block in mlps for b in block.bounds
            if (msg := _table_problem(b, b.estimated_z_error + read_rounding(read_of(b.z), any_order=False)))]


def read_rounding(read: Read, any_order: bool = True) -> float:
    """A bound on the float32 error of computing `read` from exact residual values: each
    weight rounds to float32 and the k products are summed in float32, in any order: off by
    gamma_(k+1) of the terms' sizes, at least 2 eps of them. (`any_order` False: the
    lowering's estimate, 2 eps, which its tables were sized for.)"""
    factor = max(2 * EPS32, gamma32(len(read.terms) + 1)) if any_order else 2 * EPS32
    return factor * _term_sizes(read)


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


def _per_sop(read: Read) -> tuple[list[np.ndarray], list[tuple[Feature, float]]]:
    """The read's terms as one vector over the value list of each s-op they hold a
    function of (one-hot features of one s-op are never 1 together), and the other terms
    (the constant, BOS, auxiliary features)."""
    by_sop: dict[Any, Any] = {}
    rest = []
    for f, c in read.terms.items():
        if f.sop_id is None or f.fn is None or (f.sop_id in by_sop and len(by_sop[f.sop_id]) != len(f.fn)):
            rest.append((f, c))
        else:
            by_sop[f.sop_id] = by_sop.get(f.sop_id, 0.0) + c * f.fn
    return list(by_sop.values()), rest


def read_magnitude(read: Read) -> float:
    """Largest |value| the read takes: exact over the value list of each s-op it reads,
    summed over s-ops."""
    columns, rest = _per_sop(read)
    return sum(abs(c) * _magnitude(f) for f, c in rest) + \
        sum(float(np.max(np.abs(v), initial=0.0)) for v in columns)


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
    leak, relative = attention_error_parts(n, gap, score_error, uniform, empty, summed)
    return biggest * (leak + relative)


def attention_error_parts(n: int, gap: float, score_error: float, uniform: bool = True,
                          empty: bool = False, summed: int = 0,
                          width_spread: Optional[float] = None) -> tuple[float, float]:
    """attention_error per unit of value size, in two parts: the leak of unselected keys,
    and what scales with the selected keys' weights (softmax rounding, unequal weights).
    The second is a relative error: over values that are never negative, it is at most
    that fraction of the output itself (each selected weight is off by that fraction).
    `width_spread`: see relative_attention_error."""
    s2 = 2.0 * score_error
    half = math.exp(min(0.0, -(gap / 2 - s2)))
    leak = (n + 1) * math.exp(min(0.0, -(gap - s2))) + half + (n * half if empty else 0.0)
    return leak, (8 + summed) * EPS32 + _uneven_share(score_error, uniform, width_spread, 2.0)


def relative_attention_error(n: int, score_error: float, uniform: bool = True, summed: int = 0,
                             width_spread: Optional[float] = None) -> float:
    """The relative part of a head's error over values that are never negative, without
    attention_error's factor 2 on the unequal weights: each selected weight is off by at
    most a factor e^(2 s) (its score up by s, the others' down by s), so the output by at
    most expm1(2 s) of itself; softmax and the weighted sum round by (8 + summed) eps/2.

    A width head's output is BOS's weight 1/(1 + sum_j e^(d_j)) (or the keys' 1 minus it),
    d_j each key's score less BOS's, exactly 0: with every d_j off by at most
    `width_spread` (a key's score error plus BOS's), the sum is within a factor
    e^(+-spread) of w, and the output within expm1(spread) of itself."""
    return (8 + summed) * EPS32 / 2 + _uneven_share(score_error, uniform, width_spread, 1.0)


def _uneven_share(score_error: float, uniform: bool, width_spread: Optional[float], factor: float) -> float:
    """factor * expm1(2 s), the unequal weights' share of a head's relative error, or for a
    width head, expm1(spread) where that is smaller."""
    share = factor * _unequal_weights(score_error, uniform)
    if width_spread is not None and uniform:
        share = min(share, math.expm1(width_spread) if width_spread < 50 else math.inf)
    return share


def _unequal_weights(score_error: float, uniform: bool) -> float:
    """How far, as a fraction, selected keys that must weigh the same can be off when every
    score is off by up to `score_error`: expm1(2 s)."""
    s2 = 2.0 * score_error
    return 0.0 if not uniform or s2 == 0 else math.expm1(s2) if s2 < 50 else math.inf


def propagate(heads: list, mlps: list, err: dict[int, float], n: int, resolve,
              pointwise: Optional[dict] = None) -> list[str]:
    """Recompute `err` for every head and MLP output in dependency order; return the
    problems (tables whose inputs are further off than they allow). `pointwise` receives
    the heads' pointwise bounds (feature uid -> (a, r), see _head_errors)."""
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
    pointwise = {} if pointwise is None else pointwise
    for key in nx.topological_sort(order):
        block = blocks[key]
        if hasattr(block, "terms"):
            _head_errors(block, err, n, resolve, pointwise)
        else:
            problems.extend(_table_errors(block, err, resolve, pointwise))
    return problems


def score_error(head, err: dict[int, float], resolve) -> float:
    """How far any score can be from its exact value: its inputs' errors, and float32
    computing it (each head dimension's query and key reads, their products and sum),
    which is exact where no input is off and every number involved is a multiple of a
    power of two small enough for float32's 24 bits (integer and half-integer codes).
    BOS's key, set by cancelling the rest of BOS's residual, is charged its rounding."""
    inputs, rounding, bos_terms = _score_error_parts(head, err, resolve)
    return inputs + rounding + bos_terms


def _width_score_spread(head, keys: float, bos_terms: float) -> float:
    """How far an ordinary key's score can move against BOS's, for a width head (from
    _score_error_parts): BOS's key is exactly `bos_score` in the dimension the query's
    constant `one` reads and 0 elsewhere up to the cancellation's rounding, so BOS's score
    is off by that rounding alone (not by the keys' feature errors) and float32 sums it
    nearly exactly."""
    return keys + bos_terms + EPS32 * (len(head.terms) + 2) * (abs(head.bos_score) + bos_terms)


def _score_error_parts(head, err: dict[int, float], resolve) -> tuple[float, float, float]:
    """(an ordinary key's score error through its inputs; through float32 computing it;
    BOS's key rounding's share)."""
    total = _score_input_error_by_value(head, err, resolve)
    bos_terms = 0.0
    exact = True
    products, bits = 0.0, 0
    bos_key = bos_key_rounding(head)
    for t, (q, k) in enumerate(head.terms):
        rq, rk = resolve(q), resolve(k)
        eq, ek = read_error(rq, err), read_error(rk, err)
        mq, mk = read_magnitude(rq), read_magnitude(rk)
        if t < len(bos_key):      # (BOS's key: the score of BOS)
            bos_terms += (mq + eq) * bos_key[t]
        bq, bk = _fraction_bits(rq), _fraction_bits(rk)
        exact = exact and not (eq or ek) and bq is not None and bk is not None
        if exact:
            products += mq * mk
            bits = max(bits, bq + bk)
    # (the dot product's partial sums, in units of the finest product's last digit)
    if exact and products * 2.0 ** bits < 2 ** 24:
        # (the weights as float32 stores them: -30 for -30.000000000000004)
        return total, sum(read_magnitude(resolve(q)) * _weight_rounding(resolve(k)) +
                          read_magnitude(resolve(k)) * _weight_rounding(resolve(q))
                          for q, k in head.terms), bos_terms
    sizes = _largest_products(head, resolve)
    if sizes is None:
        sizes = sum((_term_sizes(resolve(q)) + read_error(resolve(q), err)) *
                    (_term_sizes(resolve(k)) + read_error(resolve(k), err)) for q, k in head.terms)
    # float32 rounds by at most eps/2 a step (gamma_m ~ m eps/2 for m terms summed): a read
    # of m terms (weights rounded too) by (m + 1) eps/2 of its terms' sizes, on each side,
    # and the dot product of T dimensions by T eps/2 of its products' sizes; 1.01 covers
    # gamma's higher-order terms
    longest = max((len(resolve(lin).terms) for pair in head.terms for lin in pair), default=0)
    return total, 1.01 * EPS32 / 2 * (len(head.terms) + 2 * longest + 2) * sizes, bos_terms


def bos_key_rounding(head) -> np.ndarray:
    """Bounds on float32's error in BOS's key, per head dimension of the terms, which
    assembly sets by cancelling the rest of BOS's residual (none before assembly)."""
    if head.bos_inputs is None:
        return np.zeros(0)
    x, WK, _ = head.bos_inputs
    return _cancellation_rounding(x, WK)[:len(head.terms)]


def bos_value_rounding(head) -> float:
    """The same for the values BOS holds (the largest over the head's values)."""
    if head.bos_inputs is None:
        return 0.0
    x, _, WV = head.bos_inputs
    return float(np.max(_cancellation_rounding(x, WV), initial=0.0))


def _cancellation_rounding(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Per column, a bound on float32's error in x @ W where BOS's weight cancels the rest
    of BOS's residual: zero where every product is a multiple of a power of two that keeps
    the column's sum within float32's 24 bits (30 - 30), else (m + 1) eps/2 of the terms'
    sizes for m terms, doubled to cover the rounding of the residual itself."""
    x32 = x.astype(np.float32).astype(np.float64)
    products = np.abs(x32[:, None] * W.astype(np.float32).astype(np.float64))
    sizes = products.sum(axis=0)
    out = (np.count_nonzero(x) + 1) * EPS32 * (np.abs(x) @ np.abs(W))
    if np.array_equal(x32, x):
        for col in np.flatnonzero(out).tolist():
            bits = _fraction_digits(products[:, col])
            if bits is not None and sizes[col] * 2.0 ** bits < 2 ** 24:
                out[col] = 0.0
    return out


def _weight_rounding(read: Read) -> float:
    return sum(abs(c - float(np.float32(c))) * _magnitude(f) for f, c in read.terms.items())


def _fraction_bits(read: Read) -> Optional[int]:
    """The fewest binary fraction digits every term of the read (weight as float32 times
    any value of its feature) needs, if the read computes exactly in float32 (its terms'
    sizes below 2^24 in units of that last digit); else None."""
    bits = 0
    for f, c in read.terms.items():
        c32 = float(np.float32(c))
        c_bits = max(0, c32.as_integer_ratio()[1].bit_length() - 1)
        if f.fn is None:
            f_bits = 0 if f.kind in ("one", "bos") else None
        else:
            f_bits = _fraction_digits(f.fn)
        if f_bits is None:
            return None
        bits = max(bits, c_bits + f_bits)
    return bits if _term_sizes(read) * 2.0 ** bits < 2 ** 24 else None


def _fraction_digits(values: np.ndarray) -> Optional[int]:
    """The fewest binary fraction digits (0..24) that write every value exactly, or None."""
    return next((b for b in range(25) if np.all(np.mod(values * 2.0 ** b, 1) == 0)), None)


def _term_sizes(read: Read) -> float:
    return sum(abs(c) * _magnitude(f) for f, c in read.terms.items())


def _side_sizes(head, resolve, side: int, values: bool = False) -> Optional[list[np.ndarray]]:
    """One side's reads per head dimension as functions of the s-ops they read: per s-op,
    a [its values, dimensions] block of sum |c| |f(value)| over the terms that read it
    (the constant `one` joins the first block): the terms' sizes, which float32 rounds
    relative to. With `values`, |sum c f(value)| instead: the size of the value itself,
    what an error on the other side is multiplied by (`1 - hist=2 - hist=3 ...`, hist=1's
    indicator, is 0 wherever one of its terms is 1). A read at any position is at most
    the sum of its blocks there. None where a term is no function of one s-op's value."""
    blocks = _side_blocks(head, resolve, side, (lambda x: x) if values else np.abs)
    return None if blocks is None else [np.abs(b) for b in blocks] if values else blocks


def _side_blocks(head, resolve, side: int, size) -> Optional[list[np.ndarray]]:
    """Per s-op one side's reads read: a [its values, dimensions] block of the sum over the
    terms that read it of size(c) * size(f(value)) (the constant's size(c) joins the first
    block); None where a term is no function of one s-op's value."""
    groups: dict[int, np.ndarray] = {}
    const = np.zeros(len(head.terms))
    for t, pair in enumerate(head.terms):
        for f, c in resolve(pair[side]).terms.items():
            if f.kind == "one":
                const[t] += size(c)
            elif f.kind == "bos":
                continue        # (0 at every position but BOS)
            elif f.sop_id is None or f.fn is None:
                return None
            else:
                block = groups.get(f.sop_id)
                if block is None:
                    block = groups[f.sop_id] = np.zeros((len(f.fn), len(head.terms)))
                elif block.shape[0] != len(f.fn):
                    return None
                block[:, t] += size(c) * size(np.asarray(f.fn, dtype=np.float64))
    blocks = list(groups.values()) or [np.zeros((1, len(head.terms)))]
    blocks[0] = blocks[0] + const
    return blocks


def _largest_products(head, resolve) -> Optional[float]:
    """A bound on max over a query's and a key's values of sum_t A_t(q) A_t(k), A_t being
    the sizes of the terms head dimension t adds up (what float32 rounding is relative
    to): every pair of a query s-op and a key s-op maximised on its own (sound, as sizes
    are never negative; exact where each side reads one s-op). None where a term is no
    function of one s-op's value. (Charging each read's largest size instead took a
    sort's comparison head to 1,980 where the largest joint size is 30.)"""
    queries, keys = _side_sizes(head, resolve, 0), _side_sizes(head, resolve, 1)
    if queries is None or keys is None:
        return None
    return float(sum(np.max(a @ b.T, initial=0.0) for a in queries for b in keys))


def _score_input_error_by_value(head, err: dict[int, float], resolve) -> float:
    """score_input_error with each side's sizes taken at its value, not each read at its
    largest: a one-hot query reads 1 in one dimension at a time, so only that dimension's
    key error counts (summing every dimension's charged a width over hist's one-hots the
    key errors of all of them). Falls back to score_input_error where the sizes are not
    functions of one s-op per term."""
    queries, keys = _side_sizes(head, resolve, 0, values=True), _side_sizes(head, resolve, 1, values=True)
    if queries is None or keys is None:
        return score_input_error(head, err, resolve)
    eq = np.array([read_error(resolve(q), err) for q, _ in head.terms])
    ek = np.array([read_error(resolve(k), err) for _, k in head.terms])
    if not (eq.any() or ek.any()):
        return 0.0
    return float(sum(np.max(a @ ek, initial=0.0) for a in queries) +
                 sum(np.max(b @ eq, initial=0.0) for b in keys) + eq @ ek)


# largest query-side combinations x key-side values _pairwise_leak enumerates, and most
# key-side values (it compares every pair of them)
PAIRWISE_MAX_CELLS = 4_000_000
PAIRWISE_MAX_KEYS = 2_000


def _side_combinations(head, resolve, side: int) -> Optional[np.ndarray]:
    """One side's read per head dimension at every combination of the values of the s-ops
    it reads ([combinations, dimensions]; every combination of their value lists, a
    superset of those that occur together), or None where a term is no function of one
    s-op's value or there are more than PAIRWISE_MAX_CELLS of them."""
    raw = _side_blocks(head, resolve, side, lambda x: x)
    if raw is None:
        return None
    if math.prod(len(b) for b in raw) > PAIRWISE_MAX_CELLS:
        return None
    total = np.zeros((1, len(head.terms)))
    for block in raw:
        total = (total[:, None, :] + block[None, :, :]).reshape(-1, len(head.terms))
    return total


def _pairwise_leak(head, err: dict[int, float], n: int, resolve, rounding: float,
                   bos_error: float) -> Optional[float]:
    """attention_error_parts' leak (per unit of value size), from the exact scores of every
    query and key value instead of one score error charged against the smallest gap.

    A query read off by d moves every key's score by d times that key's read, so the
    difference between a selected key's score and another's moves by d times the
    difference of their reads, not by twice d times the largest read: reverse's query
    `length - indices - 1` reads the decoded length (off by 0.006 at max_seq_len 80) with
    weight 60 against key codes up to 79, a score error of 15 against a gap of 30, while
    neighbouring keys' codes differ by 1 and far ones lose 30 * distance^2. Each key's
    own error moves its score by at most the query's read times it. Keys selected are
    those at the head's top score (for a selection that is never empty, the query's own
    top), the others at least a gap below (the construction's scores, checked here); a
    query with none reads BOS (a head that may select nothing) or occurs in no input (one
    that never does). None where the scores are not of that form, or too many to
    enumerate."""
    queries, keys = _side_combinations(head, resolve, 0), _side_combinations(head, resolve, 1)
    if queries is None or keys is None or len(queries) * len(keys) > PAIRWISE_MAX_CELLS or \
            len(keys) > PAIRWISE_MAX_KEYS:
        return None
    eq = np.array([read_error(resolve(q), err) for q, _ in head.terms])
    ek = np.array([read_error(resolve(k), err) for _, k in head.terms])
    scores = queries @ keys.T
    tol = 1e-9 * max(1.0, float(np.max(np.abs(scores), initial=0.0)))
    if head.may_be_empty:
        top = np.full((len(queries), 1), len(head.literals) * head.gap)
        if np.any(scores > top + tol):
            return None
    else:
        # (a selection that is never empty may shift each query's scores by a constant of
        # its own: a quadratic form without its query-squared term)
        top = scores.max(axis=1, keepdims=True)
    selected = scores >= top - tol
    if np.any(~selected & (scores > top - head.gap + tol)):
        return None         # (not the construction's scores: an `or` of parts, say)
    key_errors = np.abs(queries) @ ek + float(eq @ ek)                 # a key's own error, per query
    moved = np.zeros((len(keys), len(keys)))              # [selected key, other key]
    for t in np.flatnonzero(eq).tolist():
        moved += eq[t] * np.abs(keys[:, t, None] - keys[None, :, t])
    own = np.abs(keys) @ eq                                              # against BOS's key (0 there)
    worst = 0.0
    # (a query selecting one key value, a copy's: every such query at once)
    single = np.flatnonzero(selected.sum(axis=1) == 1)
    if len(single):
        key = selected[single].argmax(axis=1)
        rows = scores[single]
        chosen_score = rows[np.arange(len(single)), key]
        margins = chosen_score[:, None] - rows - moved[key]
        margins[np.arange(len(single)), key] = np.inf
        margin = margins.min(axis=1) - 2 * key_errors[single] - 2 * rounding
        to_bos = chosen_score - own[key] - head.bos_score - key_errors[single] - rounding - bos_error
        leaks = (n + 1) * np.exp(np.minimum(0.0, -margin)) + np.exp(np.minimum(0.0, -to_bos))
        worst = float(np.max(leaks))
    for row in np.flatnonzero(selected.sum(axis=1) != 1).tolist():
        chosen = np.flatnonzero(selected[row])
        others = np.flatnonzero(~selected[row])
        if len(chosen):
            margins = (scores[row, chosen][:, None] - scores[row, others][None, :] - moved[np.ix_(chosen, others)])
            margin = float(np.min(margins, initial=np.inf)) - 2 * key_errors[row] - 2 * rounding
            to_bos = float(np.min(scores[row, chosen] - own[chosen])) - head.bos_score - key_errors[row] - \
                rounding - bos_error
            leak = (n + 1) * math.exp(min(0.0, -margin)) + math.exp(min(0.0, -to_bos))
        elif head.may_be_empty:
            margin = head.bos_score - float(np.max(scores[row, others] + own[others], initial=-np.inf)) - \
                key_errors[row] - rounding - bos_error
            leak = n * math.exp(min(0.0, -margin))
        else:
            continue        # (selects no key: occurs in no input, the selection is never empty)
        worst = max(worst, leak)
    return worst


def _head_errors(head, err: dict[int, float], n: int, resolve, pointwise: dict) -> None:
    """Each value the head writes: its absolute bound in `err`, and, where every value it
    averages (BOS's included) is at least 0, also a pointwise bound in `pointwise`:
    (a, r) with the error at most a + r * (the exact output). A width's 1/(w+1) is
    tiny exactly where its decoder's steps are narrow (1/80 - 1/81), and its rounding
    and uneven weights shrink with it; the absolute bound charges them at 1."""
    if head.snap:
        # each value is read, offset and rounded to the nearest integer: exact while the
        # read is within SNAP_MARGIN of it (neighbours leak N e^-30 * 1.3e7 < 1e-3 for
        # N < 1000); further off it is not exact at all
        for f, lin, _ in head.values:
            err[f.uid] = 0.0 if snap_input_error(resolve(lin), err) <= SNAP_MARGIN and n < 1000 else 1.0
        return
    inputs, rounding, bos_terms = _score_error_parts(head, err, resolve)
    keys = inputs + rounding
    s = keys + bos_terms            # (score_error)
    spread = _width_score_spread(head, keys, bos_terms) if head.width else None
    values = [(f, resolve(lin), bos) for f, lin, bos in head.values]
    biggest = max([1.0] + [abs(bos) for _, _, bos in values] + [read_magnitude(r) for _, r, _ in values])
    leak, relative = attention_error_parts(n, head.gap, s, head.uniform, empty=head.may_be_empty,
                                           summed=2 * (n + 1), width_spread=spread)
    if not head.width and s > 0:
        pairwise = _pairwise_leak(head, err, n, resolve, rounding, bos_terms)
        if pairwise is not None:
            leak = min(leak, pairwise)
    # (2 * biggest: a convex combination moves by at most its values' spread)
    own = 2 * biggest * (leak + relative)
    bos_value = bos_value_rounding(head)
    for f, read, bos in values:
        inherited = read_error(read, err) + bos_value
        err[f.uid] = own + inherited
        if bos >= 0 and read_minimum(read) >= 0:
            a, r = (2 * biggest * leak + inherited,
                    relative_attention_error(n, s, head.uniform, summed=2 * (n + 1), width_spread=spread))
            pointwise[f.uid] = (a, r)
            # (the pointwise bound at the output's largest value bounds it everywhere: a
            # mean of 0/1 values is off by its relative rounding times at most 1, where the
            # absolute bound charged twice its values' size for a spread of both signs)
            if f.fn is not None and len(f.fn):
                err[f.uid] = min(err[f.uid], a + r * float(np.max(np.abs(f.fn))))


def _table_errors(block, err: dict[int, float], resolve, pointwise: dict) -> list[str]:
    if not block.bounds:
        return []
    problems = []
    total = np.zeros(len(block.outputs))
    worst: dict[int, np.ndarray] = {}       # per exclusive group: its largest rounding
    # tables that are all on at once sum their units in one dot product per output: their
    # rounding is gamma of all their terms together (see ProofRounding.combined)
    together = [b for b in block.bounds if b.exclusive is None]
    if len(together) > 1:
        total += ProofRounding.combined([b.proof_rounding(resolve) for b in together])
    for b in block.bounds:
        rz = resolve(b.z) if b.z else Read()
        z_err = read_error(rz, err) + read_rounding(rz)
        gate_err = sum(max((read_error(resolve(r), err) for r in reads), default=0.0) for reads in b.gates)
        steps = _pointwise_step_errors(b, rz, pointwise)
        if steps is None:
            problem = _table_problem(b, z_err)
            shift = z_err / b.min_half_gap      # (in units of the narrowest step's half width)
        else:
            problem = _pointwise_problem(b, *steps)
            shift = float(np.max(steps[0] / b.step_half))
        if problem:
            problems.append(problem)
            continue
        if b.gated_z_gain is not None:
            # (interpolating units gated off stay at least 1 below firing; where their gates
            # hold, a gate error moves them, and their outputs, like a z error does)
            if z_err + b.gate_gain * gate_err + 8 * EPS32 * b.max_preactivation >= 0.5:
                problems.append(f"{b.label}: its one-hot inputs can be off by {gate_err:.2e}, which can turn "
                                "on its gated units")
                continue
            total += b.gated_z_gain * b.gate_gain * gate_err
        elif b.gate_gain and gate_err:
            left = STEP_MARGIN - shift - 8 * EPS32 * b.max_preactivation
            if b.gate_gain * gate_err >= left:
                problems.append(f"{b.label}: its one-hot inputs can be off by {gate_err:.2e}, which moves its "
                                f"steps by {b.gate_gain * gate_err:.2e} where they allow {max(left, 0.0):.2e}")
                continue
        rounding = 0.0 if b.exclusive is None and len(together) > 1 else b.proof_rounding(resolve).bound
        own = rounding if b.z_gain is None else rounding + b.z_gain * z_err
        if b.exclusive is None:
            total += own
        else:
            worst[b.exclusive] = np.maximum(worst.get(b.exclusive, 0.0), own)
        total += b.and_gain * gate_err
    for group in worst.values():
        total += group
    for (f, _, _), e in zip(block.outputs, total.tolist()):
        err[f.uid] = e
    return problems


def _pointwise_step_errors(b: TableBound, rz: Read, pointwise: dict) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """A step table's z error at the reachable points beside each step, where z adds up
    features with pointwise bounds, all with coefficients of one sign (z = sum c_i f_i +
    const, f_i >= 0, so sum |c_i| f_i = |z - const|; off by sum |c_i| a_i + r |z - const|):
    (errors, tolerances), or None where only the absolute bound applies. Checking the
    points beside each step suffices: a point further out is further from that step by
    more than its error can grow (r < 1). The read's own rounding is relative as well."""
    if b.step_z is None or not len(b.step_z) or b.z_gain is not None or b.gates:
        # (a gated table's units whose gate is off sit about one half width from firing
        # at every z, so their margin does not grow away from their own step)
        return None
    const = sum(c for f, c in rz.terms.items() if f.kind == "one")
    terms = [(f, c) for f, c in rz.terms.items() if f.kind != "one"]
    if not terms or not all(f.uid in pointwise for f, _ in terms) or \
            not (all(c > 0 for _, c in terms) or all(c < 0 for _, c in terms)):
        return None
    a = sum(abs(c) * pointwise[f.uid][0] for f, c in terms)
    r = max(pointwise[f.uid][1] for f, _ in terms) + (len(terms) + 1) * EPS32
    if r >= 1:
        return None
    errors = a + r * np.abs(b.step_z - const) + 2 * EPS32 * abs(const)
    return errors, b.step_half / 4


def _pointwise_problem(b: TableBound, errors: np.ndarray, tolerances: np.ndarray) -> Optional[str]:
    worst = int(np.argmax(errors / tolerances))
    if errors[worst] > tolerances[worst]:
        return (f"{b.label}: its input can be off by {errors[worst]:.2e} at {b.step_z[worst]:.6g} but the "
                f"table needs {tolerances[worst]:.2e} there (values too close together for float32)")
    return _table_problem(b, 0.0)


def read_minimum(read: Read) -> float:
    """A lower bound on the read's value at every non-BOS position: exact over each s-op's
    value list (as read_magnitude), the constant as itself, the BOS feature as 0 (at BOS,
    assembly sets the value a head reads)."""
    columns, rest = _per_sop(read)
    total = sum(c if f.kind == "one" else 0.0 if f.kind == "bos" else -abs(c) * _magnitude(f) for f, c in rest)
    return total + sum(float(np.min(v, initial=np.inf)) if np.size(v) else 0.0 for v in columns)


def readout_errors(readout, err: dict[int, float], any_order: bool = True) -> list[tuple[float, float]]:
    """(error bound, margin) of each read of the output: the margin is half the smallest
    gap between output numbers (snapped to the nearest), or 1/2 for a code (rounded) or
    an indicator (argmax, or the None flag's threshold); the bound adds the float32
    rounding of the read itself, for any order of its sum (`any_order`; the lowering's
    check charges eps of its terms, as it always has)."""
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
        inputs = sum(abs(c) * err.get(f.uid, 0.0) for f, c in read.terms.items())
        size = sum(abs(c) * _magnitude(f) for f, c in read.terms.items())
        # exact integer multiples of integer-valued features whose sizes add up below 2**24:
        # every partial sum is an integer float32 holds, so the read itself rounds nothing (a
        # token code times 1,000,003 plus the position was charged 1.07 against a margin of
        # 1/2); inputs off by a little round again in the sum
        exact = inputs == 0.0 and integer_combination(read.terms) and size < 2.0 ** 24
        rounding = 0.0 if exact else (gamma32(len(read.terms) + 1) if any_order else EPS32) * size
        out.append((inputs + rounding, margin))
    return out
