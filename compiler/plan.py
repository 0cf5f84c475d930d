"""Stage 3a: decide what each s-op becomes in the transformer, before any weights exist.

Kinds:
  CONST      a constant: read from the `one` direction.
  EMBED_TOK  depends on the token only: any function of it comes from the token embedding.
  EMBED_POS  depends on the position only: from the positional embedding.
  ATTN_COPY  an aggregate that copies one value (unique selection, or equal values):
             the head writes any requested function of the copied value.
  ATTN_MEAN  a numerical mean: the head writes the mean (only linear functions readable).
  WIDTH      selector_width (and `length`): a head reads 1/(w+1) at BOS, an MLP decodes w.
  MAP_VIRTUAL an elementwise map that costs nothing: every function of it that is needed
             is a linear function of its inputs' features (e.g. `length - indices - 1`,
             or any function of a one-hot s-op).
  MAP_MLP    an elementwise map computed by an MLP, fused with the maps it depends on.

"Readable" says which functions of an s-op later blocks may read: "any" (one more
residual direction per new function) or "affine" (only a*x + b).

Times: the embedding writes at time 0; layer l's attention at 2l+1 and its MLP at 2l+2.
An s-op's time is when its value is first written; blocks are scheduled as early as
their inputs allow (as soon as possible, like the RASP paper's layer analysis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from rasp import ir

from .errors import CompileError
from .graph import ProgramGraph
from .infer import IDX, LEN, Inference, NodeInfo, ValueIndex, aggregate_rule, apply_vectorized, call_element

CONST, EMBED_TOK, EMBED_POS = "const", "embed_tok", "embed_pos"
ATTN_COPY, ATTN_MEAN, WIDTH = "attn_copy", "attn_mean", "width"
MAP_VIRTUAL, MAP_MLP = "map_virtual", "map_mlp"
ANY, AFFINE = "any", "affine"


def attn_slot(t: int) -> int:
    """The time of the first attention sublayer that can read something written at `t`."""
    return 2 * ((t + 1) // 2) + 1


def mlp_slot(t: int) -> int:
    """The time of the first MLP sublayer that can read something written at `t`."""
    return 2 * (t // 2) + 2


def numbers(values) -> Optional[np.ndarray]:
    """The values as floats, or None if any is not a number (None, strings...)."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    # (by distinct type: value sets of means hold thousands of entries of one or two types)
    if not all(issubclass(t, (int, float)) for t in set(map(type, values))):
        return None
    return np.array(values, dtype=np.float64)


def affine_fit(xs: np.ndarray, ys: np.ndarray) -> Optional[tuple[float, float]]:
    """(a, b) with ys == a*xs + b exactly (to rounding), else None."""
    if len(xs) == 0:
        return 0.0, 0.0
    if len(np.unique(xs)) == 1:
        if np.allclose(ys, ys[0], rtol=0, atol=1e-12 * max(1.0, abs(ys[0]))):
            return 0.0, float(ys[0])
        return None
    tol = 1e-9 * max(1.0, float(np.abs(ys).max()))
    # the line through the extreme points first (exact for exactly affine integer data, and
    # a compile asks dozens of these questions, where a least-squares solve each took a
    # tenth of shuffle_dyck's compile); least squares where rounding leaves it outside
    lo, hi = int(xs.argmin()), int(xs.argmax())
    a = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
    b = ys[lo] - a * xs[lo]
    if float(np.abs(a * xs + b - ys).max()) <= tol:
        return float(a), float(b)
    A = np.stack([xs, np.ones_like(xs)], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, ys, rcond=None)
    if np.max(np.abs(a * xs + b - ys)) > tol:
        return None
    return float(a), float(b)


def declared_affine(fn: ir.ElementFn) -> Optional[tuple[float, ...]]:
    """The coefficients of a two-input map that is c1*x + c2*y by its definition, else None."""
    if fn.arity != 2:
        return None
    if fn.op == "linear" and all(isinstance(c, (int, float)) and math.isfinite(c) for c in fn.consts):
        return tuple(float(c) for c in fn.consts)
    return {"+": (1.0, 1.0), "-": (1.0, -1.0)}.get(fn.op)


@dataclass
class Decomposition:
    """F(y1..yk) = sum_i parts[i](y_i) + const over the product of the inputs' value sets."""

    parts: list[np.ndarray]     # per input: vector over that input's value list
    const: float


def separable_on(cols: list[np.ndarray], outputs: np.ndarray, sizes: list[int]) -> Optional[Decomposition]:
    """Additive decomposition F(y) = sum_i g_i(y_i) + c that matches F on the given tuples.

    `cols[i][r]` is the index of tuple r's i-th value in its value list (of `sizes[i]`
    values). Only reachable tuples constrain the parts, so e.g. `length - indices` is
    additive even though it is never evaluated where indices >= length.
    """
    offsets = np.cumsum([0] + list(sizes))
    if len(cols) == 2 and len(outputs) * int(offsets[-1]) > _CYCLE_CHECK_FROM and \
            _cycle_mismatch(cols[0], cols[1], np.asarray(outputs, dtype=np.float64)):
        return None
    A = np.zeros((len(outputs), int(offsets[-1]) + 1))
    rows = np.arange(len(outputs))
    for i, c in enumerate(cols):
        A[rows, offsets[i] + c] = 1.0
    A[:, -1] = 1.0
    sol = exact_least_squares(A, outputs)
    if sol is None:
        return None
    parts = [sol[offsets[i]:offsets[i + 1]].copy() for i in range(len(sizes))]
    # values never seen in a reachable tuple get 0 (they cannot occur)
    for part, c in zip(parts, cols):
        seen = np.zeros(len(part), dtype=bool)
        seen[c] = True
        part[~seen] = 0.0
    return Decomposition(parts, float(sol[-1]))


# tuples x unknowns past which a two-input separable_on first looks for a cycle that
# rules it out (the paper's Dyck-2 at max_seq_len 59 asked six times of 1,829 tuples over
# 59 x 1,087 values, which are not separable: a least-squares solve of 0.4 s each)
_CYCLE_CHECK_FROM = 100_000
EPS64 = 2.0 ** -52


def _cycle_mismatch(a: np.ndarray, b: np.ndarray, F: np.ndarray) -> bool:
    """Whether F(a, b) = g(a) + h(b) + c fails by more than exact_least_squares tolerates
    at every point, shown by one cycle of the graph joining each tuple's two values: along
    a spanning tree, g and h are fixed to fit its tuples exactly; a tuple off the tree then
    misses by its cycle's alternating sum of F. A decomposition within `tol` of every
    tuple keeps that sum within tol times the cycle's length (here: at most one more than
    the two tree depths), so a larger miss rules out the solve's success. (False: the
    solve decides.)"""
    scale = max(1.0, float(np.max(np.abs(F), initial=0.0)))
    tol = 1e-9 * scale          # (exact_least_squares' own)
    n_a = int(a.max()) + 1
    nodes = n_a + int(b.max()) + 1
    ends = np.stack([a, n_a + b], axis=1).tolist()
    adjacent: list[list[int]] = [[] for _ in range(nodes)]
    for t, (u, v) in enumerate(ends):
        adjacent[u].append(t)
        adjacent[v].append(t)
    values = F.tolist()
    potential: list[Optional[float]] = [None] * nodes
    depth = [0] * nodes
    on_tree = [False] * len(ends)
    for root in range(nodes):
        if potential[root] is not None or not adjacent[root]:
            continue
        potential[root] = 0.0
        queue = [root]
        for node in queue:
            for t in adjacent[node]:
                u, v = ends[t]
                other = v if u == node else u
                if potential[other] is None:
                    potential[other] = values[t] - potential[node]
                    depth[other] = depth[node] + 1
                    on_tree[t] = True
                    queue.append(other)
    for t, (u, v) in enumerate(ends):
        if not on_tree[t]:
            hops = depth[u] + depth[v] + 1
            # (a potential sums up to `depth` values of size `scale`, each step rounding
            # by float64's eps of the sum: hops^2 eps scale bounds what they miss by)
            if abs(values[t] - potential[u] - potential[v]) > tol * hops + 4 * EPS64 * hops * hops * scale:
                return True
    return False


def exact_least_squares(A: np.ndarray, b: np.ndarray) -> Optional[np.ndarray]:
    """x with A @ x == b to rounding (1e-9 relative), else None.

    Tries the normal equations first (A is tall and thin here: thousands of reachable
    tuples, hundreds of unknowns; an SVD of A itself took most of some compiles). Their
    squared condition number costs digits (large, nearly collinear columns), so a miss is
    retried with the SVD of A.
    """
    if not np.all(np.isfinite(b)):
        return None
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    tol = 1e-9 * scale
    if A.shape[0] > 4 * A.shape[1]:
        sol, *_ = np.linalg.lstsq(A.T @ A, A.T @ b, rcond=None)
        miss = float(np.max(np.abs(A @ sol - b), initial=0.0))
        if miss <= tol:
            return sol
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    return sol if np.max(np.abs(A @ sol - b), initial=0.0) <= tol else None


class Plan:
    """Kinds, readability and earliest times for every s-op of a program."""

    def __init__(self, graph: ProgramGraph, inf: Inference, tabulate: frozenset = frozenset()) -> None:
        """`tabulate`: ids of maps to compute with an MLP even where they could be virtual
        (an output whose parts' errors add up past its decoding margin, see pipeline)."""
        self.graph = graph
        self.inf = inf
        self.tabulate = tabulate
        self.kind: dict[int, str] = {}
        self.readable: dict[int, str] = {}
        self.time: dict[int, int] = {}
        self.sel_time: dict[int, int] = {}
        self._front: dict[int, int] = {}
        self._tuples: dict[int, Optional[tuple]] = {}
        for node in graph.nodes():
            if isinstance(node, ir.Selector):
                kids = graph.children(node)
                self.sel_time[node.id] = max((self.sel_time[k.id] if isinstance(k, ir.Selector)
                                              else self.time[k.id] for k in kids), default=0)
                continue
            self._classify(node)

    # ---- classification
    def _classify(self, node: ir.SOp) -> None:
        info = self.inf.info[node.id]
        kids = self.graph.children(node)
        nid = node.id
        if info.constant and len(info.values) == 1:
            self.kind[nid], self.readable[nid], self.time[nid] = CONST, ANY, 0
        elif info.token_local or isinstance(node, ir.Tokens):
            self.kind[nid], self.readable[nid], self.time[nid] = EMBED_TOK, ANY, 0
        elif self.is_positional(info):
            self.kind[nid], self.readable[nid], self.time[nid] = EMBED_POS, ANY, 0
        elif isinstance(node, ir.Aggregate):
            sel, sop = kids
            t = attn_slot(max(self.sel_time[sel.id], self.time[sop.id]))
            kind = self._aggregate_kind(node, sop)
            self.kind[nid] = kind
            self.readable[nid] = ANY if kind == ATTN_COPY else AFFINE
            self.time[nid] = t
        elif isinstance(node, (ir.SelectorWidth, ir.Length)):
            t = attn_slot(self.sel_time[kids[0].id]) if kids else 1
            self.kind[nid], self.readable[nid], self.time[nid] = WIDTH, ANY, t + 1
        elif isinstance(node, ir.Map):
            self._classify_map(node, kids)
        else:  # pragma: no cover
            raise CompileError("internal: cannot classify this node", node)

    def is_positional(self, info: NodeInfo) -> bool:
        if info.deps <= {IDX} and info.deps:
            return True
        if info.exact is not None and info.deps <= {IDX, LEN} and IDX in info.deps:
            # structural values that turn out not to depend on the length
            N = self.inf.N
            for i in range(N):
                col = {(type(info.exact[n, i]), info.exact[n, i]) for n in range(i + 1, N + 1)}
                if len(col) > 1:
                    return False
            return True
        return False

    def _aggregate_kind(self, node: ir.Aggregate, sop: ir.SOp) -> str:
        sel_info = self.inf.sel[self.graph.children(node)[0].id]
        src = self.inf.info[sop.id]
        # numbers among other values (None, strings, bools) are averaged too, when a query
        # selects only numbers: a mean whose other values are flagged (see lower)
        averages = aggregate_rule(src.values, node.semantics == "tracr") != "copy"
        if averages and not sel_info.at_most_one and len(src.values) > 1 and \
                node.id not in self.inf.equal_copies:     # (a mean of equal values is a copy)
            return ATTN_MEAN
        return ATTN_COPY

    def _classify_map(self, node: ir.Map, kids: list[ir.Node]) -> None:
        nid = node.id
        if nid not in self.tabulate and nid not in self.inf.variant_reads and self.virtual_able(node, kids):
            self.kind[nid] = MAP_VIRTUAL
            single_any = len(kids) == 1 and self.readable[kids[0].id] == ANY
            self.readable[nid] = ANY if single_any else AFFINE
            self.time[nid] = max(self.time[k.id] for k in kids)
        else:
            self.kind[nid], self.readable[nid] = MAP_MLP, ANY
            self.time[nid] = mlp_slot(self.frontier_time(node))

    def frontier_time(self, node: ir.Map) -> int:
        """Latest time among the non-map s-ops this map is computed from (through maps)."""
        if node.id in self._front:
            return self._front[node.id]
        t = 0
        for k in self.graph.children(node):
            if isinstance(k, ir.Map) and self.kind.get(k.id) in (MAP_VIRTUAL, MAP_MLP):
                t = max(t, self.frontier_time(k))
            else:
                t = max(t, self.time[k.id])
        self._front[node.id] = t
        return t

    def virtual_able(self, node: ir.Map, kids: list[ir.Node]) -> bool:
        info = self.inf.info[node.id]
        out = numbers(info.values)
        if len(kids) == 1:
            (k,) = kids
            if self.readable[k.id] == ANY:
                return True
            kin = numbers(self.inf.info[k.id].values)
            if kin is None or out is None:
                return False
            ys = self._apply_1(node, self.inf.info[k.id].values)
            return ys is not None and affine_fit(kin, ys) is not None
        if out is None:
            return False
        dec = self.map_decomposition(node, kids, out)
        if dec is None:
            return False
        for k, part in zip(kids, dec.parts):
            if self.readable[k.id] == AFFINE:
                kin = numbers(self.inf.info[k.id].values)
                if kin is None or affine_fit(kin, part) is None:
                    return False
        return True

    def _apply_1(self, node: ir.Map, values) -> Optional[np.ndarray]:
        """The unary map on each value as numbers (None where one is not a number)."""
        out = []
        for v in values:
            r = call_element(node.fn, (v,))
            if not isinstance(r, (int, float)):     # (also None, and FAILED on an error)
                return None
            out.append(float(r))
        return np.array(out)

    def _affine_decomposition(self, node: ir.Map, kids: list[ir.Node],
                              phi: np.ndarray) -> Optional[Decomposition]:
        """The decomposition of an affine read of a map that is affine by definition
        (`a + b`, `a - b`, Tracr's LinearSequenceMap), without enumerating its input
        tuples: pair_balance's two means reach ~22,000 pairs at max_seq_len 40."""
        coefs = declared_affine(node.fn)
        if coefs is None or len(coefs) != len(kids):
            return None
        nums = [numbers(self.inf.info[k.id].values) for k in kids]
        out_vals = self.inf.info[node.id].values
        out_nums = numbers(out_vals)
        if out_nums is None or any(x is None for x in nums):
            return None
        fit = affine_fit(out_nums, phi) if np.all(np.isfinite(phi)) else None
        if fit is None:
            return None
        a, b = fit
        return Decomposition([a * c * x for c, x in zip(coefs, nums)], b)

    def map_tuples(self, node: ir.Map, kids: list[ir.Node]) -> Optional[tuple[list[np.ndarray], np.ndarray]]:
        """Reachable input combinations of a map, as value indices, and its output index.

        Returns (per input: index into its value list, per tuple; output: index into the
        map's value list, -1 where the map raises), or None if there are too many.
        """
        if node.id in self._tuples:
            return self._tuples[node.id]
        tuples = self.inf.joint_tuples(kids)
        result = None
        if tuples is not None:
            lists = [self.inf.info[k.id].values for k in kids]
            indexes = [ValueIndex(vals) for vals in lists]
            cols = [indexes[i].find_many([t[i] for t in tuples]) for i in range(len(kids))]
            out_index = ValueIndex(self.inf.info[node.id].values)
            results, raised = [], []
            py = node.fn.py
            may_be_none = any(None in vals for vals in lists) and not node.fn.takes_none
            fast = apply_vectorized(node.fn, list(zip(*tuples))) if len(tuples) > 64 else None
            if fast is not None:
                results, tuples = fast.tolist(), ()
            for args in tuples:
                res = None
                if not may_be_none or None not in args:
                    try:
                        res = py(*args)
                    except Exception:
                        raised.append(len(results))
                        res = 0  # placeholder, marked -1 below
                results.append(res)
            out = out_index.find_many(results)
            out[raised] = -1
            if all((c >= 0).all() for c in cols):
                result = (cols, out)
        self._tuples[node.id] = result
        return result

    def map_decomposition(self, node: ir.Map, kids: list[ir.Node],
                          phi: np.ndarray) -> Optional[Decomposition]:
        """Additive decomposition of a function of the map's value over the inputs'
        reachable tuples; `phi` is that function over the map's value list (NaN where it
        is not a number)."""
        phi = np.asarray(phi, dtype=np.float64)
        direct = self._affine_decomposition(node, kids, phi)
        if direct is not None:
            return direct
        data = self.map_tuples(node, kids)
        if data is None:
            return None
        cols, out = data
        keep = out >= 0
        if not keep.any():
            return None
        F = phi[out[keep]]
        if not np.all(np.isfinite(F)):
            return None
        cols = [c[keep] for c in cols]
        lists = [self.inf.info[k.id].values for k in kids]
        nums = [numbers(v for v in vals) for vals in lists]
        if all(x is not None for x in nums):
            # affine in the numerical inputs? (the common case: a + b, length - indices - 1, ...)
            A = np.stack([x[c] for x, c in zip(nums, cols)] + [np.ones(len(F))], axis=1)
            sol = exact_least_squares(A, F)
            if sol is not None:
                return Decomposition([sol[i] * x for i, x in enumerate(nums)], float(sol[-1]))
        if len(F) * sum(len(v) for v in lists) > 4_000_000:
            return None
        return separable_on(cols, F, [len(v) for v in lists])

