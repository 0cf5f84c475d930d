"""Stage 3b: one block of exact weights per s-op, in named features (no layout yet).

Lowering walks the graph from the output back to the inputs. Every consumer asks its
inputs for *refs*: real functions of the input's value that it needs to read linearly
(a one-hot component for a table, the value itself for a mean, ...). When a node is
reached, all refs on it are known, and the node decides how to provide them:

* constants read `one`; token- and position-only s-ops get embedding features (a new
  residual direction only when the function is not already a combination of existing
  ones, see `features.Basis`);
* a virtual map forwards each ref to its inputs (the composed function), so it costs
  nothing;
* an aggregate becomes an attention head that writes the requested functions of the
  copied value (or the mean);
* selector_width becomes a head plus a decoding MLP; other maps become MLPs that
  compute the requested functions straight from the s-ops they are built from.

The result is a `Lowered` bundle: embedding features, heads and MLP blocks whose
inputs are refs; `Ref.read()` resolves each to a linear combination of features.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from rasp import ir
from rasp.values import array_of, factorize

from .bounds import (TableBound, attention_error, estimate_head_problems, estimate_problems, propagate,
                     readout_errors, score_error)
from .errors import CompileError, ReadoutError, SquareUnfit, TableRefused, expression_label
from .features import ONE, Basis, Feature, Read
from .graph import ProgramGraph
from .infer import (FAILED, MAX_TUPLES, Inference, ValueIndex, apply_vectorized, call_element, is_number,
                    out_of_memory)
from .mlp import (EPS32, ROWS_FROM, InconsistentTable, TablePlan, and_rounding, build_table, exact_table,
                  output_rows, output_tolerance, rounding_error)
from .plan import (AFFINE, ANY, ATTN_COPY, ATTN_MEAN, CONST, EMBED_POS, EMBED_TOK, MAP_MLP, MAP_VIRTUAL, WIDTH,
                   Plan, affine_fit, mlp_slot, numbers)
from .selectors import (Literal, conjunction, disjoint_conjunctions, equality_codes, factorize as factor_matrix,
                        split_pairwise)

# Score gap between a selected and an unselected key. exp(-30) ~ 1e-13: the weight of
# every unselected key (and of BOS when the selection is not empty: exp(-15)) is far
# below float32 resolution of the values.
SCORE_GAP = 30.0
# how far, relative to its size, an MLP-computed score feature may round (by its table's
# bound) when a mean's selected keys hold different key values: a 394-unit table whose
# bound was 11 % of its 0/60 outputs made such a mean wrong at max_seq_len 28
SCORE_PRECISION = 1e-2
# Inputs with at most this many values may be read one-hot (as gates) by an MLP table.
MAX_GATE_VALUES = 128
# how many of the best projections a table tries before reading its inputs another way
PROJECTION_TRIES = 3
# a gated table with more units than this also tries one coordinate per gate combination
PER_GATE_MIN_UNITS = 16
# ... and where its gates take at most this many value combinations (one table each)
MAX_PER_GATE_TABLES = 64
# the most (query, key) value pairs a copy over an `or` is checked on to be one head of added scores
DISJUNCTIVE_MAX_PAIRS = 1_000_000
# Score that keeps the BOS query on the BOS key in every head (its other scores are 0).
BOS_SELF_SCORE = 60.0
# decoding two width heads with one MLP needs a hidden unit pair per step over all
# (w0, w1) pairs, quadratic in max_seq_len: beyond this many pairs the wide MLP costs more
# time per sequence than the layer it saves (see _joint_width_plan)
JOINT_WIDTH_MAX_PAIRS = 160
# ... and with the heads' BOS weighed up to about max_seq_len^2 (see _joint_width_plan),
# whose MLP needs a unit pair per distinct sum only, up to this many pairs (max_seq_len ~200)
LINEAR_JOINT_MAX_PAIRS = 20_000
# a chain of maps is fused into one MLP (saving layers) unless its leaves may take more
# than this many value combinations and 16x more than the map's direct inputs: such a
# table has a row per combination, and only enumerating it took seconds per map before
# failing (the original RASP's rover.rasp: 194,672 rows of 7 leaves, 6 s each); 131,072
# lets the RASP paper's Dyck-1 fuse at max_seq_len 64 (position and two prefix means:
# ~92,000 combinations, a 6-unit table; split, it took 4 layers and 8,446 units)
FUSE_MAX_COMBINATIONS = 131072
# ... and a fused table with more rows than this is first tried on a sample of this many
# (see Lowering._tabulate; a sample of 4,096 still fitted where 75,113 rows did not):
# below it, every table is tried whole, as before the cap rose
SAMPLED_PROBE_ROWS = 65536
PROBE_SAMPLE_ROWS = 16384
# where a chain is too wide to fuse, a map under it is computed one MLP earlier, fused from
# its own leaves, if they take at most this many combinations (see Lowering._staged_cut)
STAGE_MAX_COMBINATIONS = 1024
# A snap head copies each position's own near-integer features (one-hot indicators) with
# SNAP_OFFSET added: float32's spacing there is 1, so the sum rounds to the exact integer,
# and subtracting the offset again is exact (inputs off by up to bounds.SNAP_MARGIN).
SNAP_OFFSET = 1.5 * 2.0 ** 23
# Inputs whose indicators a snapped table reads through a snap head: an MLP's (the snap
# head sits in the attention sublayer of the layer whose MLP reads it, so it costs no
# layer) and a copy's that is not exact (of an MLP's output, or of several equal keys: one
# layer more; read by value, such a key was wrong at max_seq_len 64). Embedded inputs, and
# copies of them from one selected key (weight 1.0 in float32 on it, ~1e-13 on each other
# key: indicators of 1 and ~1e-12), are read as they are (Lowering._exact_indicators).
SNAPPED_INDICATORS = (WIDTH, MAP_MLP, ATTN_COPY)
# how far, relative to its values' spread, a mean may move when its selected keys' score
# features come from MLP tables (see Lowering._fine_mean)
FINE_MEAN_ERROR = 5e-5
# the largest value list of an input a snapped table reads one-hot, and its most units
SNAP_GATE_VALUES = 256
SNAP_MAX_UNITS = 8192
# most functions of one s-op its readers may ask for: each is expressed in the s-op's basis
# (an incremental QR, cubic in their number); programs seen need at most ~800 (the original
# RASP's rover.rasp at max_seq_len 16), and an `and` of `or`s of selects over four widths asked
# for 5,832 at max_seq_len 8 and ran for many minutes towards a d_model above 10,000
MAX_FUNCTIONS_PER_SOP = 4096


class Ref:
    """A real function of an s-op's value (a vector over its value list), read linearly.

    After lowering, `read()` gives the residual features and coefficients that hold it.
    """

    __slots__ = ("sop_id", "vec", "own", "parts", "const", "_read", "label")

    def __init__(self, sop_id: int, vec: np.ndarray, label: str = "") -> None:
        self.sop_id = sop_id
        self.vec = np.asarray(vec, dtype=np.float64)
        self.own: dict[Feature, float] = {}
        self.parts: list[tuple[float, "Ref"]] = []
        self.const = 0.0
        self._read: Optional[Read] = None
        self.label = label

    def read(self) -> Read:
        if self._read is None:
            acc = dict(self.own)
            if self.const != 0.0:
                acc[ONE] = acc.get(ONE, 0.0) + self.const
            for coef, part in self.parts:
                _accumulate(acc, part.read(), coef)
            self._read = Read(acc)
        return self._read


Lin = dict  # (Ref | Feature) -> coefficient


class ResolvedLin(dict):
    """A Lin (refs/features -> coefficients) that remembers the Read it resolves to."""

    def __init__(self, lin: dict) -> None:
        super().__init__(lin)
        self.read = resolve(lin)


def resolve(lin: "Lin | Read") -> Read:
    """A linear combination of refs and features as one Read."""
    if isinstance(lin, ResolvedLin):
        return lin.read
    if isinstance(lin, Read):
        return lin
    if len(lin) == 1:
        (term, coef), = lin.items()
        if coef == 1.0 and isinstance(term, Ref):
            return term.read()      # (the same terms as summed below; a Read is never changed)
    acc: dict[Feature, float] = {}
    for term, coef in lin.items():
        if isinstance(term, Ref):
            _accumulate(acc, term.read(), coef)
        else:
            acc[term] = acc.get(term, 0.0) + coef
    return Read(acc)


def _accumulate(acc: dict, read: Read, coef: float) -> None:
    """acc += coef * read, in place (resolving long chains of refs stays linear)."""
    for f, c in read.terms.items():
        acc[f] = acc.get(f, 0.0) + c * coef


@dataclass
class HeadBlock:
    """One attention head: scores from literal terms, values written to features."""

    node: ir.SOp                      # the aggregate / selector_width it implements
    selector: Optional[ir.Selector]
    terms: list[tuple[Lin, Lin]]      # (query side, key side) per head dimension
    bos_score: float                  # score of the BOS key for ordinary queries
    values: list[tuple[Feature, Lin, float]]   # (written feature, value read, value at BOS)
    width: bool
    label: str
    description: str
    literals: list[Literal] = field(default_factory=list)
    slot: int = -1
    uniform: bool = True              # selected keys must weigh the same (means of different values, widths)
    may_be_empty: bool = False        # a query may select nothing: it reads BOS, half a gap above the rest
    gap: float = SCORE_GAP            # score of a literal that holds over one that does not
    # BOS's residual and the head's key and value weights, set by assembly to cancel the
    # rest of BOS's residual (compiler.bounds charges that sum's float32 rounding)
    bos_inputs: Optional[tuple] = None
    # a snap head (see SNAP_OFFSET): every position attends to itself alone, and each value
    # (one feature's read) comes out rounded to the nearest integer
    snap: bool = False
    # selected keys score the top less a constant of each query's own (never-empty heads)
    shifted: bool = False


@dataclass
class MLPUnitSpec:
    pre: Lin                  # pre-activation (linear part)
    bias: float


@dataclass
class MLPBlock:
    """A group of hidden units (one table) and the features they write."""

    node: ir.SOp
    units: list[MLPUnitSpec]
    outputs: list[tuple[Feature, dict[int, float], float]]   # feature, unit weights, bias
    label: str
    bounds: list[TableBound] = field(default_factory=list)   # its tables' error analysis
    slot: int = -1


@dataclass
class EmbedFeature:
    feature: Feature
    where: str                # "token" or "position"
    vector: np.ndarray        # over the vocabulary (token) or positions 0..N-1 (position)


@dataclass
class Readout:
    """How to decode the output s-op from the final residual."""

    mode: str                 # "onehot" or "numeric"
    values: tuple             # the output's value list
    reads: list[Ref]          # onehot: one per value; numeric: [value] (+ [is_none])
    node: ir.SOp
    # an output mean's BOS weight times its scale (e^(top score - BOS's)): 1/w for w selected
    # keys, so that the decoder gives a mean of several keys the interpreter's float type
    # (one key keeps an int); (feature, scale), or None
    several: Optional[tuple] = None


@dataclass
class Lowered:
    embed: list[EmbedFeature]
    heads: list[HeadBlock]
    mlps: list[MLPBlock]
    readout: Readout
    vocab: list
    max_seq_len: int
    feature_err: dict[int, float]
    refs: dict[int, list["Ref"]] = field(default_factory=dict)   # every function read of every s-op
    problems: list[str] = field(default_factory=list)   # tables whose inputs are off by more than they allow
    head_pair_tables: bool = False      # a per-gate table reads two counts from their heads
    # maps whose fused table (the maps under them folded in) was refused while it also had
    # to write a squared code for an equality head: see Compilation._fuse_without_squares
    squares_blocking_fusion: frozenset = frozenset()
    # a map waited for the MLPs of its map inputs where a table over their inputs was not
    # tried: see Lowering(deeper_cuts=...) and Compilation._tables_over_deeper_cuts
    deeper_cut_untried: bool = False


def _indicator_scales(table: np.ndarray) -> np.ndarray:
    """Per row, its nonzero entry where it has exactly one (a scaled indicator), else 1."""
    if table.size == 0:
        return np.ones(len(table))
    nonzero = table != 0
    single = (nonzero.sum(axis=1) == 1)
    at = table[np.arange(len(table)), np.argmax(nonzero, axis=1)]
    return np.where(single & np.isfinite(at), at, 1.0)


def _or_parts(sel: ir.Selector, graph: ProgramGraph) -> list[ir.Selector]:
    """The operands of an `or` (of `or`s), each one selector."""
    if isinstance(sel, ir.SelectOr):
        return [p for kid in graph.children(sel) for p in _or_parts(kid, graph)]
    return [sel]


def _equality_terms(q_code: "Ref | Feature", q_sq: "Ref | Feature | None", k_code: "Ref | Feature",
                    k_sq: "Ref | Feature", gap: float, s: float) -> list[tuple[Lin, Lin]]:
    """Score terms gap - s * (q - k)^2 from codes and their squares, the scales in the
    weights so that the features hold plain codes and squares (small numbers, small
    rounding errors). Without the query's square each query's scores shift by a constant."""
    terms: list[tuple[Lin, Lin]] = [({ONE: 1.0}, {ONE: gap, k_sq: -s}), ({q_code: 2 * s}, {k_code: 1.0})]
    if q_sq is not None:
        terms.append(({q_sq: -s}, {ONE: 1.0}))
    return terms


def _fn_of(values: Sequence[Any], fn: Callable[[Any], float]) -> np.ndarray:
    return np.array([float(fn(v)) for v in values], dtype=np.float64)


def _as_numbers(values: Sequence[Any]) -> np.ndarray:
    """The values as floats, None as 0 (numeric s-ops can have tens of thousands of values)."""
    obj = np.array(values, dtype=object)
    obj[np.equal(obj, None)] = 0.0
    return obj.astype(np.float64)


class Lowering:
    def __init__(self, graph: ProgramGraph, inf: Inference, plan: Plan, low_error: bool = False,
                 output_by_code: bool = False, no_squares: frozenset = frozenset(), head_pairs: bool = True,
                 uniform_width_scores: bool = True, deeper_cuts: bool = False) -> None:
        self.graph = graph
        self.uniform_width_scores = uniform_width_scores
        self.deeper_cuts = deeper_cuts
        # maps whose table waited for their inputs' MLPs -> their map inputs (a deeper cut
        # was possible, see _cut_below)
        self._waited: dict[int, set[int]] = {}
        # per-gate tables may read two counts from their heads along one projection (see
        # _per_gate_parts); whether one did
        self.head_pairs = head_pairs
        self._head_pair_tables = False
        self._squares_blocking_fusion: set[int] = set()
        self._bos_weight: Optional[Feature] = None      # (see Readout.several)
        # s-ops whose equality heads take the table form: an MLP could not also provide
        # their squared codes exactly (see SquareUnfit)
        self.no_squares = no_squares
        self._squared: set[int] = set()     # s-ops whose squared codes a head requested
        self.low_error = low_error      # prefer the table with the smaller output error (see exact_table)
        # read a numerical output by the index of its value, not the value itself (values
        # such as 1 and 1e12 are too far apart in scale for float32 to carry the value)
        self.output_by_code = output_by_code
        self.inf = inf
        self.plan = plan
        self.N = inf.N
        self.vocab = inf.vocab
        self.refs: dict[int, list[Ref]] = defaultdict(list)
        self.tok_basis = Basis(len(self.vocab))
        self.pos_basis = Basis(self.N)
        self.node_basis: dict[int, Basis] = {}
        # refs that are score terms of a head whose selected keys must weigh the same
        self._uniform_scores: set[int] = set()
        # ... of a mean whose values lie close together, even where its selected keys hold
        # one key value (exact unless a copy would need snapping, see _mlp_map_over)
        self._fine_scores: set[int] = set()
        # ... of such a mean (keys of different values) whose values lie close together
        # (_fine_mean): only exact (snapped) score features will do; see _mlp_map_over
        self._exact_scores: dict[int, ir.SOp] = {}
        self._identity: dict[int, Optional[np.ndarray]] = {}
        self._coordinate_cache: dict[int, np.ndarray] = {}
        self._number_masks: dict[int, np.ndarray] = {}
        self._map_images: dict[int, np.ndarray] = {}    # see _map_image
        self.embed: list[EmbedFeature] = []
        self.heads: list[HeadBlock] = []
        self.mlps: list[MLPBlock] = []
        self.index: dict[int, dict] = {}
        self.err: dict[int, float] = {}         # feature uid -> absolute error bound
        self._shared_heads: dict[tuple, HeadBlock] = {}
        self._parts_cache: dict[int, list] = {}
        self._joint_cache: dict[int, Optional[tuple]] = {}
        self._tuple_columns: dict[tuple, tuple[int, list[np.ndarray]]] = {}
        # two-head widths a table reads straight from their heads along the joint plan's
        # coordinate: their heads must write what the plan assumed (its BOS boost)
        self._joint_heads_read: set[int] = set()
        self._width_x: dict[int, list[Feature]] = {}   # width node -> its heads' 1/(w+1) features
        self._done: set[int] = set()
        self._snap_heads: dict[int, HeadBlock] = {}      # s-op id -> the head snapping its indicators
        self._snapped: dict[tuple[int, int], Feature] = {}
        # ids of refs read as integer combinations of integer-valued features (snap heads'
        # inputs and a snapped table's exact gates: their float32 sums are then exact)
        self._integral_reads: set[int] = set()
        # ids of refs a snap head reads that an MLP writes: one feature each, so that the
        # read's error is that table's, not the sum of many (an indicator read as one minus
        # 19 others summed 0.31 of error, past the snap's 0.25)
        self._snap_inputs: set[int] = set()
        self._position_terms: Optional[tuple] = None
        self._readout_refs: set[int] = set()      # ids of the readout's refs (see run)

    # ---- helpers over value lists
    def values(self, node: ir.Node) -> tuple:
        return self.inf.info[node.id].values

    def find(self, node: ir.Node, value: Any) -> Optional[int]:
        """Index of `value` in node's value list (numbers match numerically, see ValueIndex)."""
        idx = self.index.get(node.id)
        if idx is None:
            idx = self.index[node.id] = ValueIndex(self.values(node))
        return idx.find(value)

    def request(self, node: ir.SOp, vec: np.ndarray, label: str = "") -> Ref:
        if node.id in self._done:
            raise CompileError("internal: a function of this s-op was requested after it was lowered", node)
        ref = Ref(node.id, vec, label)
        self.refs[node.id].append(ref)
        return ref

    def request_fn(self, node: ir.SOp, fn: Callable[[Any], float], label: str = "") -> Ref:
        return self.request(node, _fn_of(self.values(node), fn), label)

    def identity(self, node: ir.SOp) -> Ref:
        ident = self._identity_fn(node)
        if ident is None:
            raise CompileError("this s-op is used as a number but its values are not all numbers", node)
        return self.request(node, ident, f"{node.name}")

    def indicator(self, node: ir.SOp, value: Any) -> Ref:
        vec = np.zeros(len(self.values(node)))
        i = self.find(node, value)
        if i is not None:
            vec[i] = 1.0
        return self.request(node, vec, f"{node.name}=={value!r}")

    def _identity_fn(self, node: ir.SOp) -> Optional[np.ndarray]:
        """The node's values as numbers (None as 0), or None when they are not all numbers."""
        if node.id not in self._identity:
            vals = self.values(node)
            plain = numbers(v for v in vals if v is not None) is not None
            self._identity[node.id] = _as_numbers(vals) if plain else None
        return self._identity[node.id]

    def new_feature(self, node: ir.SOp, vec: np.ndarray, kind: str = "value", label: str = "") -> Feature:
        vals = self.values(node)
        nz = None
        if not label:
            nz = np.flatnonzero(vec)
            if kind == "value" and len(nz) == 1 and vec[nz[0]] == 1.0:
                kind, label = "onehot", f"{node.name}={vals[nz[0]]!r}"
            elif (ident := self._identity_fn(node)) is not None and \
                    np.all(np.abs(vec - ident) <= 1e-8 + 1e-5 * np.abs(ident)):   # (np.allclose, faster)
                label = node.name
            else:
                basis = self.node_basis.get(node.id)
                label = f"{node.name}:f{len(basis.features) if basis is not None else 0}"
        value = vals[int((np.flatnonzero(vec) if nz is None else nz)[0])] if kind == "onehot" else None
        return Feature(label, sop_id=node.id, fn=np.asarray(vec, dtype=np.float64), kind=kind, value=value)

    # ---- main loop
    def run(self) -> Lowered:
        out = self.graph.output
        readout = self._readout(out)
        self._readout_refs = {id(ref) for ref in readout.reads}
        for node in reversed(self.graph.nodes()):
            if isinstance(node, ir.Selector) or not (self.refs.get(node.id) or node.id in self._width_x):
                continue
            try:
                self._lower_node(node)
            except InconsistentTable:
                raise CompileError("no MLP can compute this exactly: two reachable inputs it cannot tell apart "
                                   "need different outputs (values that differ only by float rounding?)",
                                   node) from None
            except MemoryError:
                raise out_of_memory(node) from None
        # (every ref is final now: resolved once here, for the checks and all later stages)
        _resolve_blocks(self.heads, self.mlps)
        readout.several = self._several_readout()
        problems = estimate_problems(self.mlps, resolve) + estimate_head_problems(self.heads, self.err, resolve)
        if not problems:
            self._check_readout(readout)
        feature_err = dict(self.err)
        return Lowered(self.embed, self.heads, self.mlps, readout, self.vocab, self.N, feature_err,
                       {k: list(v) for k, v in self.refs.items()}, problems, self._head_pair_tables,
                       frozenset(self._squares_blocking_fusion), self._deeper_cut_untried())

    def _lower_node(self, node: ir.SOp) -> None:
        """Lower one s-op by its kind (see compiler.plan)."""
        kind = self.plan.kind[node.id]
        self._done.add(node.id)
        if kind == CONST:
            self._lower_const(node)
        elif kind == EMBED_TOK:
            self._lower_embed_token(node)
        elif kind == EMBED_POS:
            self._lower_embed_position(node)
        elif kind in (ATTN_COPY, ATTN_MEAN):
            self._lower_aggregate(node, kind)
        elif kind == WIDTH:
            self._lower_width(node)
        elif kind == MAP_VIRTUAL:
            self._lower_virtual(node)
        elif kind == MAP_MLP:
            self._lower_mlp_map(node, self.refs[node.id])

    # ---- readout
    def _readout(self, out: ir.SOp) -> Readout:
        vals = self.values(out)
        kinds = set(map(type, vals)) - {type(None)}
        all_bool = kinds == {bool}
        all_num = bool(kinds) and all(issubclass(k, (int, float)) and not issubclass(k, bool) for k in kinds)
        readable = self.plan.readable[out.id]
        has_none = None in vals
        if self._count_decides_type(out):
            self._bos_weight = Feature(f"{out.name}: BOS weight", kind="aux")
        numeric = (all_num or all_bool) and (readable == AFFINE or len(vals) - has_none > 2) and \
            not self.output_by_code
        if numeric:
            reads = [self.request(out, _as_numbers(vals), "out")]
            if has_none:    # (numbers and None only: an object array of them is one-dimensional)
                is_none = np.equal(np.array(vals, dtype=object), None).astype(np.float64)
                reads.append(self.request(out, is_none, "out is None"))
            return Readout("numeric", vals, reads, out)
        if readable == AFFINE and self.plan.kind[out.id] != ATTN_MEAN:
            # (numbers and bools, say, from a map the plan made linear: the pipeline retries
            # with the output computed by an MLP, which can be read by value index)
            raise ReadoutError("the output cannot be decoded: its values are not all numbers", out)
        if len(vals) <= 2:
            reads = [self.indicator(out, v) for v in vals]
            return Readout("onehot", vals, reads, out)
        # one direction holding the index of the value: decoded by rounding
        reads = [self.request(out, np.arange(len(vals), dtype=np.float64), "out:code")]
        return Readout("code", vals, reads, out)

    def _read_by_readout_only(self, node: ir.SOp) -> bool:
        """Whether every read of the node is the readout's, which checks the error its
        inputs come with (_check_readout); a table's outputs read by later tables must stay
        within what those assumed (see mlp.interpolation_limit)."""
        refs = self.refs.get(node.id, [])
        return bool(refs) and all(id(ref) in self._readout_refs for ref in refs)

    def _check_readout(self, readout: Readout) -> None:
        """Refuse a model whose output features may be further off than the decoder's margin."""
        for err, margin in readout_errors(readout, self.err, any_order=False):
            if err >= margin:
                raise ReadoutError(f"the output cannot be decoded exactly in float32: its values are "
                                   f"{2 * margin:.3g} apart, so each must come out within {margin:.3g} of "
                                   f"itself, and the model's error on them can reach {err:.3g} "
                                   f"(use a smaller vocabulary or max_seq_len)", readout.node)

    def _count_decides_type(self, out: ir.SOp) -> bool:
        """Whether the output is a mean (or a copy of numbers) whose number type the count
        of its selected keys decides (a whole-number mean of several ints is the float 2.0,
        one selected 2 stays the int), where no structural selector fixes that count per
        position and length (pipeline._floats_at)."""
        if not isinstance(out, ir.Aggregate) or out.semantics != "rasp" or \
                self.plan.kind.get(out.id) not in (ATTN_MEAN, ATTN_COPY):
            return False
        sel = self.inf.sel[self.graph.children(out)[0].id]
        return sel.exact is None and not sel.at_most_one and \
            any(type(v) is int for v in self.values(out))

    def _several_readout(self) -> Optional[tuple]:
        """Readout.several: the output head's BOS weight, where its scores make it 1/w
        after scaling (selected keys at the head's top score, not shifted per query; BOS far
        enough below for float32 to hold its weight, e^-60 at most) and score errors leave
        w = 1 and w = 2 apart: each is off by a factor e^(2 s) at most, so 1 e^-2s and
        e^2s / 2 stay on either side of the decoder's 1/sqrt(2) while s < 0.17 (0.15 asked).
        Elsewhere the value is dropped."""
        f = self._bos_weight
        head = next((h for h in self.heads if any(g is f for g, _, _ in h.values)), None) if f else None
        if head is None:
            return None
        drop = head.shifted or head.width
        scale = len(head.literals) * head.gap - head.bos_score
        if not drop and (scale > 60 or score_error(head, self.err, resolve) > 0.15):
            drop = True
        if drop:
            head.values = [v for v in head.values if v[0] is not f]
            return None
        return f, math.exp(scale)

    # ---- constants and embeddings
    def _lower_const(self, node: ir.SOp) -> None:
        for ref in self.refs[node.id]:
            ref.const = float(ref.vec[0]) if len(ref.vec) else 0.0

    def _lower_embed_token(self, node: ir.SOp) -> None:
        info = self.inf.info[node.id]
        if info.per_token is None:
            raise CompileError("internal: token-local s-op without a token table", node)
        values = [info.per_token[(type(t), t)] for t in self.vocab]
        self._embed(node, values, self.tok_basis, "token")

    def _lower_embed_position(self, node: ir.SOp) -> None:
        info = self.inf.info[node.id]
        self._embed(node, [info.by_pos[i][0] for i in range(self.N)], self.pos_basis, "position")

    def _embed(self, node: ir.SOp, values: list, basis: Basis, where: str) -> None:
        """Each ref as a combination of embedding features (new ones only when needed).

        `values[j]` is the node's value for token j (token embedding) or position j.
        """
        refs = self.refs[node.id]
        if not refs:
            return
        rows = np.array([self.find(node, v) for v in values], dtype=np.int64)
        # a scaled indicator (30 where the token is "a") is embedded as the plain indicator
        # and read with weight 30: weights that are integers keep a score's float32 sum
        # exact, where the 30-scaled feature read back with weight 1/30 (for the plain
        # indicator) rounds
        table = np.array([ref.vec for ref in refs], dtype=np.float64).reshape(len(refs), -1)
        scales = _indicator_scales(table)
        embedded = table[:, rows] / scales[:, None]
        vecs = list(embedded)
        # (an embedding entry float32 holds exactly, such as an integer code, is exact)
        errors = np.where((embedded.astype(np.float32).astype(np.float64) == embedded).all(axis=1), 0.0,
                          EPS32 * np.abs(embedded).max(axis=1, initial=0.0)).tolist()
        scales = scales.tolist()
        made = basis.express_or_add_many(
            vecs, lambda j: self._embed_feature(node, vecs[j], where, refs[j].vec / scales[j], errors[j]),
            lambda j: id(refs[j]) in self._integral_reads)
        for ref, terms, scale in zip(refs, made, scales):
            ref.own = {f: c * scale for f, c in terms.items()}
            if ONE in ref.own:
                ref.const += ref.own.pop(ONE)

    def _embed_feature(self, node: ir.SOp, vec: np.ndarray, where: str, fn: np.ndarray, error: float) -> Feature:
        f = self.new_feature(node, fn)
        if f.label.startswith(node.name + ":"):
            f.label = f"{node.name}:{where[0]}{len(self.embed)}"
        self.embed.append(EmbedFeature(f, where, vec))
        self.err[f.uid] = error
        return f

    def _number_mask(self, node: ir.SOp) -> np.ndarray:
        if node.id not in self._number_masks:
            self._number_masks[node.id] = self._compute_number_mask(node)
        return self._number_masks[node.id]

    def _compute_number_mask(self, node: ir.SOp) -> np.ndarray:
        """Which of the node's values are numbers; the others (None, or a numerical
        aggregate's default such as "none") are marked by a flag feature instead. A text
        aggregate's False default is no number: its means are of numbers only."""
        text_bools = self.plan.kind.get(node.id) == ATTN_MEAN     # (under Tracr's rule: its default)
        vals = self.values(node)
        types = set(map(type, vals))
        if types <= {int, float}:
            return np.ones(len(vals), dtype=bool)
        if types <= {int, float, type(None)}:       # (numbers and None: in numpy, the common case)
            return ~np.equal(np.array(vals, dtype=object), None)
        return np.fromiter((is_number(v) or isinstance(v, bool) and not text_bools for v in vals),
                           dtype=bool, count=len(vals))

    def _value_coordinate(self, node: ir.SOp) -> np.ndarray:
        """One number per value that tells all values apart: numbers as themselves, the
        flagged non-number lifted above them all (its flag feature adds the lift)."""
        if node.id in self._coordinate_cache:
            return self._coordinate_cache[node.id]
        mask = self._number_mask(node)
        xs = np.zeros(len(mask))
        vals = self.values(node)
        xs[mask] = [float(vals[i]) for i in np.flatnonzero(mask).tolist()]     # (tuples among them)
        if not mask.all():      # each non-number one step further above the numbers
            nums = np.unique(xs[mask])
            step = max(float(np.min(np.diff(nums))) if len(nums) > 1 else 1.0, 1.0)
            top = float(np.max(np.abs(nums), initial=0.0))
            xs[~mask] = top + step * np.arange(1, int((~mask).sum()) + 1)
        self._coordinate_cache[node.id] = xs
        return xs

    def _coordinates(self, node: ir.SOp, col: Sequence[Any]) -> np.ndarray:
        """_value_coordinate of each value in `col`."""
        coord = self._value_coordinate(node)
        if set(map(type, self.values(node))) <= {int, float}:
            return np.array(list(col), dtype=np.float64)       # numbers read as themselves
        return np.array([coord[self.find(node, v)] for v in col], dtype=np.float64)

    # ---- virtual maps
    def _lower_virtual(self, node: ir.Map) -> None:
        kids = self.graph.children(node)
        failed = []
        for ref in self.refs[node.id]:
            if not self._forward(node, kids, ref):
                failed.append(ref)
        if failed:
            self._lower_mlp_map(node, failed)

    def _forward(self, node: ir.Map, kids: list, ref: Ref) -> bool:
        if len(kids) == 1:
            (k,) = kids
            image = self._map_image(node, k)
            vec = np.where(image >= 0, ref.vec[np.maximum(image, 0)], 0.0)
            if self.plan.readable[k.id] == AFFINE:
                xs = numbers(self.values(k))
                if xs is None or affine_fit(xs, vec) is None:
                    return False
            ref.parts.append((1.0, self._request_part(k, vec, ref)))
            return True
        dec = self.plan.map_decomposition(node, kids, ref.vec)
        if dec is None:
            return False
        for k, part in zip(kids, dec.parts):
            if self.plan.readable[k.id] == AFFINE:
                xs = numbers(self.values(k))
                if xs is None or affine_fit(xs, part) is None:
                    return False
        for k, part in zip(kids, dec.parts):
            if np.any(part != 0):
                ref.parts.append((1.0, self._request_part(k, part, ref)))
        ref.const += dec.const
        return True

    def _map_image(self, node: ir.Map, kid: ir.SOp) -> np.ndarray:
        """For each value of a one-input map's input, the index of the map's value there
        (-1 where it fails or is not listed), once per map: every request forwarded
        through it reads this (an exact copy of a map with 8,000 values was asked for
        8,000 functions, 32 million calls of the map at max_seq_len 30)."""
        image = self._map_images.get(node.id)
        if image is None:
            image = np.full(len(self.values(kid)), -1, dtype=np.int64)
            for j, v in enumerate(self.values(kid)):
                r = call_element(node.fn, (v,))
                i = self.find(node, r) if r is not FAILED else None
                if i is not None:
                    image[j] = i
            self._map_images[node.id] = image
        return image

    def _request_part(self, kid: ir.SOp, vec: np.ndarray, ref: Ref) -> Ref:
        """A ref on a virtual map's input that `ref` forwards to; it keeps ref's needs
        (an exact score feature stays one through `(indices * length) % 7`, whose MLP
        input had been tabulated loosely and made a mean wrong at max_seq_len 32)."""
        part = self.request(kid, vec, ref.label)
        for needs in (self._uniform_scores, self._fine_scores, self._integral_reads, self._snap_inputs):
            if id(ref) in needs:
                needs.add(id(part))
        return part

    # ---- features produced by a block (heads and MLPs): one basis per s-op
    def _produce(self, node: ir.SOp, refs: list[Ref]) -> list[Feature]:
        """Express every ref in the node's feature basis, creating features as needed."""
        if len(refs) > MAX_FUNCTIONS_PER_SOP:
            distinct = len({ref.vec.tobytes() for ref in refs})     # (a request may repeat another)
            if distinct > MAX_FUNCTIONS_PER_SOP:
                raise CompileError(f"the blocks reading this s-op ask for {distinct:,} different functions of its "
                                   f"{len(self.values(node)):,} values (residual directions), more than the "
                                   f"{MAX_FUNCTIONS_PER_SOP:,} the compiler builds for one s-op (use a smaller "
                                   "vocabulary or max_seq_len)", node)
        basis = self.node_basis.setdefault(node.id, Basis(len(self.values(node))))
        before = len(basis.features)
        # (a snap head rounds each partial sum of its read, and an exact gate must sum
        # exactly: their reads are integer combinations, see _integral_reads)
        made = basis.express_or_add_many([ref.vec for ref in refs], lambda j: self.new_feature(node, refs[j].vec),
                                         lambda j: id(refs[j]) in self._integral_reads,
                                         lambda j: id(refs[j]) in self._snap_inputs)
        for ref, terms in zip(refs, made):
            ref.own = {f: c for f, c in terms.items() if f is not ONE}
            ref.const += terms.get(ONE, 0.0)
        return basis.features[before:]

    # ---- aggregates
    def _lower_aggregate(self, node: ir.Aggregate, kind: str) -> None:
        sel, src = self.graph.children(node)
        refs = self.refs[node.id]
        default = node.default
        if kind == ATTN_MEAN:
            # every value is a mean (a number) but the default and the source's own
            # non-numbers (None, strings, bools: a query selecting them selects only equal
            # ones), which may be any other value: a flag feature per such value marks it
            # (the mean of "the selected value is it"), and the mean reads 0 there
            mask = self._number_mask(node)
            vals = self.values(node)
            xs = np.where(mask, self._value_coordinate(node), 0.0)
            f_mean = Feature(f"{node.name}", sop_id=node.id, kind="value", fn=xs)
            flags = {int(i): Feature(f"{node.name} is {vals[i]!r}", sop_id=node.id, kind="value",
                                     fn=(np.arange(len(vals)) == i).astype(np.float64))
                     for i in np.flatnonzero(~mask)}
            nonaffine = []
            for ref in refs:
                fit = affine_fit(xs[mask], ref.vec[mask]) if mask.any() else (0.0, 0.0)
                if fit is None:
                    nonaffine.append(ref)
                    continue
                a, b = fit
                ref.own = {f_mean: a}
                ref.const += b
                for i, f in flags.items():
                    ref.own[f] = float(ref.vec[i]) - b
            src_vals = self.values(src)
            tracr = node.semantics == "tracr"      # (Tracr averages bools as 0/1)
            src_nums = np.array([is_number(v) or (tracr and isinstance(v, bool)) for v in src_vals], dtype=bool)
            if all(m or v is None for v, m in zip(src_vals, src_nums)):
                value_ref = self.identity(src)
            else:
                value_ref = self.request(src, np.array([float(v) if m else 0.0 for v, m in zip(src_vals, src_nums)]),
                                         f"{src.name} (numbers)")
            # (non-numbers matched by type and value: an index of thousands of means costs ms)
            flagged = {(type(vals[i]), vals[i]): i for i in flags}
            di = flagged.get((type(default), default))
            bos_mean = float(default) if di is None and is_number(default) else 0.0   # (or unused: never empty)
            outs = [(f_mean, {value_ref: 1.0}, bos_mean)]
            for i, f in flags.items():
                where = np.array([not m and flagged.get((type(v), v)) == i for v, m in zip(src_vals, src_nums)],
                                 dtype=np.float64)
                lin = {self.request(src, where, f.label): 1.0} if where.any() else {}
                outs.append((f, lin, 1.0 if di == i else 0.0))
            if self._bos_weight is not None and node is self.graph.output:
                outs.append((self._bos_weight, {}, 1.0))       # (1 at BOS alone: its weight)
            self._head(node, sel, outs, width=False, exact_mean=True)
            if nonaffine:
                self._materialize(node, nonaffine, z_feature=f_mean, flags=flags)
            return
        created = self._produce(node, refs)
        outs = []
        src_vals = self.values(src)
        for f in created:
            vec = np.zeros(len(src_vals))
            for j, v in enumerate(src_vals):
                i = self.find(node, float(v) if node.semantics == "tracr" and isinstance(v, (int, bool))
                              and not isinstance(v, float) else v)
                if i is None:
                    i = self.find(node, v)
                vec[j] = f.fn[i] if i is not None else 0.0
            di = self.find(node, default)
            bos_val = float(f.fn[di]) if di is not None else 0.0
            outs.append((f, {self.request(src, vec, f.label): 1.0}, bos_val))
        # (a select over tuples: its one literal, tabulated once for both ways of building the head)
        joint = conjunction(sel, self.graph, self.inf) if sel.id in self.graph.joint_sources else None
        # (a copy of equal numbers from several keys is their float mean: the output's BOS
        # weight tells how many were selected where the selected keys weigh the same)
        count = self._bos_weight is not None and node is self.graph.output and joint is None
        if count:
            outs.append((self._bos_weight, {}, 1.0))
        if joint is None or not self._disjunctive_head(node, sel, outs, joint[0].matrix):
            self._head(node, sel, outs, width=False, exact_mean=count, literals=joint)

    # ---- selector width (and length)
    def _width_parts(self, node: ir.SOp) -> list[Optional[list[Literal]]]:
        """The conjunctions whose widths add up to the node's width: one head each."""
        if node.id in self._parts_cache:
            return self._parts_cache[node.id]
        kids = self.graph.children(node)
        sel = kids[0] if kids else None
        if sel is None:
            conjs: list[Optional[list[Literal]]] = [None]
        else:
            conj = conjunction(sel, self.graph, self.inf)
            conjs = [conj] if conj is not None else disjoint_conjunctions(sel, self.graph, self.inf)
            if len(conjs) == 1 and len(conjs[0]) == 1:
                lit = conjs[0][0]
                split = split_pairwise(lit, self.graph, self.inf)
                n_y = len(self.values(lit.keys))
                if split is not None and n_y > 2 * sum(len(self.values(l.keys)) for c in split for l in c[-1:]):
                    conjs = split
        self._parts_cache[node.id] = conjs
        return conjs

    def _width_x_features(self, node: ir.SOp) -> list[Feature]:
        """The features its heads write, 1/(w_t+1) per part; made on first use, so that a
        consumer lowered before the width can already read them."""
        if node.id not in self._width_x:
            self._width_x[node.id] = [Feature(f"{node.name}:1/(w{t}+1)", kind="aux")
                                      for t in range(len(self._width_parts(node)))]
        return self._width_x[node.id]

    def _lower_width(self, node: ir.SOp) -> None:
        kids = self.graph.children(node)
        sel = kids[0] if kids else None
        refs = self.refs[node.id]
        conjs = self._width_parts(node)
        xfeats = self._width_x_features(node)
        xs = np.array([float(v) for v in self.values(node)])
        # two heads decoded at once (see _joint_width_plan), whose BOS may weigh more
        joint = self._joint_width_plan(node) if len(xfeats) == 2 and \
            (node.id in self._joint_heads_read or any(affine_fit(xs, ref.vec) is None for ref in refs)) else None
        boost = joint[4] if joint is not None else 0.0
        if boost:
            c = math.exp(boost)
            for t, f_x in enumerate(xfeats):
                f_x.label = f"{node.name}:w{t}/(w{t}+{c:.4g})"
        for t, (lits, f_x) in enumerate(zip(conjs, xfeats)):
            # (1/(w+1): BOS holds 1, the keys 0; with a raised BOS, w/(c+w): BOS holds 0, the
            # keys 1, a small number whose float32 rounding is small)
            value = (f_x, {ONE: 1.0}, 0.0) if boost else (f_x, {}, 1.0)
            self._head(node, sel, [value], width=True, exact_mean=True, literals=lits, part=t, bos_boost=boost)
        if not refs:
            return      # only read through its heads' outputs (see _table_over_leaves)
        if len(conjs) == 1:
            # one head: the decoding MLP writes every requested function of the width
            created = self._produce(node, refs)
            z = _width_x(xs)
            outputs = np.stack([f.fn for f in created], axis=1) if created else np.zeros((len(xs), 0))
            self._mlp_from_table(node, [], [()] * len(xs), z, {xfeats[0]: 1.0}, outputs, created,
                                 z_err=self._width_x_error(), label=f"decode {node.name}")
            return
        if joint is not None and self._decode_joint_widths(node, xfeats, refs):
            return
        # several disjoint heads: w = sum of their widths; decode each and add
        f_w = Feature(node.name, sop_id=node.id, kind="value", fn=xs)
        max_w = int(max(self.values(node)))
        units_outs = []
        for t, f_x in enumerate(xfeats):
            ws = list(range(0, max_w + 1))
            z = _width_x(np.array(ws, dtype=np.float64), boost)
            outputs = np.array(ws, dtype=np.float64).reshape(-1, 1)
            units_outs.append((z, f_x, outputs))
        self._mlp_sum_of_tables(node, units_outs, f_w, label=f"decode {node.name}")
        nonaffine = []
        for ref in refs:
            fit = affine_fit(xs, ref.vec)
            if fit is None:
                nonaffine.append(ref)
            else:
                ref.own = {f_w: fit[0]}
                ref.const += fit[1]
        if nonaffine:
            self._materialize(node, nonaffine, z_feature=f_w)

    def _joint_width_plan(self, node: ir.SOp) -> Optional[tuple[float, np.ndarray, np.ndarray, float, float]]:
        """(lam, z, value row per point, z error, BOS boost) for decoding two width heads at
        once, or None.

        Decoding each head and adding (w = w0 + w1) is linear in the decoded widths, but a
        function of w that is not affine in it (the one-hot features a later select reads)
        would need a second MLP, i.e. one more layer. Instead, one MLP can tabulate any
        function of w0 + w1 over all pairs (w0, w1) read along z = x0 + lam * x1, where
        pairs with different sums lie apart.

        First choice: the heads' BOS score is raised by `boost`, so that BOS weighs
        c = e^boost ~ max_seq_len^2 keys, and the heads write x = w/(c+w) (keys hold 1, BOS
        0), nearly linear in w: with lam = 1, z = (w0+w1)/c + O(w^2/c^2) keeps the pairs of
        one sum together and different sums ~1/c apart, so the MLP needs a step per sum, not
        per pair (sort: 2 layers to max_seq_len 120, d_mlp 18 at 10). (Not c/(c+w): values
        near 1 times the steps' slopes ~2c made float32 round the MLP's activations past
        what the error bound allows.) Else the plain heads' x = 1/(w+1) (BOS weighs as one
        key), with lam chosen to separate the sums, while there are few pairs
        (JOINT_WIDTH_MAX_PAIRS): its MLP needs a step per pair. None if neither is exact.
        """
        if node.id in self._joint_cache:
            return self._joint_cache[node.id]
        self._joint_cache[node.id] = None
        if len(self._width_parts(node)) != 2:
            return None
        widths = [int(v) for v in self.values(node)]
        max_w = max(widths)
        n_pairs = (max_w + 1) * (max_w + 2) // 2
        if n_pairs > LINEAR_JOINT_MAX_PAIRS:
            return None
        a, b = np.triu_indices(max_w + 1)           # (a, b - a): every pair with sum b <= max_w
        pairs = np.stack([a, b - a], axis=1).astype(np.float64)
        rows = [self.find(node, int(t)) for t in b.tolist()]
        keep = np.array([r is not None for r in rows])
        pairs = pairs[keep]
        rows = np.array([r for r in rows if r is not None])
        total = pairs.sum(axis=1)
        onehot = (total[:, None] == np.unique(total)[None, :]).astype(np.float64)
        for boost in (round(16 * math.log(max(2, self.N))) / 8, 0.0):     # (c ~ N^2, a float32-exact score)
            x = _width_x(pairs, boost)
            if boost == 0.0:
                if n_pairs > JOINT_WIDTH_MAX_PAIRS:
                    continue
                # keep pairs with different sums apart
                proj = _separating_projection([x[:, 0], x[:, 1]], total[:, None], np.geomspace(0.05, 20.0, 400))
                if proj is None:
                    continue
                lam = proj[1]
            else:
                lam = 1.0
            z = x[:, 0] + lam * x[:, 1]
            z_err = (1.0 + lam) * self._width_x_error()
            if build_table([()] * len(z), z, onehot, 0, lazy=True).precise_enough(z_err):
                self._joint_cache[node.id] = (lam, z, rows, z_err, boost)
                break
        return self._joint_cache[node.id]

    def _joint_width_rows(self, node: ir.SOp, col: np.ndarray) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """For a table reading a two-head width along its joint plan's coordinate: each of
        the table's rows (its width `col[r]`) once per split (w0, w1) of that width, as
        (row index, plan point index) arrays; (None, None) where a width has no split."""
        _, _, point_rows, _, _ = self._joint_width_plan(node)
        by_value: dict[int, list[int]] = defaultdict(list)
        for p, i in enumerate(point_rows.tolist()):
            by_value[i].append(p)
        rows, points = [], []
        for r, v in enumerate(col.tolist()):
            splits = by_value.get(self.find(node, v), [])
            if not splits:
                return None, None
            rows.extend([r] * len(splits))
            points.extend(splits)
        return np.array(rows, dtype=np.int64), np.array(points, dtype=np.int64)

    def _joint_decodes_codes(self, node: ir.SOp, code: np.ndarray) -> bool:
        """Whether a width's heads are decoded apart (no joint plan), or its joint plan's MLP
        gives the code and its square exactly (only with a raised BOS: the pairs' z then
        climb with the sum, and the square's steps stay few)."""
        joint = self._joint_width_plan(node)
        if joint is None:
            return True
        lam, z, rows, z_err, boost = joint
        if not boost:
            return False
        outputs = np.stack([code[rows], code[rows] ** 2], axis=1)
        return exact_table([()] * len(z), z, outputs, 0, z_err, steps_only=True) is not None

    def _decode_joint_widths(self, node: ir.SOp, xfeats: list[Feature], refs: list[Ref]) -> bool:
        """One MLP decoding two width heads into every requested function (see _joint_width_plan)."""
        joint = self._joint_width_plan(node)
        if joint is None:
            return False
        lam, z, rows, z_err, _ = joint
        ref_outputs = np.stack([ref.vec[rows] for ref in refs], axis=1)
        if exact_table([()] * len(z), z, ref_outputs, 0, z_err, steps_only=True) is None:
            return False
        created = self._produce(node, refs)
        outputs = np.stack([f.fn[rows] for f in created], axis=1) if created else np.zeros((len(z), 0))
        self._mlp_from_table(node, [], [()] * len(z), z, {xfeats[0]: 1.0, xfeats[1]: lam}, outputs, created,
                             z_err=z_err, label=f"decode {node.name}")
        return True

    def _width_x_error(self) -> float:
        # leakage of unselected keys (weight <= N e^-gap) plus float32 softmax rounding
        return (self.N + 1) * math.exp(-SCORE_GAP) + 8 * EPS32

    # ---- heads
    def _head(self, node: ir.SOp, sel: Optional[ir.Selector], outs: list, width: bool, exact_mean: bool,
              literals: Optional[list[Literal]] = None, part: int = 0, bos_boost: float = 0.0) -> None:
        if sel is not None and literals is None:
            literals = conjunction(sel, self.graph, self.inf)
            if literals is None:
                raise CompileError("an aggregate over an `or` of selects on different s-ops cannot be one "
                                   "attention head; rewrite the selector (e.g. select on a combined s-op)", node)
        literals = literals or []
        sel_info = self.inf.sel[sel.id] if sel is not None else None
        if sel is not None and not width:
            # aggregates over one selector share a head when they run in the same layer
            t = self.plan.time[node.id]
            for key in ((sel.id, exact_mean, t), (sel.id, True, t)):
                shared = self._shared_heads.get(key)
                if shared is not None:
                    shared.values.extend(outs)
                    shared.uniform = shared.uniform or exact_mean
                    shared.label += f", {node.name}"
                    for f, _, _ in outs:
                        self.err[f.uid] = self._head_value_error(shared.values, shared)
                    return
        terms: list[tuple[Lin, Lin]] = []
        row_shift = False
        never_empty = sel_info is not None and sel_info.never_empty
        allow_shift = (not width) and never_empty
        # a query that may select nothing reads BOS, which must sit between the selected
        # keys and the unselected ones: half a gap from each, so such a head gets twice
        # the gap (else its N unselected keys leak N e^-15 into the default)
        may_be_empty = not width and not never_empty
        fine = exact_mean and not width and not (sel_info is not None and sel_info.at_most_one) and \
            self._fine_mean(node)
        gap = 2 * SCORE_GAP if may_be_empty else SCORE_GAP
        for lit in literals:
            lit_terms, shift = self._literal_terms(node, lit, need_uniform=exact_mean, allow_shift=allow_shift,
                                                   gap=gap, mean=not width, fine=fine)
            terms.extend(lit_terms)
            row_shift = row_shift or shift
        m = len(literals)
        top = m * gap
        if width:
            if row_shift:
                raise CompileError("internal: selector_width needs exact scores", node)
            bos_score = top + bos_boost         # (BOS weighs e^bos_boost selected keys)
        elif row_shift:
            if not never_empty:
                raise CompileError("internal: shifted scores need a selection that is never empty", node)
            bos_score = top - gap
        elif never_empty:
            bos_score = top - 2 * gap
        else:
            bos_score = top - gap / 2
        description = self._describe_selector(sel, literals)
        label = f"{'width' if width else 'aggregate'} {node.name}" + (f" (part {part})" if part else "")
        head = HeadBlock(node, sel, terms, bos_score, outs, width, label, description, literals,
                         uniform=width or (exact_mean and not (sel_info is not None and sel_info.at_most_one)),
                         may_be_empty=may_be_empty, gap=gap, shifted=row_shift)
        self.heads.append(head)
        if sel is not None and not width:
            self._shared_heads[(sel.id, exact_mean, self.plan.time[node.id])] = head
        for f, _, _ in outs:
            self.err[f.uid] = self._head_value_error(outs, head)

    def _disjunctive_head(self, node: ir.SOp, sel: ir.Selector, outs: list, chosen: np.ndarray) -> bool:
        """A copy over an `or` of selects on different s-ops as one head whose scores add
        up the parts' literals, where that separates the selected keys from the rest on
        every pair of key and query values; False (nothing made) where it does not.

        The graph joins such an `or` into one select over tuples of its s-ops, whose
        features an MLP computes: a layer before the head. A copy needs no equal weights
        for its selected keys (they hold one value), only every selected key above every
        other: the paper's sort with BOS, `select(num_before, indices - 1, ==) or
        (select(indices, 0, ==) and select(indices, indices, ==))`, then takes 2 layers.
        `chosen`: the joint select's predicate over [query tuple, key tuple].
        """
        orig = self.graph.joint_sources[sel.id]
        t = self.plan.time[node.id]
        if (sel.id, False, t) in self._shared_heads or (sel.id, True, t) in self._shared_heads:
            return False        # (another aggregate's head over this selector is shared instead)
        parts = _or_parts(orig, self.graph)
        conjs = [conjunction(p, self.graph, self.inf) for p in parts]
        if any(c is None for c in conjs):
            return False
        literals = [lit for c in conjs for lit in c]
        keys, queries = self.graph.children(sel)
        kt, qt = self.values(keys), self.values(queries)
        if len(kt) * len(qt) > DISJUNCTIVE_MAX_PAIRS:
            return False
        if chosen.all() or not chosen.any():
            return False        # (the select over tuples then needs no features of them)
        never_empty = self.inf.sel[sel.id].never_empty
        gap = SCORE_GAP if never_empty else 2 * SCORE_GAP
        total = np.zeros((len(qt), len(kt)))
        for lit in literals:
            rank = factor_matrix(lit.matrix)[0].shape[1]
            quad = self._literal_codes(lit, need_uniform=False, allow_shift=False, gap=gap, rank=rank)
            if quad is None:
                scores = gap * lit.matrix.astype(np.float64)
            else:
                qc, kc, delta = quad
                scores = gap - (gap / (delta * delta)) * (qc[:, None] - kc[None, :]) ** 2
            qi = self._component_indices(queries, lit.queries, qt)
            ki = self._component_indices(keys, lit.keys, kt)
            if qi is None or ki is None:
                return False
            total += scores[np.ix_(qi, ki)]
        hi = float(total[chosen].min())
        lo = float(total[~chosen].max())
        if hi - lo < gap:
            return False
        terms: list[tuple[Lin, Lin]] = []
        for lit in literals:
            terms.extend(self._literal_terms(node, lit, need_uniform=False, allow_shift=False, gap=gap)[0])
        # (BOS, the default's key, below every selected key and, where a query may select
        # nothing, above every other key, as for a conjunction)
        bos_score = hi - 2 * gap if never_empty else (hi + lo) / 2
        head = HeadBlock(node, sel, terms, bos_score, outs, False, f"aggregate {node.name}",
                         self._describe_selector(sel, literals), literals, uniform=False,
                         may_be_empty=not never_empty, gap=hi - lo)
        self.heads.append(head)
        self._shared_heads[(sel.id, False, t)] = head
        for f, _, _ in outs:
            self.err[f.uid] = self._head_value_error(outs, head)
        return True

    def _component_indices(self, joint: ir.SOp, part: ir.SOp, values: Sequence[Any]) -> Optional[np.ndarray]:
        """For each value of a joint select's side (a tuple of s-ops, or one s-op), the index
        of `part`'s component among `part`'s own values."""
        if joint.id == part.id:
            return np.arange(len(values))
        kids = self.graph.children(joint) if isinstance(joint, ir.Map) else []
        where = next((i for i, k in enumerate(kids) if k.id == part.id), None)
        if where is None:
            return None
        self.find(part, None)          # (makes the part's value index)
        found = self.index[part.id].find_many([v[where] for v in values])
        return None if (found < 0).any() else np.asarray(found, dtype=np.int64)

    def _fine_mean(self, node: ir.SOp) -> bool:
        """Whether a mean's values lie so close together, for their spread, that selected
        keys weighing apart by the rounding of MLP-computed score features (even where they
        hold the same key value) could move it past half a gap:
        `select(min(indices % 3, 2 * indices % length), tk, >) and select(indices, indices, <=)`
        averaged `length - indices` wrong at max_seq_len 32 (every selected key holding 2),
        off by 1.3e-5 of the values' spread, and exact at 24. Flagged from 5e-5 of the
        spread (4x that): from max_seq_len 24 there."""
        nums = numbers(v for v in self.values(node) if v is not None)
        if nums is None or len(nums) < 2:
            return False
        nums = np.unique(np.asarray(nums, dtype=np.float64))
        gaps = np.diff(nums)
        return bool(FINE_MEAN_ERROR * (nums[-1] - nums[0]) >= float(gaps.min()) / 2)

    def _head_value_error(self, outs: list, head: HeadBlock) -> float:
        """The compile-time estimate of a head output's error: leak (with the N unselected
        keys a query that selects nothing leaves beside BOS) and softmax rounding."""
        biggest = 1.0
        for f, lin, bos in outs:
            for term, coef in lin.items():
                if isinstance(term, Ref):
                    biggest = max(biggest, float(np.max(np.abs(term.vec), initial=0.0)) * abs(coef))
            biggest = max(biggest, abs(bos))
        return attention_error(self.N, head.gap, 0.0, biggest, empty=head.may_be_empty)

    def _describe_selector(self, sel: Optional[ir.Selector], literals: list[Literal]) -> str:
        if sel is None:
            return "select(all, all)"
        text = sel.source_text
        if text:
            return " ".join(text.split())
        return " and ".join(f"select({l.keys.name}, {l.queries.name}, {getattr(l.source, 'ir_predicate', None) and l.source.ir_predicate.label or '?'})"
                            for l in literals)

    def _literal_terms(self, node: ir.SOp, lit: Literal, need_uniform: bool,
                       allow_shift: bool, gap: float = SCORE_GAP, mean: bool = False,
                       fine: bool = False) -> tuple[list[tuple[Lin, Lin]], bool]:
        """Bilinear score terms for one literal: c where it holds, <= 0 where it does not.

        Table form (one-hot-like functions on either side) when both sides can provide any
        function; otherwise a quadratic form c*(1 - (code_q - code_k)^2 / d^2) for
        equality predicates, which needs only the codes (and their squares).
        """
        q_read = self.plan.readable[lit.queries.id]
        P = lit.matrix
        A, B, _ = factor_matrix(P)
        rank = A.shape[1]
        quad = self._literal_codes(lit, need_uniform, allow_shift, gap, rank)
        if quad is None:
            for side in (lit.queries, lit.keys):
                if self.plan.readable[side.id] == AFFINE and self.plan.kind[side.id] == MAP_VIRTUAL:
                    # tabulate it with an MLP so that it can be read one-hot
                    self.plan.kind[side.id] = MAP_MLP
                    self.plan.readable[side.id] = ANY
                    self.plan.time[side.id] = mlp_slot(self.plan.frontier_time(side))
            # the selected keys of one query may hold different key values (`!=`, `<`), whose
            # computed score features must then agree closely for a mean: the MLPs computing
            # them skip the shortcut of reading a width straight from its head, whose fine
            # 1/(w+1) grid makes their outputs round by ~1e-3 (a mean over
            # select(2 * indices - length, tokens, !=) was wrong from max_seq_len 18)
            # (keys holding the same value but computed from different inputs round apart
            # too: `fine` marks a mean whose values lie so close together that this matters)
            uneven_matters = need_uniform and (mean or self.uniform_width_scores) and \
                bool(np.any(np.asarray(P, dtype=bool).sum(axis=1) > 1))
            terms = []
            for r in range(rank):
                qref = self.request(lit.queries, A[:, r], f"{lit.queries.name}~{r}")
                kref = self.request(lit.keys, gap * B[:, r], f"{lit.keys.name}~{r}")
                terms.append(({qref: 1.0}, {kref: 1.0}))
                if need_uniform and fine and not uneven_matters:
                    self._fine_scores.update((id(qref), id(kref)))
                if uneven_matters:
                    self._uniform_scores.update((id(qref), id(kref)))
                    if fine:
                        self._exact_scores.update({id(qref): node, id(kref): node})
                    if mean:
                        # a mean's are read as integer combinations of integer-valued
                        # features (0/1 patterns times the gap), which float32 sums exactly
                        # (a positional `and select(indices, indices, <=)` read as a
                        # combination of other embedded features made a mean wrong at
                        # max_seq_len 64; a width's decoder tolerates such rounding)
                        self._integral_reads.update((id(qref), id(kref)))
            return terms, False
        qcode, kcode, delta = quad
        s = gap / (delta * delta)
        k_code = self.request(lit.keys, kcode, f"{lit.keys.name}:code")
        k_sq = self.request(lit.keys, kcode ** 2, f"{lit.keys.name}:code^2")
        self._squared.add(lit.keys.id)
        q_code = self.request(lit.queries, qcode, f"{lit.queries.name}:code")
        if q_read == ANY or not allow_shift:
            # the query's own square makes the best score the same for every query, so the
            # BOS fallback works; a numerical query gets it from an MLP
            q_sq = self.request(lit.queries, qcode ** 2, f"{lit.queries.name}:code^2")
            self._squared.add(lit.queries.id)
            return _equality_terms(q_code, q_sq, k_code, k_sq, gap, s), False
        # a selection that is never empty needs no BOS fallback: the per-query offset is harmless
        return _equality_terms(q_code, None, k_code, k_sq, gap, s), True

    def _literal_codes(self, lit: Literal, need_uniform: bool, allow_shift: bool, gap: float,
                       rank: int) -> Optional[tuple[np.ndarray, np.ndarray, float]]:
        """The codes (query, key, smallest gap) of the quadratic form _literal_terms scores
        the literal with, or None for the table form (`rank`: of its predicate matrix)."""
        q_read = self.plan.readable[lit.queries.id]
        k_read = self.plan.readable[lit.keys.id]
        quad = None if {lit.queries.id, lit.keys.id} & self.no_squares else \
            self._quadratic_codes(lit, q_read, k_read, gap)
        exact_sides = (self.plan.kind[lit.queries.id] in (EMBED_POS, EMBED_TOK, CONST) and
                       self.plan.kind[lit.keys.id] in (EMBED_POS, EMBED_TOK, CONST))
        affine_side = q_read == AFFINE or k_read == AFFINE
        use_quad = quad is not None and (affine_side or (rank > 2 and (not need_uniform or exact_sides)))
        if use_quad and not affine_side and any(self.plan.kind[side.id] == WIDTH and
                                                not self._joint_decodes_codes(side, code)
                                                for side, code in ((lit.queries, quad[0]), (lit.keys, quad[1]))):
            # a split width decoded by one MLP gives one-hot features precisely, but not
            # always the large squared codes: the table form keeps the select one layer earlier
            use_quad = False
        if use_quad and need_uniform and affine_side and not exact_sides:
            use_quad = False  # scores from computed numbers are not exact enough for a mean
        if use_quad and q_read == AFFINE and not allow_shift and quad[2] < 0.5:
            # the square of a numerical query with fine-grained values would have to come from
            # an MLP far more precisely than float32 allows: tabulate the query instead
            use_quad = False
        return quad if use_quad else None

    def _quadratic_codes(self, lit: Literal, q_read: str, k_read: str,
                         gap: float = SCORE_GAP) -> Optional[tuple[np.ndarray, np.ndarray, float]]:
        P = lit.matrix
        qvals, kvals = self.values(lit.queries), self.values(lit.keys)
        qn, kn = numbers(qvals), numbers(kvals)
        if qn is not None and kn is not None:
            eq = qn[:, None] == kn[None, :]
            if np.array_equal(eq, P):
                codes = (qn, kn)
            else:
                codes = None
        else:
            codes = None
        if codes is None:
            if q_read == AFFINE or k_read == AFFINE:
                return None
            ec = equality_codes(P)
            if ec is None:
                return None
            codes = (ec[0].astype(np.float64), ec[1].astype(np.float64))
        qc, kc = codes
        diff = np.abs(qc[:, None] - kc[None, :])
        mism = diff[~P]
        if mism.size and mism.min() <= 0:
            return None
        delta = float(mism.min()) if mism.size else 1.0
        # centre the codes (only differences matter): tokens 3000..3003 would square to 9e6,
        # past what float32 holds exactly; refuse the form if even centred codes are too big
        both = np.concatenate([qc, kc])
        mid = float(np.round((both.min() + both.max()) / 2)) if len(both) else 0.0
        qc, kc = qc - mid, kc - mid
        if len(both) and (float(np.max(np.abs(both - mid))) / delta) ** 2 * gap > 2.0 ** 22:
            return None
        return qc, kc, delta

    # ---- MLPs
    def _materialize(self, node: ir.SOp, refs: list[Ref], z_feature: Optional[Feature],
                     flags: Optional[dict[int, Feature]] = None) -> None:
        """Compute non-linear functions of a numerical s-op with an MLP reading its value.

        `flags`: value index -> the feature marking that non-number value (an aggregate's
        None or string default, or a non-number it averages among numbers, see
        _number_mask), which the table reads at a z of its own, above every number.
        """
        vals = self.values(node)
        flags = flags or {}
        flagged = np.zeros(len(vals), dtype=bool)
        flagged[list(flags)] = True
        if any(v is None for v, f in zip(vals, flagged) if not f):
            raise CompileError("cannot compute a non-linear function of a numerical s-op that may be None", node)
        created = self._produce(node, refs)
        outputs = np.stack([f.fn for f in created], axis=1) if created else np.zeros((len(vals), 0))
        if z_feature is None:
            raise CompileError("internal: materialising needs the feature holding the value", node)
        z_lin: Lin = {z_feature: 1.0}
        xs = self._value_coordinate(node)
        for i, f in flags.items():
            z_lin[f] = float(xs[i])
        self._mlp_from_table(node, [], [()] * len(vals), xs, z_lin, outputs, created,
                             z_err=None, label=f"decode {node.name}")

    def _lower_mlp_map(self, node: ir.Map, refs: list[Ref]) -> None:
        """Compute the requested functions of a map with an MLP.

        First try to compute it straight from the s-ops it is built from (fusing every
        intermediate map into this one MLP). If that table cannot be built exactly
        (too many combinations, or no single numeric coordinate works), compute the maps
        under it at a narrow cut in the MLP before (see _staged_cut), else its direct
        inputs in earlier MLPs, and tabulate over those.
        """
        kids = self.graph.children(node)
        fused = self._looked_through(self._mlp_leaves(node))
        # a map whose result changes within the rounding variants merged into the values of
        # maps it reads (`x == 3` over `x = (indices + 1) * 3 * mean - ...`, the paper's
        # Dyck-1 `balance == 0`) is exact only from this table over the s-ops those maps are
        # computed from, which gives each combination its own float64 result; else refused
        # (read from the merged values it had been a wrong model on 739 of 5,455 inputs)
        variant_read = self.inf.variant_reads.get(node.id)
        if not self._fusion_too_wide(fused, kids) and \
                not (variant_read and any(leaf.id in self.inf.fuzzy for leaf in fused)):
            try:
                self._mlp_map_over(node, refs, fused, probe=True)
                return
            except _TableUnfit:
                pass
        if variant_read:
            raise CompileError(variant_read, node)
        below = self._cut_below(node, kids)
        for cut in (self._staged_cut(node, kids), below if self.deeper_cuts else None):
            if cut is not None and self._table_over_cut(node, refs, cut):
                return
        self._waited[node.id] = {k.id for k in kids if isinstance(k, ir.Map)} if below is not None else set()
        self._compute_earlier(node, list(kids))
        for ref in refs:
            ref.own, ref.const = {}, 0.0
        self._mlp_map_over(node, refs, list(kids), probe=False)

    def _deeper_cut_untried(self) -> bool:
        """Whether a map waited for a map input that itself waited for its own inputs' MLPs
        (a chain of MLPs, a layer each), with no table over a deeper cut tried: where its
        map inputs have tables of their own, a deeper cut saves no layer."""
        return not self.deeper_cuts and any(kid in self._waited for kids in self._waited.values() for kid in kids)

    def _table_over_cut(self, node: ir.Map, refs: list[Ref], cut: list[ir.SOp]) -> bool:
        """Tabulate `node` over `cut`, its maps planned as MLPs before; False (the plan as
        it was) where that table does not fit."""
        planned = [(k.id, self.plan.kind.get(k.id), self.plan.readable.get(k.id), self.plan.time[k.id])
                   for k in [node, *cut] if isinstance(k, ir.Map)]
        self._compute_earlier(node, cut)
        try:
            self._mlp_map_over(node, refs, cut, probe=True)
            return True
        except _TableUnfit:
            for nid, kind, readable, time in planned:
                self.plan.kind[nid], self.plan.readable[nid], self.plan.time[nid] = kind, readable, time
            return False

    def _cut_below(self, node: ir.Map, kids: list[ir.Node]) -> Optional[list[ir.SOp]]:
        """The inputs of `node`'s map inputs (its other inputs as they are): where no table
        over the s-ops a chain is built from fits, nor one over a staged cut, `node` over
        its inputs waits for each map input's own MLP, which may itself need the maps under
        it first. Over the inputs' inputs it runs one MLP after those. The paper's Dyck-2
        over exact copies (compiler.rewrite): `delay_closer = depth + closes` with `depth =
        n_opens - n_closes` took an MLP each, a layer each (6 layers), and takes one table
        over n_opens, n_closes and closes (5). Where the map inputs have tables of their own
        over their inputs, it saves nothing and its table can be far wider (Tracr's
        shuffle_dyck2 at 10: d_model 33 -> 157), so it is tried only in a second lowering
        that is kept where it takes fewer layers (Compilation._tables_over_deeper_cuts).
        None where that is no other cut, or where the table would take more combinations
        than a fused one may."""
        cut: dict[int, ir.SOp] = {}
        for k in kids:
            if isinstance(k, ir.Map) and self.plan.kind.get(k.id) in (MAP_VIRTUAL, MAP_MLP):
                cut.update((c.id, c) for c in self.graph.children(k) if isinstance(c, ir.SOp))
            elif isinstance(k, ir.SOp):
                cut[k.id] = k
        if set(cut) == {k.id for k in kids} or self._fusion_width(list(cut.values())) > FUSE_MAX_COMBINATIONS:
            return None
        return list(cut.values())

    def _compute_earlier(self, node: ir.Map, leaves: list[ir.SOp]) -> None:
        """Plan the maps among `leaves` as MLPs of their own, before `node`'s."""
        for k in leaves:
            if isinstance(k, ir.Map) and self.plan.kind.get(k.id) in (MAP_VIRTUAL, MAP_MLP):
                self.plan.kind[k.id] = MAP_MLP
                self.plan.readable[k.id] = ANY
                self.plan.time[k.id] = max(self.plan.time[k.id], 2)
        self.plan.time[node.id] = max(self.plan.time[k.id] for k in leaves) + 2

    def _staged_cut(self, node: ir.Map, kids: list[ir.Node]) -> Optional[list[ir.SOp]]:
        """Where a chain of maps is too wide to fuse: the s-ops to compute it from in one
        more MLP, each map among them fused from its own leaves in the MLP before.

        Going down from `node`, a map whose own leaves take at most STAGE_MAX_COMBINATIONS
        combinations is cut there; a wider one is looked into. So `r = r or (mean_e > 0 and tokens == e)` over
        several e takes two MLPs (each term, then the `or`s of their bools), where cutting
        at the direct inputs took one MLP per `or` (the original RASP's rover.rasp: 37
        layers at max_seq_len 8). None where the cut is the direct inputs, or where the
        table over it would be too wide itself."""
        slot = self.plan.time[node.id]
        cut: dict[int, ir.SOp] = {}

        def descend(y: ir.Node) -> None:
            for k in self.graph.children(y):
                if k.id in cut:
                    continue
                if self._fused_into(k, slot) and self._fusion_width(self._mlp_leaves(k, slot)) > \
                        STAGE_MAX_COMBINATIONS:
                    descend(k)
                else:
                    cut[k.id] = k
        descend(node)
        if set(cut) == {k.id for k in kids} or \
                self._fusion_width(list(cut.values())) > STAGE_MAX_COMBINATIONS:
            return None
        return list(cut.values())

    def _fusion_width(self, leaves: list[ir.SOp]) -> int:
        """At most how many value combinations the leaves take: the product of their
        counts, or, where smaller, the sum over positions of the product of the counts each
        can hold there. (Two prefix means and the position, as in the RASP paper's Dyck
        programs, hold 81 * 81 * 16 combinations in all at max_seq_len 16 but about 1,500
        position by position; the coarse bound split their one MLP into three.)"""
        whole = math.prod(len(self.values(leaf)) for leaf in leaves)
        if whole <= STAGE_MAX_COMBINATIONS:
            return whole
        by_pos = [self.inf.info[leaf.id].by_pos for leaf in leaves]
        per_position = sum(math.prod(len(sets[i]) for sets in by_pos) for i in range(self.N))
        return min(whole, per_position)

    def _fusion_too_wide(self, fused: list[ir.SOp], kids: list[ir.Node]) -> bool:
        """Whether the fused chain's leaves may take far more value combinations than the
        map's direct inputs (bounded by the product of their value counts): see
        FUSE_MAX_COMBINATIONS."""
        if {leaf.id for leaf in fused} == {k.id for k in kids}:
            return False
        wide = self._fusion_width(fused)
        return wide > FUSE_MAX_COMBINATIONS and wide > 16 * self._fusion_width(kids)

    def _mlp_map_over(self, node: ir.Map, refs: list[Ref], leaves: list[ir.SOp], probe: bool) -> None:
        precise = any(id(r) in self._uniform_scores for r in refs)
        fine = not precise and any(id(r) in self._fine_scores for r in refs)
        if precise or fine:
            # exact score features read exact indicators: of the s-ops under virtual maps
            # (an affine `length - indices` would need an MLP of its own to be read one-hot);
            # for keys of one value, only where no copy needs snapping (a layer)
            sources = self._through_virtual(leaves)
            try:
                self._tabulate(node, refs, sources, probe, True, snapped_only=True, snap_copies=precise)
                return
            except (_TableUnfit, CompileError):
                for ref in refs:
                    ref.own, ref.const = {}, 0.0
            mean = next((self._exact_scores[id(r)] for r in refs if id(r) in self._exact_scores), None)
            if mean is not None:
                # (a table from inputs that are not exact indicators rounds its outputs; the
                # selected keys would weigh apart by that, and a mean whose values lie this
                # close together would come out wrong: a mean of a running mean over an `or`
                # keyed on another mean was wrong on 125 of 2,046 inputs)
                raise CompileError(
                    "the attention scores of this mean cannot be computed exactly enough: its selected keys "
                    "hold different key values, and its values lie so close together that the keys must "
                    "weigh the same to float32 precision, which needs their key and query features from "
                    f"exact one-hot inputs (at most {SNAP_GATE_VALUES} values each), but `{node.name}` is "
                    "computed from an average or a finer input", mean,
                    notes=(self._inputs_note(sources),))
        self._tabulate(node, refs, leaves, probe, precise)

    def _looked_through(self, leaves: list[ir.SOp]) -> list[ir.SOp]:
        """The leaves with virtual maps among them replaced by their inputs, where that takes
        fewer value combinations, or reaches a count (a width) the table may read from its
        head. `v3 = indicator(length != 2) + v1` as a leaf beside v1 and length is paired
        with them as if independent, so `v1 if length != 2 else v3` (v1 itself) looked like
        a function of all three (one-hot v1 and length, 291 units) where over v1 and length
        alone it is v1."""
        if not any(isinstance(leaf, ir.Map) and self.plan.kind.get(leaf.id) == MAP_VIRTUAL for leaf in leaves):
            return leaves
        inputs = self._through_virtual(leaves)
        wide = self._fusion_width(inputs)
        if wide < self._fusion_width(leaves):
            return inputs
        # a count under a virtual map (`v1 + length`) is decoded by an MLP before the
        # map exists; read through the map, the table can read the count from its head,
        # in the same layer
        had = {leaf.id for leaf in leaves}
        new_width = any(self.plan.kind.get(leaf.id) == WIDTH and leaf.id not in had for leaf in inputs)
        if not new_width or wide > STAGE_MAX_COMBINATIONS:
            return leaves

        def ready(leaf: ir.SOp) -> int:      # (a width's head output: the time before its decoder's)
            return self.plan.time[leaf.id] - (self.plan.kind.get(leaf.id) == WIDTH)
        before = mlp_slot(max(self.plan.time[leaf.id] for leaf in leaves))
        return inputs if mlp_slot(max(map(ready, inputs), default=0)) < before else leaves

    def _through_virtual(self, leaves: list[ir.SOp]) -> list[ir.SOp]:
        """The leaves with every virtual map replaced by its inputs (constants dropped)."""
        out: dict[int, ir.SOp] = {}

        def add(leaf: ir.SOp) -> None:
            if isinstance(leaf, ir.Constant):
                return
            if isinstance(leaf, ir.Map) and self.plan.kind.get(leaf.id) == MAP_VIRTUAL:
                for kid in self.graph.children(leaf):
                    add(kid)
            else:
                out.setdefault(leaf.id, leaf)
        for leaf in leaves:
            add(leaf)
        return list(out.values())

    def _tabulate(self, node: ir.Map, refs: list[Ref], leaves: list[ir.SOp], probe: bool, precise: bool,
                  snapped_only: bool = False, snap_copies: bool = True) -> None:
        try:
            rows, leaf_cols = self._reachable_tuples(node, leaves)
        except CompileError:
            if probe or snapped_only:
                raise _TableUnfit() from None
            raise
        if probe and not (precise or snapped_only) and rows > SAMPLED_PROBE_ROWS:
            # (fitted to an evenly spread sample of its rows first, a table no harder than
            # the whole: fewer points, none closer together; where nothing fits the sample,
            # the whole is not tried. Tracr's shuffle_dyck2 at max_seq_len 40 has two tables
            # over both balances, 75,113 rows each: refused whole, they took 290 ms; their
            # samples are refused in 70)
            pick = np.linspace(0, rows - 1, PROBE_SAMPLE_ROWS).astype(np.int64)
            self._fit_rows(node, refs, leaves, [col[pick] for col in leaf_cols], probe, precise,
                           snapped_only, snap_copies, dry=True)
        self._fit_rows(node, refs, leaves, leaf_cols, probe, precise, snapped_only, snap_copies)

    def _fit_rows(self, node: ir.Map, refs: list[Ref], leaves: list[ir.SOp], leaf_cols: list[np.ndarray],
                  probe: bool, precise: bool, snapped_only: bool, snap_copies: bool, dry: bool = False) -> None:
        """The table of `node` over these rows of its leaves' values (`dry`: only whether
        one fits; nothing is kept). A table that does not fit leaves the refs as they were."""
        results, valid = self._evaluate_composite(node, leaves, leaf_cols)
        rows_idx = np.nonzero(valid)[0]
        before = [(ref.own, ref.const) for ref in refs]
        created = self._produce(node, refs)
        fitted = False
        try:
            self.find(node, None)          # (makes the node's value index)
            found = self.index[node.id].find_many([results[r] for r in rows_idx.tolist()])
            keep = found >= 0
            if probe and node.id in self.inf.variant_reads and not keep.all():
                # (a result the value list lacks, its variant merged away where the values
                # were inferred: that row would be dropped, and the model wrong there)
                raise _TableUnfit()
            rows_idx = rows_idx[keep]
            positions = found[keep]
            outputs = np.zeros((len(rows_idx), len(created)))
            for j, f in enumerate(created):
                outputs[:, j] = f.fn[positions]
            cols = [col[rows_idx] for col in leaf_cols]
            self._table_over_leaves(node, leaves, cols, outputs, created, probe=probe, precise=precise,
                                    snapped_only=snapped_only, snap_copies=snap_copies, dry=dry)
            fitted = True
        finally:
            if dry or not fitted:       # (undone: the features made, and what the refs read)
                basis = self.node_basis.get(node.id)
                if basis is not None:
                    basis.remove({f.uid for f in created})
                for ref, (own, const) in zip(refs, before):
                    ref.own, ref.const = own, const

    def _mlp_leaves(self, node: ir.Map, slot: Optional[int] = None) -> list[ir.SOp]:
        """The s-ops an MLP at time `slot` (default: the map's own) computes `node` from:
        the maps under it that are fused into that MLP are looked through."""
        slot = self.plan.time[node.id] if slot is None else slot
        leaves: list[ir.SOp] = []
        seen: set[int] = set()

        def walk(y: ir.Node) -> None:
            for k in self.graph.children(y):
                if k.id in seen:
                    continue
                seen.add(k.id)
                if self._fused_into(k, slot):
                    walk(k)
                else:
                    leaves.append(k)
        walk(node)
        return leaves

    def _fused_into(self, k: ir.Node, slot: int) -> bool:
        """Whether the map `k` is computed inside the MLP at time `slot` that reads it."""
        kind = self.plan.kind.get(k.id)
        if not isinstance(k, ir.Map) or kind not in (MAP_VIRTUAL, MAP_MLP):
            return False
        # a unary virtual map (an affine relabelling such as 2 * x) is looked through
        # whenever it was computed: the table reads its input instead, which may be
        # available earlier (a width straight from its head)
        relabel = kind == MAP_VIRTUAL and len(self.graph.children(k)) == 1 and \
            self.plan.kind.get(self.graph.children(k)[0].id) == WIDTH
        return self.plan.time[k.id] >= slot or relabel

    def _reachable_tuples(self, node: ir.Map, leaves: list[ir.SOp]) -> tuple[int, list[np.ndarray]]:
        """The value combinations the leaves can take at one position, as object columns
        (built once per list of leaves, and never written to: shuffle_dyck2's two fused
        tables over both balances, 10,017 combinations each at max_seq_len 20, share them)."""
        key = tuple(leaf.id for leaf in leaves)
        if key not in self._tuple_columns:
            self._tuple_columns[key] = self._tuple_columns_of(node, leaves)
        return self._tuple_columns[key]

    def _tuple_columns_of(self, node: ir.Map, leaves: list[ir.SOp]) -> tuple[int, list[np.ndarray]]:
        rows = self.inf.joint_tuples(leaves)
        if rows is None:
            raise CompileError(f"this elementwise computation depends on {len(leaves)} s-ops "
                               f"({', '.join(l.name for l in leaves)}) with more than {MAX_TUPLES} value "
                               "combinations; the compiler cannot tabulate it exactly", node)
        if not any(isinstance(v, (list, tuple)) for l in leaves for v in self.values(l)):
            table = np.empty((len(rows), len(leaves)), dtype=object)
            table[:] = rows if rows else table
            return len(rows), [table[:, j].copy() for j in range(len(leaves))]
        cols = []
        for j in range(len(leaves)):
            col = np.empty(len(rows), dtype=object)
            for r, combo in enumerate(rows):
                col[r] = combo[j]      # element by element: values may themselves be tuples
            cols.append(col)
        return len(rows), cols

    def _evaluate_composite(self, node: ir.Map, leaves: list[ir.SOp], cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The map's value for every reachable combination of its leaves' values."""
        n = len(cols[0]) if cols else 1
        values: dict[int, np.ndarray] = {l.id: c for l, c in zip(leaves, cols)}
        valid = np.ones(n, dtype=bool)

        def ev(y: ir.Node) -> np.ndarray:
            if y.id in values:
                return values[y.id]
            if isinstance(y, ir.Constant):
                arr = np.empty(n, dtype=object)
                arr[:] = [y.value] * n
                values[y.id] = arr
                return arr
            if not isinstance(y, ir.Map):
                raise CompileError("internal: non-map inside an MLP expression", y)
            args = [ev(k) for k in self.graph.children(y)]
            codes, uniques = [], []
            for a in args:
                c, u = factorize(a)
                codes.append(c)
                uniques.append(u)
            if args:
                dims = tuple(max(1, len(u)) for u in uniques)
                combined = np.ravel_multi_index(tuple(codes), dims) if len(args) > 1 else codes[0]
            else:
                combined = np.zeros(n, dtype=np.int64)
            keys, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
            results, bad = _apply_to_combinations(y.fn, uniques, [c[first] for c in codes])
            table = np.empty(len(results), dtype=object)
            for slot, r in enumerate(results):     # (element by element: results may be tuples)
                table[slot] = r
            out = table[inverse.reshape(-1)]
            valid[bad[inverse.reshape(-1)]] = False
            values[y.id] = out
            return out

        return ev(node), valid

    def _table_over_leaves(self, node: ir.SOp, leaves: list[ir.SOp], cols: list[np.ndarray],
                           outputs: np.ndarray, created: list[Feature], probe: bool = False,
                           precise: bool = False, snapped_only: bool = False, snap_copies: bool = True,
                           dry: bool = False) -> None:
        """Choose how the MLP reads its inputs, then build the table.

        Preferred: one coordinate z = sum of lam_j * x_j over all inputs, where x_j is the
        value of a numerical input or the integer code (rank) of any other input; codes
        cost one residual direction each. If that cannot be exact in float32, inputs
        that can be read one-hot become gates instead. `precise`: the outputs are score
        features of a mean whose selected keys hold different key values (no width is
        read straight from its head, and the table rounds by at most SCORE_PRECISION of
        their size); they are first tried from exact one-hot inputs (`_snapped_table`), with
        `snapped_only` nothing else.
        """
        n = len(cols[0]) if cols else 1
        if not created:
            return
        codes = [_codes(c) for c in cols]
        active = list(range(len(leaves)))
        # drop inputs the outputs do not depend on (functional dependence on the others;
        # asked of the outputs' row codes, which answer alike)
        # (the outputs' distinct rows, found once for the codes and every attempt below)
        distinct_rows = functools.cache(lambda: output_rows(outputs, from_size=0))
        output_codes = _output_row_codes(outputs, distinct_rows) if len(leaves) > 1 else outputs
        for j in sorted(range(len(leaves)), key=lambda j: -len(set(codes[j].tolist()))):
            rest = [a for a in active if a != j]
            if _is_function_of([codes[a] for a in rest], output_codes):
                active = rest
        affine = [j for j in active if self.plan.readable[leaves[j].id] == AFFINE]
        anyread = [j for j in active if j not in affine]
        numeric = [j for j in active if _all_numbers(cols[j])]
        # widths read straight from their head (x = 1/(w+1)), so that the table runs in the
        # same layer as the heads instead of one MLP after the widths' decoders
        head_read = {j for j in active if self.plan.kind.get(leaves[j].id) == WIDTH
                     and (len(self._width_parts(leaves[j])) == 1 or self._joint_width_plan(leaves[j]) is not None)
                     } if not precise else set()
        if precise and self._snapped_table(node, leaves, active, cols, codes, outputs, created, snap_copies):
            return
        if snapped_only:
            raise _TableUnfit()
        if head_read:
            # worth it only if the other inputs exist before the widths' decoders run
            decoded_at = min(self.plan.time[leaves[j].id] for j in head_read)
            if any(self.plan.time[leaves[j].id] >= decoded_at for j in active if j not in head_read):
                head_read = set()
        tried: set[tuple] = set()
        readout_only = self._read_by_readout_only(node)
        # per-gate tables of an attempt whose single table failed: a later attempt in the
        # same layer may take fewer units; taken before any attempt a layer later (decoded
        # inputs after widths read from their heads, the last resort's one-hot means)
        pending: Optional[_PerGate] = None
        for attempt in ("heads", "heads_gates", "values", "codes", "gates", "mean_gates"):
            if pending is not None and pending.from_heads and attempt not in ("heads", "heads_gates"):
                break
            if attempt == "heads":
                if not head_read:
                    continue
                gates = []
                coord = list(active)
                by_value = set(affine) - head_read
            elif attempt == "heads_gates":
                # widths from their heads, the other inputs with few values as gates
                # (`w if tokens == "a" else length`: two heads and a token in one MLP)
                gates = [j for j in anyread if j not in head_read and len(np.unique(codes[j])) <= MAX_GATE_VALUES]
                if not head_read or not gates:
                    continue
                coord = [j for j in active if j not in gates]
                by_value = set(affine) - head_read
            elif attempt == "values":
                # numbers by value (small integer combinations like a - b + c may make the
                # outputs a function of one coordinate), anything else by its code
                if len(numeric) < 2:
                    continue
                gates = []
                coord = numeric + [j for j in active if j not in numeric]
                by_value = set(numeric)
            elif attempt == "codes":
                gates: list[int] = []
                coord = affine + anyread
                by_value = set(affine)
            elif attempt == "gates":
                # inputs with few values become one-hot gates; the rest stay coordinates
                gates = [j for j in anyread if len(np.unique(codes[j])) <= MAX_GATE_VALUES]
                if not gates:
                    continue
                coord = list(affine) + [j for j in anyread if j not in gates]
                by_value = set(affine)
            else:
                # last resort (not while probing whether to fuse maps): numerical means with
                # few values become gates too; their one-hot features cost an MLP (a layer)
                # after the head that averages
                gates = [j for j in active if len(np.unique(codes[j])) <= MAX_GATE_VALUES]
                if probe or pending is not None or not any(j in affine for j in gates):
                    break
                coord = [j for j in active if j not in gates]
                by_value = set(affine) - set(gates)
            from_heads = attempt in ("heads", "heads_gates")
            signature = (tuple(coord), frozenset(by_value), tuple(gates), from_heads)
            if signature in tried:
                # (the table of an earlier attempt again: where every number is affine, "codes"
                # reads what "values" read, and a refused fused table was built twice)
                continue
            tried.add(signature)
            rows = None         # (a two-head width read from its heads: one table row per split)
            joint = [j for j in coord if j in head_read and len(self._width_parts(leaves[j])) == 2] \
                if from_heads else []
            if len(joint) > 1:
                continue
            if joint:
                rows, points = self._joint_width_rows(leaves[joint[0]], cols[joint[0]])
                if rows is None:
                    continue
            t_cols = cols if rows is None else [c[rows] for c in cols]
            t_codes = codes if rows is None else [c[rows] for c in codes]
            t_outputs = outputs if rows is None else outputs[rows]
            xs, x_refs, x_errs = [], [], []
            for j in coord:
                if j in joint:
                    lam_w, z_w, _, z_err_w, _ = self._joint_width_plan(leaves[j])
                    xs.append(z_w[points])
                    x_refs.append(lambda j=j, lam_w=lam_w: dict(zip(self._width_x_features(leaves[j]), (1.0, lam_w))))
                    x_errs.append(z_err_w)
                    continue
                if from_heads and j in head_read:
                    xs.append(_width_x(np.array([float(v) for v in t_cols[j]])))
                    x_refs.append(lambda j=j: self._width_x_features(leaves[j])[0])
                    x_errs.append(self._width_x_error())
                    continue
                if j in by_value:
                    xs.append(self._coordinates(leaves[j], t_cols[j]))
                    x_refs.append(lambda j=j: self.request(leaves[j], self._value_coordinate(leaves[j]),
                                                           leaves[j].name))
                else:
                    xs.append(t_codes[j].astype(np.float64))
                    x_refs.append(lambda j=j: self._code_ref(leaves[j], cols[j], codes[j]))
                x_errs.append(self._leaf_error_estimate(leaves[j], coded=j not in by_value))
            combos = list(zip(*(t_cols[g] for g in gates))) if gates else [()] * len(t_outputs)
            n_aff = sum(1 for j in coord if j in by_value)
            if from_heads and len(xs) == 2:
                lam = _separating_projection(xs, t_outputs, groups=_combo_codes(combos) if gates else None)
                lams = [lam] if lam is not None else []
            else:
                # (the outputs' row codes, found above, where these are the same outputs)
                lams = self._projections(xs, n_aff, combos, t_outputs,
                                         row_codes=output_codes if rows is None and len(leaves) > 1 else None) \
                    if len(xs) > 1 else [[1.0] * len(xs)]
            plan = None
            if not lams:
                out_rows = None
            elif rows is None:          # (output_rows(outputs): the same rows, from ROWS_FROM entries)
                out_rows = distinct_rows() if outputs.size >= ROWS_FROM else None
            else:
                out_rows = output_rows(t_outputs)
            # (gates whose indicators are exact, from embeddings, or copied from them by a
            # head, may gate interpolating units, which pass a gate's error on: see
            # compiler.bounds and _copied_gate_error)
            gate_error = self._gate_error(leaves, gates)
            for lam in lams[:PROJECTION_TRIES]:
                z = canonical(sum(l * x for l, x in zip(lam, xs))) if xs else np.zeros(n)
                err = sum(abs(l) * e for l, e in zip(lam, x_errs))
                plan = exact_table(combos, z, t_outputs, len(gates), err, low_error=self.low_error,
                                   precision=SCORE_PRECISION if precise else None, rows=out_rows,
                                   gated_interpolation=gate_error, readout_only=readout_only)
                if plan is not None:
                    break
            split = None
            if not joint and xs and (plan is None or len(plan.units) > PER_GATE_MIN_UNITS):
                # one coordinate per gate combination: of these gates, or where the table has
                # none, of the coordinates that could be gates (codes with few values)
                if gates:
                    gate_leaves, kept = [leaves[g] for g in gates], list(range(len(xs)))
                    gate_combos = combos
                else:
                    as_gates = [i for i, j in enumerate(coord) if j in anyread and j not in by_value
                                and not (from_heads and j in head_read)
                                and len(np.unique(t_codes[j])) <= MAX_GATE_VALUES]
                    gate_leaves = [leaves[coord[i]] for i in as_gates]
                    kept = [i for i in range(len(xs)) if i not in as_gates]
                    gate_combos = list(zip(*(t_cols[coord[i]] for i in as_gates))) if as_gates else []
                if gate_leaves and len(kept) > 1:     # (one coordinate: the single gated table)
                    parts = self._per_gate_parts([xs[i] for i in kept], [x_errs[i] for i in kept],
                                                 sum(1 for i in kept if i < n_aff), gate_combos, t_outputs,
                                                 len(gate_leaves), precise, from_heads)
                    if parts is not None:
                        split = _PerGate(gate_leaves, parts, [x_refs[i] for i in kept], from_heads, not gates)
            if plan is None:
                if split is not None and (pending is None or split.units < pending.units):
                    pending = split
                continue
            if dry:
                return      # (a table fits; see _tabulate)
            if split is not None and split.beats(len(plan.units)):
                self._build_per_gate(node, split, created)
                return
            if pending is not None and pending.units < len(plan.units):
                self._build_per_gate(node, pending, created)
                return
            z_lin = _coordinate_lin(lam, x_refs, {}, zeros_too=True)
            self._joint_heads_read.update(leaves[j].id for j in joint)
            gate_leaves = [leaves[g] for g in gates]
            self._mlp_from_table(node, gate_leaves, combos, z, z_lin, t_outputs, created, z_err=err,
                                 label=f"compute {node.name}", plan=plan)
            return
        if pending is not None:
            if not dry:
                self._build_per_gate(node, pending, created)
            return
        if probe:
            if node.id in self._squared and node.id not in self.no_squares:
                self._squares_blocking_fusion.add(node.id)
            raise _TableUnfit()
        if node.id in self._squared and node.id not in self.no_squares:
            raise SquareUnfit("its squared code for an equality head cannot be tabulated exactly in float32", node)
        if len(active) == 1:
            sources = self.inf.sources(leaves[active[0]])
            name = sources[0].name if len(sources) == 1 else leaves[active[0]].name
            raise TableRefused(f"no MLP can tabulate this function of `{name}` exactly in float32: its inputs "
                               "or outputs lie too close together for float32 rounding (use a smaller "
                               "vocabulary or max_seq_len)", node, notes=(self._inputs_note([leaves[active[0]]]),))
        integral = all(isinstance(v, (int, float)) and float(v).is_integer() for v in self.values(node))
        hint = ("; its values are whole numbers: round(...) it, so that the table only steps where the "
                "result changes by 1" if integral and not _is_round(node) else "")
        raise TableRefused("this elementwise computation depends on several s-ops in a way no single MLP "
                           "can tabulate exactly in float32 (use a smaller vocabulary or max_seq_len"
                           f"{hint})", node, notes=(self._inputs_note([leaves[j] for j in active]),))

    def _inputs_note(self, inputs: list[ir.SOp]) -> str:
        """What a refused table read: each input with its number of values (an aggregate
        the compiler cannot show selects one key takes every mean of the values it may
        select, which is usually why such a table is too fine for float32)."""
        parts = [f"{expression_label(leaf)} ({len(self.values(leaf))} values)" for leaf in inputs]
        return ("  its inputs: " if len(parts) > 1 else "  its input: ") + ", ".join(parts)

    def _snapped_table(self, node: ir.SOp, leaves: list[ir.SOp], active: list[int], cols: list[np.ndarray],
                       codes: list[np.ndarray], outputs: np.ndarray, created: list[Feature],
                       snap_copies: bool = True) -> bool:
        """Score features of a mean whose selected keys hold different key values, computed
        exactly: one AND unit per combination of the inputs' one-hot indicators, which are
        exact (embedded, a copy's, or rounded by a snap head), so each output is one unit's
        weight. Scores from MLP outputs that round by ~1e-6 of their size made such means
        wrong from max_seq_len 32 (the mean's values lie 1/1000 apart)."""
        if not active or any(len(np.unique(codes[j])) > SNAP_GATE_VALUES for j in active):
            return False
        snapped = SNAPPED_INDICATORS if snap_copies else tuple(k for k in SNAPPED_INDICATORS if k != ATTN_COPY)
        if not all(self._exact_indicators(leaves[j]) or self.plan.kind[leaves[j].id] in snapped for j in active):
            return False
        n = len(cols[0])
        combos = list(zip(*(cols[j] for j in active)))
        if len(set(combos)) > SNAP_MAX_UNITS:
            return False
        z = np.zeros(n)
        plan = exact_table(combos, z, outputs, len(active), 0.0, precision=SCORE_PRECISION)
        if plan is None:
            return False
        self._mlp_from_table(node, [leaves[j] for j in active], combos, z, {}, outputs, created, z_err=0.0,
                             label=f"compute {node.name}", plan=plan, snap=True)
        return True

    def _exact_indicator(self, leaf: ir.SOp, value: Any) -> "Ref | Feature":
        """The indicator of `leaf == value`, exact in float32: an embedded one or a copy's
        as it is, an MLP's output (off by its rounding) through the leaf's snap head."""
        key = (leaf.id, self.find(leaf, value))
        f = self._snapped.get(key)
        if f is None:
            ref = self.indicator(leaf, value)
            self._integral_reads.add(id(ref))
            if self._exact_indicators(leaf):
                return ref
            self._snap_inputs.add(id(ref))
            f = Feature(f"{leaf.name}={value!r}:snapped", sop_id=leaf.id, fn=ref.vec.copy(), kind="onehot",
                        value=value)
            head = self._snap_heads.get(leaf.id)
            if head is None:
                head = HeadBlock(leaf, None, self._self_match_terms(), -2 * SCORE_GAP, [], False,
                                 f"snap {leaf.name}", f"select(indices, indices, ==) rounding {leaf.name}'s "
                                 "indicators", uniform=False, snap=True)
                self._snap_heads[leaf.id] = head
                self.heads.append(head)
            head.values.append((f, {ref: 1.0}, 0.0))
            self.err[f.uid] = 0.0
            self._snapped[key] = f
        return f

    def _gate_error(self, leaves: list[ir.SOp], gates: list[int]) -> Optional[float]:
        """How far the gates' indicators may be off, for a gated interpolating table: 0 for
        embedded ones, a copy head's rounding (_copied_gate_error) where some are copies of
        those; None where any other gate (an MLP's output, a mean) may be further off than
        a table lowered before it can know."""
        if not gates or not all(self._exact_indicators(leaves[g]) for g in gates):
            return None
        return 0.0 if all(self._exact_indicators(leaves[g], copies=False) for g in gates) else \
            self._copied_gate_error()

    def _copied_gate_error(self) -> float:
        """An estimate of the error of an indicator that a head copies from one key of exact
        0/1 values (its head is lowered after this table): twice compiler.bounds' softmax
        rounding, 2 * (8 + 2 (n + 1)) eps, where the leak of keys a score gap of 30 below
        is below 1e-11 (`x * copy_of_token`: 3.0e-6 at max_seq_len 10, proven at 1.5e-6)."""
        return 4 * (8 + 2 * (self.N + 1)) * EPS32

    def _exact_indicators(self, node: ir.SOp, copies: bool = True) -> bool:
        """Whether the node's indicators are exact enough to gate on as they are: embedded
        ones, or (with `copies`) a copy of such a node (through virtual maps) from a select
        that picks at most one key. A copy of an MLP's output copies its rounding."""
        kind = self.plan.kind[node.id]
        if kind in (CONST, EMBED_POS, EMBED_TOK):
            return True
        if kind == MAP_VIRTUAL:
            return all(self._exact_indicators(k, copies) for k in self.graph.children(node) if isinstance(k, ir.SOp))
        if kind == ATTN_COPY and copies:
            # (one selected key: several with the same value weigh 1/k each, whose float32
            # sum is not exactly 1; a mean over equal tokens, so copied, was wrong at
            # max_seq_len 64)
            sel, src = self.graph.children(node)
            return self.inf.sel[sel.id].at_most_one and self._exact_indicators(src)
        return False

    def _self_match_terms(self) -> list[tuple[Lin, Lin]]:
        """Score terms gap - gap * (i_q - i_k)^2 over position codes i (exact integers in
        the embedding): every position selects itself, its neighbours score 0 or less."""
        if self._position_terms is None:
            pos = next((n for n in self.graph.nodes() if isinstance(n, ir.Indices)
                        and self.plan.kind.get(n.id) == EMBED_POS and n.id not in self._done), None)
            if pos is not None:         # (the program's own indices: inspection decodes them)
                ident = self._identity_fn(pos)
                self._position_terms = (self.request(pos, ident, pos.name),
                                        self.request(pos, ident * ident, f"{pos.name}^2"))
            else:
                i = np.arange(self.N, dtype=np.float64)
                self._position_terms = tuple(self._position_feature(vec, name)
                                             for vec, name in ((i, "position"), (i * i, "position^2")))
        code, square = self._position_terms
        return _equality_terms(code, square, code, square, SCORE_GAP, SCORE_GAP)

    def _position_feature(self, vec: np.ndarray, name: str) -> Feature:
        f = Feature(name, kind="aux")
        self.embed.append(EmbedFeature(f, "position", vec))
        self.err[f.uid] = 0.0
        return f

    def _code_ref(self, leaf: ir.SOp, col: np.ndarray, code: np.ndarray) -> Ref:
        """A ref holding the rank of the leaf's value among those in `col` (0, 1, 2, ...)."""
        uniq = {}
        for v, c in zip(col, code):
            uniq.setdefault(int(c), v)
        vec = np.zeros(len(self.values(leaf)))
        for c, v in uniq.items():
            i = self.find(leaf, v)
            if i is not None:
                vec[i] = float(c)
        return self.request(leaf, vec, f"{leaf.name}:code")

    def _leaf_error_estimate(self, leaf: ir.SOp, coded: bool = False) -> float:
        kind = self.plan.kind[leaf.id]
        if kind == MAP_VIRTUAL and not coded:
            relabel = self._relabel_error_estimate(leaf)
            if relabel is not None:
                return relabel
        vals = numbers(v for v in self.values(leaf) if v is not None)
        scale = float(np.max(np.abs(vals), initial=1.0)) if vals is not None and not coded else \
            float(max(1, len(self.values(leaf))))
        if kind in (CONST, EMBED_POS, EMBED_TOK):
            return EPS32 * scale
        if kind == ATTN_COPY or kind == ATTN_MEAN:
            return scale * ((self.N + 1) * math.exp(-SCORE_GAP) + math.exp(-SCORE_GAP / 2) + 16 * EPS32)
        return 1e-4 * max(1.0, scale)  # MLP outputs: bounded by the table checks upstream

    def _relabel_error_estimate(self, leaf: ir.SOp) -> Optional[float]:
        """A virtual map that is an affine function a*x + b of one source s-op x (such as
        `0 if m == "none" else m`, or 2 * m) is off by |a| times x's error, not by the
        1e-4 * scale assumed of anything an MLP computes."""
        sources = self.inf.sources(leaf)
        if len(sources) != 1 or sources[0] is leaf or not isinstance(sources[0], ir.SOp):
            return None
        rows = self.inf.joint_tuples([leaf, sources[0]])
        if not rows or not all(is_number(y) and is_number(x) for y, x in rows):
            return None
        ys, xs = (np.array(c, dtype=np.float64) for c in zip(*rows))
        fit = affine_fit(xs, ys)
        if fit is None:
            return None
        return abs(fit[0]) * self._leaf_error_estimate(sources[0])

    def _projections(self, xs: list[np.ndarray], n_affine: int, combos: list[tuple],
                     outputs: np.ndarray, row_codes: Optional[np.ndarray] = None) -> list[list[float]]:
        """Coefficient vectors lam making the outputs a function of (gates, sum_j lam_j * x_j),
        best first: fewest distinct points, then fewest output changes along z (a step
        table's units).

        Small +-1 combinations of the numerical inputs are tried (e.g. a - b when only the
        difference matters), and injective combinations: each further input scaled past the
        range of the previous ones, in every order of the inputs (up to 4) where no small
        combination merges points. The order matters: `w if c else 0` over w = 0..48 is one
        ramp along z = w + 49 c (48 steps of +1), but 96 alternating jumps along z = c + 2 w,
        whose step units rounded past the output's margin, so that the table fell back to 49
        one-hot features of w (d_model 55 instead of 8). `row_codes`: _output_row_codes of
        the outputs, where the caller has them.
        """
        k = len(xs)
        candidates = []
        if 1 < n_affine <= 4:
            coefs = [1.0, -1.0, 2.0, -2.0] if n_affine <= 3 else [1.0, -1.0]
            for c in itertools.product(coefs, repeat=n_affine):
                if c[0] in (1.0, 2.0) and not (c[0] == 2.0 and all(abs(x) == 2.0 for x in c)):
                    candidates.append(list(c))
        gaps: dict[int, float] = {}
        identity = _injective_combination(xs, tuple(range(k)), gaps)
        # the gate combination of each point as an integer code, once for all candidates
        combo_code = _combo_codes(combos)
        codes = combo_code if len(combo_code) > 0 and bool(np.any(combo_code != combo_code[0])) else None
        fewest_changes = outputs        # (kept as it was: a projection that may undercount)
        outputs = _output_row_codes(outputs) if row_codes is None else row_codes
        scored: list[tuple[int, list[float]]] = []
        seen: set[tuple] = set()

        def score(cands: list[list[float]]) -> None:
            fresh = []
            for cand in cands:
                if len(cand) < k:
                    cand = cand + identity[len(cand):] if len(cand) == n_affine and n_affine < k else cand
                if len(cand) == k and tuple(cand) not in seen:
                    seen.add(tuple(cand))
                    fresh.append(cand)
            for cand, steps in zip(fresh, _steps_many(_combinations(fresh, xs), codes, outputs)):
                if steps is not None:
                    scored.append((steps, cand))
        score(candidates + [identity])
        fewest = min((steps for steps, _ in scored), default=None)
        if k <= 4 and any(c == identity for _, c in scored) and \
                fewest == next(steps for steps, c in scored if c == identity) and \
                (k == 2 or _output_changes(sum(l * x for l, x in zip(identity, xs)), codes, outputs) >
                 _fewest_changes(codes, fewest_changes)):
            # (no small combination merges points, and the outputs change more often along
            # this order than they must: the other orders are worth comparing)
            score([_injective_combination(xs, order, gaps) for order in itertools.permutations(range(k))
                   if order != tuple(range(k))])
        if not scored:
            return []
        fewest = min(steps for steps, _ in scored)
        best = [c for steps, c in scored if steps == fewest]
        if len(best) > 1:
            changes = [_output_changes(sum(l * x for l, x in zip(c, xs)), codes, outputs) for c in best]
            best = [best[i] for i in sorted(range(len(best)), key=lambda i: (changes[i], i))]
        rest = sorted((r for r in scored if r[0] != fewest), key=lambda r: r[0])
        return best + [c for _, c in rest]

    def _build_per_gate(self, node: ir.SOp, split: "_PerGate", created: list[Feature]) -> None:
        """The per-gate tables (_per_gate_parts) as one MLP, requesting the coordinates they read."""
        made: dict[int, Any] = {}       # (a coordinate read by several tables is requested once)
        for part in split.parts:
            part.z_lin = _coordinate_lin(part.lam, split.x_refs, made)
        self._mlp_from_tables(node, split.gate_leaves, split.parts, created, f"compute {node.name}")
        self._head_pair_tables |= split.from_heads and any(sum(1 for l in p.lam if l) > 1 for p in split.parts)

    def _per_gate_parts(self, xs: list[np.ndarray], x_errs: list[float], n_aff: int, combos: list[tuple],
                        outputs: np.ndarray, n_gates: int, precise: bool, from_heads: bool
                        ) -> Optional[list["_TablePart"]]:
        """One gated table per combination of the gates, each along its own coordinate, or
        None unless every one is exact within the whole table's output tolerance (one is on
        at any point, so their errors do not add up). `a if c else b` over two counts then
        steps once per value of a where c holds and once per value of b elsewhere: along one
        coordinate z = a + K b for both, it stepped once per pair (574 units at max_seq_len
        16), and past float32's precision the counts were decoded first, a layer more.
        Each table's gated units must stay off wherever its gates do not all match, so its
        activations are sized for the range its z takes over every point (`z_span`)."""
        codes = _combo_codes(combos)
        first_rows = np.unique(codes, return_index=True)[1]
        if len(first_rows) > MAX_PER_GATE_TABLES:
            return None
        # (the whole table's; exact_table tightens it to a precise part's own precision)
        tolerance = output_tolerance(outputs)
        x_codes = [np.unique(x, return_inverse=True)[1].reshape(-1) for x in xs]
        parts: list[_TablePart] = []
        for c in codes[np.sort(first_rows)].tolist():
            rows = np.flatnonzero(codes == c)
            sub_out = outputs[rows]
            # the coordinates this combination's outputs depend on
            keep = list(range(len(xs)))
            for j in sorted(keep, key=lambda j: -len(np.unique(x_codes[j][rows]))):
                rest = [a for a in keep if a != j]
                if _is_function_of([x_codes[a][rows] for a in rest], sub_out):
                    keep = rest
            sub = [xs[j][rows] for j in keep]
            if len(keep) <= 1:
                lams = [[1.0] * len(keep)]
            elif from_heads:
                # (two counts read from their heads along one projection: the heads' error
                # times the projection can pass this estimate but not the proof's bound;
                # the pipeline then lowers without such tables: see head_pair_tables)
                lam = _separating_projection(sub, sub_out) if len(keep) == 2 and self.head_pairs else None
                lams = [lam] if lam is not None else []
            else:
                lams = self._projections(sub, sum(1 for j in keep if j < n_aff), [()] * len(rows), sub_out)
            part_combos = [combos[r] for r in rows.tolist()]
            part = None
            out_rows = output_rows(sub_out) if lams else None
            for lam in lams[:PROJECTION_TRIES]:
                full = [0.0] * len(xs)
                for j, l in zip(keep, lam):
                    full[j] = float(l)
                z_all = canonical(sum(l * x for l, x in zip(full, xs)))
                z = z_all[rows]
                err = sum(abs(l) * e for l, e in zip(full, x_errs))
                plan = exact_table(part_combos, z, sub_out, n_gates, err,
                                   precision=SCORE_PRECISION if precise else None,
                                   z_span=(float(z_all.min()), float(z_all.max())), tolerance=tolerance,
                                   rows=out_rows)
                if plan is not None:
                    part = _TablePart(part_combos, z, {}, plan, err, full)
                    break
            if part is None:
                return None
            parts.append(part)
        return parts

    def _mlp_from_table(self, node: ir.SOp, gate_leaves: list[ir.SOp], combos: list[tuple], z: np.ndarray,
                        z_lin: Lin, outputs: np.ndarray, created: list[Feature], z_err: Optional[float],
                        label: str, plan: Optional[TablePlan] = None, snap: bool = False) -> None:
        """`snap`: read every gate's indicator exactly (see _exact_indicator)."""
        if plan is None:
            plan = build_table(combos, z, outputs, len(gate_leaves))
        self._mlp_from_tables(node, gate_leaves, [_TablePart(combos, z, z_lin, plan, z_err)], created, label, snap)

    def _mlp_from_tables(self, node: ir.SOp, gate_leaves: list[ir.SOp], parts: list["_TablePart"],
                         created: list[Feature], label: str, snap: bool = False,
                         one_part_on: bool = True) -> None:
        """One MLP adding up tables over the same gates, each with its own z coordinate.
        `one_part_on`: the per-gate tables of _per_gate_parts, of which one is on at any
        point (their rounding errors do not add up: see TableBound.exclusive); otherwise
        every part is on and their errors add (a width summed over disjoint heads)."""
        exclusive = 0 if len(parts) > 1 and one_part_on else None
        gate_refs: dict[tuple[int, Any], "Ref | Feature"] = {}
        indicator = self._exact_indicator if snap else self.indicator
        # (first-use order, not a set's: a set of string keys made the weights depend on
        # PYTHONHASHSEED)
        part_keys = [list(dict.fromkeys(key for u in part.plan.units for key in u.gates)) for part in parts]
        for keys in part_keys:
            for (g, v) in keys:
                if (g, v) not in gate_refs:
                    gate_refs[(g, v)] = indicator(gate_leaves[g], v)
        units: list[MLPUnitSpec] = []
        weights: list[dict[int, float]] = [{} for _ in created]
        biases = np.zeros(len(created))
        out_err = np.zeros(len(created))
        bounds: list[TableBound] = []
        for part, keys in zip(parts, part_keys):
            plan, offset = part.plan, len(units)
            for u in plan.units:
                pre: Lin = {}
                for term, coef in part.z_lin.items():
                    if u.z:
                        pre[term] = pre.get(term, 0.0) + u.z * coef
                for key, coef in u.gates.items():
                    ref = gate_refs[key]
                    pre[ref] = pre.get(ref, 0.0) + coef
                units.append(MLPUnitSpec(pre, u.bias))
            for j in range(len(created)):
                for u, w in plan.out_weights[j].items():
                    weights[j][offset + u] = w
            biases += plan.out_bias
            exact_and = and_rounding(plan) if snap else None
            rounding = rounding_error(plan, part.combos, part.z, len(gate_leaves)) if exact_and is None else exact_and
            own = rounding if plan.z_gain is None else rounding + plan.z_gain * (part.z_err or 0.0)
            out_err = out_err + own if exclusive is None else np.maximum(out_err, own)
            gates: dict[int, list[Lin]] = defaultdict(list)   # per gate: its one-hot reads
            for (g, v) in keys:
                gates[g].append({gate_refs[(g, v)]: 1.0})
            gate_gain, gated, and_gain = plan.gate_gains()
            gated_z_gain = gated if plan.z_gain is not None and gate_gain else None
            bounds.append(TableBound(part.z_lin, plan.z_tolerance, plan.min_half_gap, plan.max_preactivation,
                                     list(gates.values()), gate_gain, and_gain, rounding, plan.z_gain, label,
                                     part.z_err or 0.0, plan.step_z, plan.step_half, exclusive, gated_z_gain,
                                     None if exact_and is not None else (plan, part.combos, part.z)))
        for f, e in zip(created, out_err):      # (estimates: compiler.bounds recomputes them)
            self.err[f.uid] = float(e)
        outs = [(f, weights[j], float(biases[j])) for j, f in enumerate(created)]
        self.mlps.append(MLPBlock(node, units, outs, label, bounds))

    def _mlp_sum_of_tables(self, node: ir.SOp, parts: list, f_out: Feature, label: str) -> None:
        """One MLP writing the sum of tables, each over its own input feature and all on at
        once (a width summed over disjoint heads: `parts` = (z, input feature, outputs))."""
        tables = [_TablePart([()] * len(z), z, {f_x: 1.0}, build_table([()] * len(z), z, outputs, 0),
                             self._width_x_error()) for z, f_x, outputs in parts]
        self._mlp_from_tables(node, [], tables, [f_out], label, one_part_on=False)
        self.err[f_out.uid] = 1e-4          # (an estimate: compiler.bounds recomputes it)


def _width_x(widths: np.ndarray, boost: float = 0.0) -> np.ndarray:
    """What a width head writes for each width: 1/(1+w) (BOS holds 1), or where BOS weighs
    c = e^boost keys, w/(c+w) (the keys hold 1)."""
    if not boost:
        return 1.0 / (1.0 + widths)
    c = math.exp(boost)
    return widths / (c + widths)


def _separating_projection(xs: list[np.ndarray], outputs: np.ndarray,
                           lams: Optional[np.ndarray] = None,
                           groups: Optional[np.ndarray] = None) -> Optional[list[float]]:
    """[1, lam] making z = x0 + lam * x1 keep points with different outputs furthest apart
    (relative to 1 + |lam|, which scales the input error), or None if none separates them.
    `lams`: the candidates (default: +-0.01..100, geometrically spaced). `groups`: each
    point's gate combination, where only points of one combination must lie apart."""
    x0, x1 = (np.asarray(x, dtype=np.float64) for x in xs)
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:     # (one column: numpy's row unique is slow)
        outputs = outputs[:, 0]
    _, out_code = np.unique(outputs, axis=0 if outputs.ndim == 2 else None, return_inverse=True)
    out_code = out_code.reshape(-1)
    if lams is None:
        lams = np.concatenate([np.geomspace(0.01, 100.0, 300), -np.geomspace(0.01, 100.0, 300)])
    if len(x0) < 2:
        return [1.0, 0.0]
    # (a few candidates at a time: their sorts' temporaries stay in cache; long addition's
    # carry table at max_seq_len 32, 17,424 points, took 1.8 s for all 600 at once, 0.54 s so)
    gaps = np.concatenate([_projection_gaps(x0, x1, out_code, lams[at:at + _PROJECTIONS_AT_ONCE], groups)
                           for at in range(0, len(lams), _PROJECTIONS_AT_ONCE)])
    best = int(np.argmax(gaps))
    return [1.0, float(lams[best])] if gaps[best] > 0 else None


_PROJECTIONS_AT_ONCE = 16


def _projection_gaps(x0: np.ndarray, x1: np.ndarray, out_code: np.ndarray, lams: np.ndarray,
                     groups: Optional[np.ndarray]) -> np.ndarray:
    """Each candidate's smallest gap between neighbouring points with different outputs
    (of one group), over 1 + |lam|; 0 where there is none."""
    zs = x0[None, :] + lams[:, None] * x1[None, :]
    # (any sort: tied points' order changes no gap, since tied points with different
    # outputs give a gap of 0 whichever way they lie)
    if groups is not None:      # (each combination's points after the last's, per candidate)
        span = zs.max(axis=1, keepdims=True) - zs.min(axis=1, keepdims=True) + 1.0
        order = np.argsort(zs - zs.min(axis=1, keepdims=True) + groups[None, :] * span, axis=1)
    else:
        order = np.argsort(zs, axis=1)
    z_sorted = np.take_along_axis(zs, order, axis=1)
    c_sorted = out_code[order]
    differs = c_sorted[:, 1:] != c_sorted[:, :-1]
    if groups is not None:
        g_sorted = groups[order]
        differs &= g_sorted[:, 1:] == g_sorted[:, :-1]
    gaps = np.where(differs, np.diff(z_sorted, axis=1), np.inf).min(axis=1) / (1.0 + np.abs(lams))
    return np.where(np.isfinite(gaps), gaps, 0.0)


def _coordinate_lin(lam: Sequence[float], x_refs: Sequence[Callable], made: dict[int, Any],
                    zeros_too: bool = False) -> Lin:
    """z = sum of lam_j * x_j as a Lin, requesting each coordinate's read (`made`: the reads
    already requested, by index, which it fills); one with coefficient 0 only if `zeros_too`
    (a single table's coordinates, which it has always requested)."""
    z_lin: Lin = {}
    for j, l in enumerate(lam):
        if not l and not zeros_too:
            continue
        if j not in made:
            made[j] = x_refs[j]()
        for ref, k in (made[j].items() if isinstance(made[j], dict) else ((made[j], 1.0),)):
            z_lin[ref] = z_lin.get(ref, 0.0) + l * k
    return z_lin


def _combo_codes(combos: list[tuple]) -> np.ndarray:
    """Each point's gate-value combination as an integer code (equal combinations, equal codes)."""
    if not combos or not combos[0]:         # (no gates: every point's combination is ())
        return np.zeros(len(combos), dtype=np.int64)
    return factorize(np.array([hash(c) for c in combos], dtype=np.int64))[0].reshape(-1)


def _injective_combination(xs: list[np.ndarray], order: tuple[int, ...],
                           gaps: Optional[dict] = None) -> list[float]:
    """Coefficients making sum_j lam_j * x_j injective: the inputs in `order`, each scaled
    past the range of those before it (the first is the finest). `gaps` caches, across
    calls, each input's smallest gap between values and each prefix of an order's partial
    sum and its smallest gap (the permutations of three or four inputs share prefixes)."""
    gaps = {} if gaps is None else gaps
    lam = [0.0] * len(xs)
    lam[order[0]] = 1.0
    first = order[0]
    if first not in gaps:
        gaps[first] = _min_gap(xs[first])
    prev = np.asarray(xs[first], dtype=np.float64)
    gap_prev = gaps[first]
    for step, j in enumerate(order[1:]):
        if j not in gaps:
            gaps[j] = _min_gap(xs[j])
        prefix = order[:step + 2]
        if step:
            gap_prev = gaps[order[:step + 1]][1]
        span = float(prev.max() - prev.min()) if len(prev) else 0.0
        lam[j] = (span + gap_prev) / gaps[j]
        if prefix not in gaps:
            total = prev + lam[j] * xs[j]
            gaps[prefix] = (total, _min_gap(total) if step + 2 < len(order) else None)
        prev = gaps[prefix][0]
    return lam


def _min_gap(x: np.ndarray) -> float:
    """The smallest gap between distinct values (rounding variants merged), 1 if one value."""
    u = np.unique(np.asarray(x, dtype=np.float64))
    if len(u) < 2:
        return 1.0
    d = np.diff(u)
    if np.any(d <= 1e-12 * np.maximum(1.0, np.abs(u[1:]))):
        u = np.unique(canonical(x))         # (variants to merge: canonical's rule)
        return float(np.min(np.diff(u))) if len(u) > 1 else 1.0
    return float(d.min())


def _output_row_codes(outputs: np.ndarray, distinct_rows: Optional[Callable] = None) -> np.ndarray:
    """One column of row codes standing for the output rows wherever that changes no test
    on them (rows differ by more than 1e-12 exactly where their codes differ: so where
    each column's distinct values lie further apart than that); else the rows. Scoring
    a projection compares neighbouring rows: over the ~300 one-hot outputs of an exact
    copy (compiler.rewrite) that was most of the paper's Dyck-3 compile. `distinct_rows`:
    gives output_rows(outputs, from_size=0), where the caller keeps them."""
    if outputs.ndim != 2 or outputs.shape[1] <= 2 or outputs.shape[0] < 2:
        return outputs
    rows = distinct_rows() if distinct_rows is not None else output_rows(outputs, from_size=0)
    if rows is None:
        return outputs
    # (each column's values sorted over the distinct rows alone: the same gaps)
    gaps = np.diff(np.sort(rows.distinct, axis=0), axis=0)
    if np.any((gaps > 0) & (gaps <= 1e-12)):
        return outputs
    return rows.code.astype(np.float64)[:, None]


def _output_changes(z: np.ndarray, combo_code: Optional[np.ndarray], outputs: np.ndarray) -> int:
    """How often the outputs change between neighbouring points along z (per gate
    combination): about half a step table's units."""
    z = np.asarray(z, dtype=np.float64)
    if z.size < 2:
        return 0
    order = np.lexsort((z,) if combo_code is None else (z, combo_code))
    o = outputs[order]
    moved = np.any(np.abs(o[1:] - o[:-1]) > 1e-12, axis=1)
    if combo_code is not None:
        moved &= combo_code[order][1:] == combo_code[order][:-1]
    return int(moved.sum())


def _fewest_changes(combo_code: Optional[np.ndarray], outputs: np.ndarray) -> int:
    """A lower bound on _output_changes along any order: per gate combination, one fewer
    than its distinct outputs (rows told apart by one fixed projection, which can only
    undercount them)."""
    weights = 1.0 + np.sqrt(np.arange(2, outputs.shape[1] + 2, dtype=np.float64))
    rows = np.unique(outputs @ weights, return_inverse=True)[1].reshape(-1)
    if combo_code is None:
        return int(rows.max(initial=-1))
    pairs = np.unique(combo_code.astype(np.int64) * (int(rows.max(initial=0)) + 1) + rows)
    return int(len(pairs) - len(np.unique(combo_code)))


def _steps_if_function(z: np.ndarray, combo_code: Optional[np.ndarray], outputs: np.ndarray) -> Optional[int]:
    """The number of distinct (gates, canonical z) points if the outputs are a function of
    them, else None. One sort of z serves both the canonical codes and, without gates,
    the function test (an MLP over two means has ~10,000 points at max_seq_len 20)."""
    z = np.asarray(z, dtype=np.float64)
    if z.size == 0:
        return 0
    if z.size > 4 * _SAMPLE and _collides_in_sample(z, combo_code, outputs):
        return None
    order = np.argsort(z, kind="stable")
    zs = z[order]
    tol = 1e-12 * np.maximum(1.0, np.abs(zs))
    first = np.concatenate(([True], np.diff(zs) > tol[1:]))
    run = np.cumsum(first) - 1
    if np.any(zs - zs[np.flatnonzero(first)][run] > tol):   # canonical's value-by-value rule
        z_code = np.unique(canonical(z), return_inverse=True)[1].reshape(-1)
    elif combo_code is None:
        o = outputs[order]
        same = run[1:] == run[:-1]
        if np.any(same & np.any(np.abs(o[1:] - o[:-1]) > 1e-12, axis=1)):
            return None
        return int(run[-1]) + 1
    else:
        z_code = np.empty(len(z), dtype=np.int64)
        z_code[order] = run
    key = z_code if combo_code is None else combo_code * (int(z_code.max(initial=0)) + 1) + z_code
    codes = np.unique(key, return_inverse=True)[1].reshape(-1)
    return int(codes.max(initial=-1)) + 1 if _is_function_of([codes], outputs) else None


# points _steps_if_function looks at first, to reject a coordinate cheaply
_SAMPLE = 2048
# largest candidates x points x outputs that _steps_many scores in one pass
_BATCH_CELLS = 1 << 21


def _combinations(lams: list[list[float]], xs: list[np.ndarray]) -> np.ndarray:
    """sum_j lam_j * x_j for each coefficient list (rows), summed in the order of the
    inputs as a Python sum of arrays would be, so that every row is bitwise that sum."""
    if not lams:
        return np.zeros((0, len(xs[0]) if xs else 0))
    L = np.asarray(lams, dtype=np.float64)
    z = L[:, :1] * np.asarray(xs[0], dtype=np.float64)
    for j in range(1, len(xs)):
        z = z + L[:, j:j + 1] * np.asarray(xs[j], dtype=np.float64)
    return z


def _steps_many(Z: np.ndarray, combo_code: Optional[np.ndarray], outputs: np.ndarray) -> list[Optional[int]]:
    """_steps_if_function of each row of Z. A small table's projections (detect_pattern's
    three flags: ~40 candidates over 8 points) are scored in one numpy pass over all
    rows, where one call per row was mostly numpy's call overhead; rows that need
    canonical's value-by-value merging, and large tables, take the single-row path."""
    C, P = Z.shape
    F = outputs.shape[1] if outputs.ndim == 2 else 1
    if C <= 1 or P == 0 or P > 4 * _SAMPLE or C * P * F > _BATCH_CELLS:
        return [_steps_if_function(z, combo_code, outputs) for z in Z]
    order = np.argsort(Z, axis=1, kind="stable")
    zs = np.take_along_axis(Z, order, axis=1)
    tol = 1e-12 * np.maximum(1.0, np.abs(zs))
    first = np.ones((C, P), dtype=bool)
    first[:, 1:] = np.diff(zs, axis=1) > tol[:, 1:]
    run = np.cumsum(first, axis=1) - 1
    start = np.maximum.accumulate(np.where(first, np.arange(P), 0), axis=1)
    merged = np.any(zs - np.take_along_axis(zs, start, axis=1) > tol, axis=1)
    if combo_code is None:
        key, at = run, order
    else:
        # (points ordered by (gates, z run), ties by their original order, as _is_function_of
        # orders them by the combined code)
        key = combo_code[order] * P + run
        again = np.lexsort((order, key), axis=1)
        key, at = np.take_along_axis(key, again, axis=1), np.take_along_axis(order, again, axis=1)
    o = outputs.reshape(P, F)[at]
    same = key[:, 1:] == key[:, :-1]
    moved = np.any(np.abs(o[:, 1:] - o[:, :-1]) > 1e-12, axis=2)
    bad = np.any(same & moved, axis=1).tolist()
    steps = (P - same.sum(axis=1)).tolist()
    out: list[Optional[int]] = [None if b else int(n) for b, n in zip(bad, steps)]
    for c in np.flatnonzero(merged).tolist():
        out[c] = _steps_if_function(Z[c], combo_code, outputs)
    return out


def _collides_in_sample(z: np.ndarray, combo_code: Optional[np.ndarray], outputs: np.ndarray) -> bool:
    """Whether two of an evenly spread sample of the points share their gate combination and
    their z exactly, with different outputs: then no table along z computes them
    (_steps_if_function would find the same pair, whichever way it merges near values),
    found without sorting every point. A table over three balances of shuffle_dyck3 has
    50,949 points at max_seq_len 12, and the 68 coordinates its projections score were
    most of a half-second compile, most of them sums that merge such pairs."""
    pick = np.linspace(0, len(z) - 1, _SAMPLE).astype(np.int64)
    zs = z[pick]
    keys = (zs,) if combo_code is None else (zs, combo_code[pick])
    order = np.lexsort(keys)
    same = zs[order][1:] == zs[order][:-1]
    if combo_code is not None:
        gates = combo_code[pick][order]
        same &= gates[1:] == gates[:-1]
    if not same.any():
        return False
    o = outputs[pick][order]
    return bool(np.any(same & np.any(np.abs(o[1:] - o[:-1]) > 1e-12, axis=1)))


def canonical(z: np.ndarray) -> np.ndarray:
    """Merge values within 1e-12 (relative): float64 rounding variants of one number."""
    z = np.asarray(z, dtype=np.float64)
    if z.size == 0:
        return z
    u = np.unique(z)
    if not np.any(np.diff(u) <= 1e-12 * np.maximum(1.0, np.abs(u[1:]))):
        return z          # nothing to merge (the common case), without the loop below
    tol = 1e-12 * np.maximum(1.0, np.abs(u))
    first = np.concatenate(([True], np.diff(u) > tol[1:]))
    rep = u[np.flatnonzero(first)][np.cumsum(first) - 1]     # each run of near values: its first
    if np.any(u - rep > tol):       # a run longer than the tolerance: the rule, value by value
        rep = u.copy()
        for i in range(1, len(u)):
            if u[i] - rep[i - 1] <= 1e-12 * max(1.0, abs(u[i])):
                rep[i] = rep[i - 1]
    return rep[np.searchsorted(u, z)]


def _codes(col: np.ndarray) -> np.ndarray:
    """Integer codes of a column; numbers are coded by numeric value (1 and 1.0 are one)."""
    if set(map(type, col)) <= {int, float}:
        return np.unique(canonical(np.asarray(col, dtype=np.float64)), return_inverse=True)[1].reshape(-1)
    return factorize(col)[0]


@dataclass
class _PerGate:
    """Per-gate tables for one way of reading a map's inputs (Lowering._per_gate_parts)."""

    gate_leaves: list[ir.SOp]
    parts: list["_TablePart"]
    x_refs: list[Callable]          # per coordinate: requests its feature
    from_heads: bool
    new_gates: bool                 # the single table read the gates as coordinates, not one-hot

    @property
    def units(self) -> int:
        return sum(len(p.plan.units) for p in self.parts)

    def beats(self, single_units: int) -> bool:
        """Worth taking over an exact single table of `single_units` units: at most half the
        units, and where the gates' one-hot features are new residual directions, 4 units
        saved for each."""
        keys = len({key for p in self.parts for u in p.plan.units for key in u.gates}) if self.new_gates else 0
        return 2 * self.units <= single_units and 4 * keys <= single_units - self.units


@dataclass
class _TablePart:
    """One table of an MLP that may add up several (see Lowering._mlp_from_tables)."""

    combos: list[tuple]
    z: np.ndarray
    z_lin: Lin
    plan: TablePlan
    z_err: Optional[float]
    lam: Optional[list[float]] = None       # its coordinate's coefficients (per-gate tables)


class _TableUnfit(Exception):
    """This grouping of an MLP's inputs cannot give an exact table (try another)."""


def _all_numbers(col: np.ndarray) -> bool:
    """Every value in the column is an int, float or bool (`numbers` would accept it)."""
    return all(issubclass(t, (int, float)) for t in set(map(type, col.tolist())))


def _is_function_of(code_cols: list[np.ndarray], outputs: np.ndarray) -> bool:
    """Whether the output rows are determined by the given (coded) columns."""
    n = outputs.shape[0]
    if n == 0:
        return True
    if not code_cols:
        return bool(np.all(np.abs(outputs - outputs[0]) <= 1e-12))
    dims = tuple(int(c.max()) + 1 for c in code_cols)
    if math.prod(dims) < 2 ** 62:
        key = np.ravel_multi_index(tuple(code_cols), dims)
    else:
        key = np.unique(np.stack(code_cols, axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    order = np.argsort(key, kind="stable")
    k_sorted = key[order]
    # (the rows of each repeated key against their neighbour of the same key)
    same = np.flatnonzero(k_sorted[1:] == k_sorted[:-1])
    return not np.any(np.abs(outputs[order[same + 1]] - outputs[order[same]]) > 1e-12)


def certify(lowered: Lowered) -> dict:
    """The forward error bound (compiler.bounds) against the decoder's margins: whether
    the model is proven exact, or the first place the proof fails. (Not part of every
    compile: it costs a pass over all blocks, and only inspection asks for it.)"""
    err = dict(lowered.feature_err)
    problems = propagate(lowered.heads, lowered.mlps, err, lowered.max_seq_len, resolve)
    reads = readout_errors(lowered.readout, err)
    bound = max((e for e, _ in reads), default=0.0)
    margin = min((m for _, m in reads), default=math.inf)
    if not problems and any(e >= m for e, m in reads):
        problems = [f"the output can be off by {bound:.3g}, its decoding margin is {margin:.3g}"]
    return {"proven_exact": not problems, "output_error_bound": bound if math.isfinite(bound) else None,
            "output_margin": margin if math.isfinite(margin) else None,
            "unproven_because": problems[0] if problems else None}


def _resolve_blocks(heads: list[HeadBlock], mlps: list[MLPBlock]) -> None:
    """Replace every block's refs by the Reads they resolve to (once, for later stages)."""
    for head in heads:
        head.terms = [(_resolved(q), _resolved(k)) for q, k in head.terms]
        head.values = [(f, _resolved(lin), bos) for f, lin, bos in head.values]
    for block in mlps:
        for unit in block.units:
            unit.pre = _resolved(unit.pre)


def _resolved(lin: Lin) -> "ResolvedLin":
    return lin if isinstance(lin, ResolvedLin) else ResolvedLin(lin)


def lower(graph: ProgramGraph, inf: Inference, plan: Plan) -> Lowered:
    return Lowering(graph, inf, plan).run()


def _apply_to_combinations(fn: ir.ElementFn, uniques: list[list], codes: list[np.ndarray]) -> tuple[list, np.ndarray]:
    """fn on each combination (argument k: uniques[k][codes[k][i]]) as the interpreter
    applies it: None where an argument is None (unless fn takes None), None and marked bad
    where fn raises. Combinations whose arguments are plain bools, numbers or strings go
    through fn's numpy form, one group per tuple of argument types (a mean holds ints and
    floats, and each keeps its own arithmetic); the rest, or a group the numpy form fails
    on, one call at a time. (A fused table of 316,000 combinations called fn that often.)"""
    count = len(codes[0]) if codes else 1
    results: list = [None] * count
    bad = np.zeros(count, dtype=bool)
    kinds = {bool: 1, int: 2, float: 3, str: 4}
    group = np.zeros(count, dtype=np.int64)
    for u, c in zip(uniques, codes):
        group = group * 8 + np.array([kinds.get(type(v), 0) for v in u], dtype=np.int64)[c]
    plain = fn.vec is not None and bool(codes)
    for g in (np.unique(group).tolist() if count else []):
        rows = np.flatnonzero(group == g)
        if plain and all((g >> (3 * (len(codes) - 1 - k))) & 7 for k in range(len(codes))):
            out = apply_vectorized(fn, [array_of([u[i] for i in c[rows].tolist()]) for u, c in zip(uniques, codes)])
            if out is not None and out.dtype.kind in "biufU":
                for r, v in zip(rows.tolist(), out.tolist()):
                    results[r] = v
                continue
        for r in rows.tolist():
            call = [u[c[r]] for u, c in zip(uniques, codes)]
            if not fn.takes_none and any(a is None for a in call):
                continue
            try:
                results[r] = fn.py(*call)
            except Exception:
                bad[r] = True
    return results, bad


def _is_round(node: ir.SOp) -> bool:
    return isinstance(node, ir.Map) and node.fn.op == "round"
