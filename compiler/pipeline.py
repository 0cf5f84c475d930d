"""The compile pipeline, stage by stage (each stage is its own module)."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

import numpy as np

from rasp import ir
from rasp.errors import RaspInputError
from rasp.values import token_list

from .assemble import assemble
from .errors import CompileError, ReadoutError, SquareUnfit, TableRefused
from .graph import ProgramGraph
from .infer import Inference, sorted_values
from .lower import Lowering, certify
from .plan import ANY, MAP_VIRTUAL, Plan
from .residual import layout
from .rewrite import exact_read, replacements
from .runtime import CompiledModel, OutputSpec
from .schedule import schedule


# at most this many maps are recompiled from exact copies of their inputs (each retry
# compiles the program again)
MAX_EXACT_READS = 8


def normalize_vocab(vocab: Iterable[Any]) -> list:
    """Distinct tokens in a fixed order (a string means its characters)."""
    try:
        vocab = token_list(vocab, "the vocabulary")
    except RaspInputError as err:
        raise CompileError(err.message) from None
    for t in vocab:          # checked before sorting: lists do not hash, inf would merge away
        if not _atom_or_tuple(t):
            raise CompileError(f"vocabulary entries must be strings, numbers, booleans or tuples of them, "
                               f"got {t!r}")
        if isinstance(t, float) and not math.isfinite(t):
            raise CompileError(f"vocabulary entries must be finite numbers, got {t!r}")
        if isinstance(t, int) and not isinstance(t, bool) and abs(t) > 2 ** 53:
            raise CompileError(f"vocabulary integers must be at most 2**53 in size (float64 holds them "
                               f"exactly), got {str(t)[:20]}... ({len(str(t))} digits)")
    tokens = sorted_values(vocab)
    if not tokens:
        raise CompileError("the vocabulary is empty")
    kept = {(type(t), t) for t in tokens}
    dropped = [t for t in vocab if (type(t), t) not in kept]
    if dropped:   # 1 and 1.0 are one number; tokens are matched by type, so one would be unusable
        raise CompileError(f"the vocabulary lists the number {dropped[0]!r} twice (also as an int or float); "
                           "list it once")
    return list(tokens)


def _atom_or_tuple(token: Any) -> bool:
    """A string, number or boolean, or a tuple of them (Tracr's programs may take tuple
    tokens, and programs hold tuple values anyway)."""
    if isinstance(token, tuple):
        return all(_atom_or_tuple(t) for t in token)
    return isinstance(token, (str, int, float, bool))


class Compilation:
    """Every intermediate product of one compile, kept for inspection."""

    def __init__(self, sop: ir.SOp, vocab: list, max_seq_len: int) -> None:
        self.sop = sop
        # maps read at merged rounding variants whose one table over exact s-ops was
        # refused: map id -> the map computed from exact copies of its inputs
        exact_reads: dict[int, ir.Node] = {}
        first: Optional[CompileError] = None
        while True:
            try:
                self._compile(vocab, max_seq_len, exact_reads)
                return
            except CompileError as err:
                node, inf = getattr(err, "node", None), self.inference
                if node is None or inf is None or node.id in exact_reads or node.id not in inf.variant_reads \
                        or len(exact_reads) >= MAX_EXACT_READS:
                    # (the first refusal names the cause: a result decided by float rounding)
                    raise (first or err) from None
                first = first or err
                exact_reads[node.id] = exact_read(node, inf)

    def _compile(self, vocab: list, max_seq_len: int, exact_reads: dict[int, ir.Node]) -> None:
        sop = self.sop
        self.inference: Optional[Inference] = None
        self.graph = ProgramGraph(sop, replace=exact_reads or None)
        self.inference = Inference(self.graph, vocab, max_seq_len)
        replace = replacements(self.inference)
        if not replace:
            self._build()
            return
        replace = {**exact_reads, **replace}
        plain = (self.graph, self.inference)
        try:
            self.graph = ProgramGraph(sop, replace=replace)
            self.inference = Inference(self.graph, vocab, max_seq_len)
            self._build()
        except CompileError:
            variant = next(iter(plain[1].variant_selects.values()), None)
            if variant is not None:
                # (as written, the select would compare merged rounding variants: wrong)
                raise variant from None
            # (the rewritten program as means, as written: a width's `or` may be too
            # deeply nested to split into heads where one select over tuples still works)
            self.graph, self.inference = plain
            self._build()

    def _build(self) -> None:
        self.plan = Plan(self.graph, self.inference)
        self.no_squares: frozenset = frozenset()
        self.unsnapped_widths = False       # (see _widths_without_snap_heads)
        # Lowering options kept by _keep_if_shallower, passed to every later lowering
        self.lowering_options: dict = {}
        while True:
            try:
                self.lowered = self._lower()
                break
            except SquareUnfit as err:
                # (an s-op whose squared code float32 cannot tabulate: its equality heads
                # read it one-hot instead, at more residual width)
                if err.sop_id in self.no_squares:
                    raise
                self.no_squares |= {err.sop_id}
                # (a fresh plan: the refused lowering had replanned in place, e.g. the maps
                # under the s-op as MLPs of their own, a layer more)
                self.plan = Plan(self.graph, self.inference, tabulate=self.plan.tabulate)
            except TableRefused as err:
                # (maps folded into the refused table, computed after it instead: a layer more)
                folded = self._folded_readers(err.node)
                if not folded:
                    raise
                self.plan = Plan(self.graph, self.inference, tabulate=self.plan.tabulate | folded)
        self._fuse_without_squares()
        self._widths_without_snap_heads()
        self._tables_over_deeper_cuts()
        problems = self.lowered.problems
        if problems:
            raise CompileError("the compiled model could not be made exact in float32:\n  " + "\n  ".join(problems),
                               self.graph.output)
        self.certified: Optional[dict] = None
        if self.lowered.head_pair_tables:
            self._prefer_a_proven_lowering()
        self.schedule = schedule(self.lowered)
        self.layout = layout(self.lowered, self.schedule)
        self.module = assemble(self.lowered, self.schedule, self.layout)
        self._probes = None

    def _fuse_without_squares(self) -> None:
        """A map whose fused table was refused while it also wrote the squared code an
        equality head reads it by (Dyck-2's `level`, squares up to 2,401 at max_seq_len 48,
        rounded past their margin) was computed one MLP after the maps under it: a layer
        more. Read one-hot by its equality heads instead, the fused table may fit; that
        lowering is kept where it takes fewer layers."""
        blocked = self.lowered.squares_blocking_fusion - self.no_squares
        if not blocked or self.lowered.problems:
            return
        previous = self.no_squares
        self.no_squares = previous | blocked
        if not self._keep_if_shallower():
            self.no_squares = previous

    def _widths_without_snap_heads(self) -> None:
        """A width whose selected keys may hold different key values (`select(key, key, <)`
        over a computed key) has its score features tabulated from exact one-hot inputs,
        which an MLP's outputs are not: snap heads round them first, a layer more (the
        paper's sort_by_most_freq: 4 layers, the paper's analysis 3). Equal weights matter
        most to a mean, whose values lie close together; a width's decoder tolerates the
        rounding of ordinary tables where the lowering's error estimate says so. That
        lowering is kept where it takes fewer layers and the estimate finds no problem."""
        if self.lowered.problems or not any(head.snap for head in self.lowered.heads):
            return
        self.unsnapped_widths = self._keep_if_shallower(uniform_width_scores=False)

    def _tables_over_deeper_cuts(self) -> None:
        """A map whose table waited for its map inputs' own MLPs may take one table over
        their inputs instead (Lowering._cut_below); that lowering is kept where it takes
        fewer layers (the paper's Dyck-2 at 26 and 59 and Dyck-3 at 43: 6 -> 5)."""
        if self.lowered.deeper_cut_untried and not self.lowered.problems:
            self._keep_if_shallower(deeper_cuts=True)

    def _keep_if_shallower(self, **options) -> bool:
        """Lower again (with `options`, from a fresh plan: lowering replans in place, and the
        first one may have planned maps as MLPs of their own); keep that lowering where it
        has no problem and takes fewer layers. Whether it was kept."""
        kept = (self.lowered, self.plan)
        self.plan = Plan(self.graph, self.inference, tabulate=kept[1].tabulate)
        try:
            alt = self._lower(**options)
        except CompileError:
            alt = None
        if alt is None or alt.problems or schedule(alt).num_layers >= schedule(kept[0]).num_layers:
            self.lowered, self.plan = kept
            return False
        self.lowered = alt
        self.lowering_options.update(options)
        return True

    def _folded_readers(self, node: ir.Node) -> frozenset:
        """The maps reading `node` that are virtual, so that any function of `node` they need
        is an output of `node`'s own table (`w % 2` of `w`); each one more output can make
        that table too fine for float32, where `node`'s value alone, and the map's table
        after it, are exact."""
        if node is None:
            return frozenset()
        return frozenset(user.id for user in self.graph.users(node)
                         if isinstance(user, ir.Map) and self.plan.kind.get(user.id) == MAP_VIRTUAL
                         and user.id not in self.plan.tabulate)

    def _prefer_a_proven_lowering(self) -> None:
        """A per-gate table that reads two counts from their heads along one projection saves
        the layer that decodes them, but the heads' error times the projection can pass the
        lowering's estimate and not the proof's bound: that model is kept only if it is
        proven exact, or if the one that decodes the counts first is not either."""
        self.certified = certify(self.lowered)
        if self.certified["proven_exact"]:
            return
        try:
            alt = self._lower(head_pairs=False)
        except CompileError:
            return
        if alt.problems:
            return
        cert = certify(alt)
        if cert["proven_exact"]:
            self.lowered, self.certified = alt, cert

    def _lower(self, **options) -> Lowering:
        try:
            return Lowering(self.graph, self.inference, self.plan, no_squares=self.no_squares,
                            **{**self.lowering_options, **options}).run()
        except ReadoutError as first:
            if options:
                raise
            return self._lower_for_a_tight_readout(first)

    def _lower_for_a_tight_readout(self, first: ReadoutError):
        """The output's error bound reached its decoding margin. An output that adds up
        parts (2*f*f - f, with 2*f*f from an MLP) is computed by one MLP instead, whose steps
        reset the parts' errors; failing that, the tables with the smaller output errors
        (interpolating, not stepping, where that is smaller) are tried; and an output that
        can provide any function of its value is read by the index of its value."""
        out = self.graph.output
        if self.plan.kind.get(out.id) == MAP_VIRTUAL:
            plan = Plan(self.graph, self.inference, tabulate=frozenset({out.id}))
            try:
                lowered = Lowering(self.graph, self.inference, plan, no_squares=self.no_squares,
                                   **self.lowering_options).run()
                self.plan = plan
                return lowered
            except CompileError:
                pass
        try:
            return self._lower(low_error=True)
        except ReadoutError:
            pass
        if self.plan.readable.get(out.id) == ANY:
            # (values far apart in scale, 1 and 1e12: an s-op that can provide any function
            # is read by the index of its value)
            try:
                return self._lower(output_by_code=True)
            except CompileError:
                pass
        raise first from None       # (the root cause: the readout's precision)

    @property
    def probes(self):
        """{s-op id: Probe} reading every s-op a block uses back out of the residual stream."""
        if self._probes is None:
            from .probes import build_probes
            self._probes = build_probes(self.lowered, self.layout, self.schedule,
                                        lambda i: (self.graph.node(i), self.inference.info[i].values))
        return self._probes


def _only_floats(values) -> bool:
    """Floats but no ints among the numbers (bools are not counted)."""
    types = set(map(type, values))
    return float in types and int not in types


def _floats_at(graph: ProgramGraph, inference: Inference) -> Optional[list]:
    """OutputSpec.floats_at of the program's output: where a structural selector fixes how
    many keys each query averages, a number is a float exactly where it averages several
    (the mean of every position is an int at length 1 and a float from 2); otherwise from
    the output's values at each position (every value a float there)."""
    out = graph.output
    N = inference.N
    sel = inference.sel[graph.children(out)[0].id] if isinstance(out, ir.Aggregate) else None
    if sel is not None and sel.exact is not None and out.semantics == "rasp":
        several = np.zeros((N, N), dtype=bool)        # [length - 1, position]
        for n in range(1, N + 1):
            several[n - 1, :n] = np.asarray(sel.exact[n - 1]).sum(axis=1) > 1
        flags: list = []
        for i in range(N):
            column = several[i:, i]          # (lengths i + 1 .. N)
            flags.append(bool(column[0]) if column.all() or not column.any() else column.tolist())
    else:
        flags = [_only_floats(at) for at in inference.info[out.id].by_pos]
    return flags if any(f is True or isinstance(f, list) for f in flags) else None


_blas_controller = None


def single_threaded_blas():
    """Context: numpy's BLAS/LAPACK on one thread. The compiler's solves are small; with
    several threads, OpenBLAS waiting for a core that is busy (a second process, torch's
    own threads) made a 2,000 x 236 least-squares solve 80x slower."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def build(sop: ir.SOp, vocab: list, max_seq_len: int) -> CompiledModel:
    comp = Compilation(sop, vocab, max_seq_len)
    readout = comp.lowered.readout
    if readout.mode == "numeric":
        values = [v for v in readout.values if v is not None]
        spec = OutputSpec("numeric", values, none_flag=len(readout.reads) > 1)
    else:
        spec = OutputSpec(readout.mode, list(readout.values))
    if readout.several is not None:        # (the readout's last column, see Readout.several)
        spec.several = [len(readout.reads), readout.several[1]]
    spec.floats_at = _floats_at(comp.graph, comp.inference)
    info = {
        "blocks": [[h.label for h in comp.schedule.heads[l]] + [m.label for m in comp.schedule.mlps[l]]
                   for l in range(comp.schedule.num_layers)],
        **(comp.certified or {}),
    }
    model = CompiledModel(comp.module, vocab, max_seq_len, spec, comp.layout.labels(), info, program=comp)
    return model
