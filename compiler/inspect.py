"""Look inside a compiled model: decode every sublayer, patch s-ops and heads, read attention.

    import rasp, compiler
    from compiler import inspect
    model = compiler.compile(rasp.load("programs/sort.rasp")["sorted"], "abcde", 12)
    for step in inspect.decode_layers(model, "cabbad"):
        print(step.label, step.values)              # {s-op name: value per position}
    inspect.run_patched(model, "cab", {"target": [2, 1, 0]})       # -> ['b', 'a', 'c']
    inspect.interpret_patched(model, "cab", {"target": [2, 1, 0]})  # the same, by the interpreter

Residual *time* counts sublayers: 0 is the embedding, layer l's attention writes at
time 2l+1 and its MLP at 2l+2. The residual stream after time t is cached as
`blocks.0.hook_resid_pre` (t = 0), `blocks.{l}.hook_resid_mid` (t = 2l+1) and
`blocks.{l}.hook_resid_post` (t = 2l+2). Model position 0 is BOS; input token i is at
position i+1. Everything here only reads the compilation (`model.program`).

Decoding uses the compiler's probes (`compiler.probes`): an s-op can be read from the
residual stream from the time all the features its probe reads are written. Where the
model only stores a function of an s-op that does not tell every value apart (e.g. only
`tokens == "a"` of the tokens), the decoded value is one of the values consistent with
what is stored; `Step.ambiguous` names those s-ops.

Patching sets an s-op's own features (the residual directions written for it) to the
encoding of new values, right after they are written, and runs on; the output is then
what the interpreter computes for the program in which that s-op is replaced by a
constant sequence (`interpret_patched`, via `substitute`). Two limits: `patch_problem`
says when the model's wiring makes a patch unpredictable (a virtual map has no
features; a token map may share a direction with the tokens; a map may be folded into
a later MLP), and the compiled model is exact only on value combinations that real
inputs produce (patching `length` to 14 on a 6-token input is outside that domain).
Values taken from another input of the same length (resampling) are always inside it
for one s-op. Heads: `run_patched(..., heads={(layer, head): "zero" | "bos" | tensor})`;
"bos" (attend only to BOS: an empty selection) makes an aggregate give its default.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from rasp import ir

Tokens = Union[str, Sequence[Any]]
SOpRef = Union[str, ir.SOp]


# ---- sublayers and residual streams ------------------------------------------------------

@dataclass(frozen=True)
class Sublayer:
    """One point of the residual stream: after the embedding, an attention or an MLP sublayer."""

    time: int
    hook: str              # the cache name of the residual stream at this time
    label: str             # "embedding", "layer 0 attention", "layer 0 MLP", ...
    layer: Optional[int]   # None for the embedding
    kind: str              # "embed", "attn" or "mlp"
    blocks: tuple = ()     # labels of the heads / MLP blocks of this sublayer


def resid_hook(time: int) -> str:
    """The hook name of the residual stream after residual time `time`."""
    if time < 0:
        raise ValueError(f"residual time must be >= 0, got {time}")
    if time == 0:
        return "blocks.0.hook_resid_pre"
    layer = (time - 1) // 2
    return f"blocks.{layer}.hook_resid_mid" if time % 2 == 1 else f"blocks.{layer}.hook_resid_post"


def sublayers(model) -> list[Sublayer]:
    """The embedding and every attention and MLP sublayer, in order."""
    comp = _comp(model)
    out = [Sublayer(0, resid_hook(0), "embedding", None, "embed")]
    for layer in range(model.num_layers):
        heads = tuple(h.label for h in comp.schedule.heads[layer]) if comp is not None else ()
        mlps = tuple(m.label for m in comp.schedule.mlps[layer]) if comp is not None else ()
        out.append(Sublayer(2 * layer + 1, resid_hook(2 * layer + 1), f"layer {layer} attention", layer, "attn",
                            heads))
        out.append(Sublayer(2 * layer + 2, resid_hook(2 * layer + 2), f"layer {layer} MLP", layer, "mlp", mlps))
    return out


def _comp(model):
    return getattr(model, "program", None)


def _need_comp(model):
    comp = _comp(model)
    if comp is None:
        raise ValueError("this model has no compilation attached (a model loaded from a file); "
                         "inspection needs the model returned by compiler.compile")
    return comp


@torch.no_grad()
def run_with_cache(model, batch: Sequence[Tokens], hooks: Optional[dict] = None):
    """(logits [B, T, d_out], cache {hook name: tensor}, lengths) for a batch of inputs."""
    ids, mask, lengths = model.encode([list(t) for t in batch])
    logits, cache = model.module.run_with_cache(ids, mask, hooks=hooks)
    return logits, cache, lengths


def residuals(model, batch: Sequence[Tokens], hooks: Optional[dict] = None) -> tuple[dict[int, np.ndarray], list[int]]:
    """{residual time: float64 array [B, 1 + longest, d_model]} and each input's length."""
    _, cache, lengths = run_with_cache(model, batch, hooks)
    out = {s.time: cache[s.hook].double().cpu().numpy() for s in sublayers(model)}
    return out, lengths


# ---- naming s-ops ------------------------------------------------------------------------

def named_probes(model, names: Optional[Mapping[str, ir.SOp]] = None) -> dict[str, Any]:
    """{name: Probe} in dataflow order.

    Without `names`, every s-op the model can be read back for, under its IR name;
    with `names` (e.g. `program.sops()`), those s-ops under those names (the ones that
    the model stores; a name bound to a node that the compiled graph merged into
    another is found through the merge).
    """
    comp = _need_comp(model)
    probes = comp.probes
    order = {node.id: i for i, node in enumerate(comp.graph.nodes())}
    if names is None:
        pairs = [(p.node.name, p) for p in probes.values()]
    else:
        pairs = []
        for name, node in names.items():
            canon = comp.graph.canon.get(node.id)
            if canon is not None and canon.id in probes:
                pairs.append((name, probes[canon.id]))
    pairs.sort(key=lambda np_: order.get(np_[1].node.id, 1 << 30))
    out: dict[str, Any] = {}
    for name, probe in pairs:
        key = name if name not in out else f"{name}#{probe.node.id}"
        out[key] = probe
    return out


def find_node(model, sop: SOpRef) -> ir.SOp:
    """The compiled graph's node for an s-op given by name or IR node."""
    comp = _need_comp(model)
    if isinstance(sop, ir.Node):
        canon = comp.graph.canon.get(sop.id)
        if canon is None:
            raise ValueError(f"{sop.name!r} is not part of the compiled program (the output does not use it)")
        if not isinstance(canon, ir.SOp):
            raise ValueError(f"{sop.name!r} is a selector, not an s-op")
        return canon
    hits = [n for n in comp.graph.nodes() if isinstance(n, ir.SOp) and n.name == sop]
    if not hits:
        known = ", ".join(sorted({n.name for n in comp.graph.nodes() if isinstance(n, ir.SOp)
                                  and n.has_user_name}))
        raise ValueError(f"the compiled program has no s-op named {sop!r} (named s-ops: {known or 'none'})")
    if len(hits) > 1:
        raise ValueError(f"{len(hits)} s-ops are named {sop!r}; pass the IR node instead")
    return hits[0]


# ---- per-layer decoding ------------------------------------------------------------------

@dataclass
class Step:
    """The s-ops decoded from the residual stream after one sublayer (one input)."""

    sublayer: Sublayer
    values: dict[str, list]                     # name -> value per input position
    new: list[str] = field(default_factory=list)         # names first readable here
    ambiguous: set[str] = field(default_factory=set)     # names whose stored functions do not
                                                          # tell every value apart
    candidates: dict[str, list[tuple]] = field(default_factory=dict)   # ambiguous names: per position,
                                                          # every value consistent with the stream
    domains: dict[str, tuple] = field(default_factory=dict)  # ambiguous names: all their values

    @property
    def time(self) -> int:
        return self.sublayer.time

    @property
    def label(self) -> str:
        return self.sublayer.label

    @property
    def hook(self) -> str:
        return self.sublayer.hook


def decode_batch(model, batch: Sequence[Tokens], names: Optional[Mapping[str, ir.SOp]] = None,
                 hooks: Optional[dict] = None) -> list[list[Step]]:
    """`decode_layers` for many inputs at once (one forward pass): one list of Steps per input."""
    batch = [list(t) for t in batch]
    probes = named_probes(model, names)
    resid, lengths = residuals(model, batch, hooks)
    subs = sublayers(model)
    results: list[list[Step]] = [[] for _ in batch]
    ambiguous = {name for name, p in probes.items() if not p.separates()}
    classes = {name: value_classes(probes[name]) for name in ambiguous}
    index = {name: {(type(v), v): i for i, v in enumerate(probes[name].values)} for name in ambiguous}
    for sub in subs:
        r = resid[sub.time]
        B, T, D = r.shape
        decoded = {}
        for name, probe in probes.items():
            if probe.time <= sub.time:
                flat = probe.decode(r.reshape(B * T, D))
                decoded[name] = [flat[b * T:(b + 1) * T] for b in range(B)]
        for b, n in enumerate(lengths):
            values = {name: vals[b][1:n + 1] for name, vals in decoded.items()}
            new = [name for name, p in probes.items() if p.time == sub.time]
            amb = ambiguous & set(values)
            cands = {name: [classes[name][index[name][(type(v), v)]] for v in values[name]] for name in amb}
            results[b].append(Step(sub, values, [x for x in new if x in values], amb, cands,
                                   {name: tuple(probes[name].values) for name in amb}))
    return results


def value_classes(probe) -> list[tuple]:
    """For each of the probe's values, the values it cannot be told apart from (itself included)."""
    keys = [tuple(np.round(col, 9)) for col in probe.table.T]
    groups: dict[tuple, list] = {}
    for key, v in zip(keys, probe.values):
        groups.setdefault(key, []).append(v)
    return [tuple(groups[key]) for key in keys]


def describe_candidates(candidates: tuple, domain: tuple, show=str) -> str:
    """A short text for "one of these values": `a`, `a|b`, `≠a` or `one of 5`."""
    if len(candidates) == 1:
        return show(candidates[0])
    if len(candidates) <= 3:
        return "|".join(show(v) for v in candidates)
    rest = [v for v in domain if not any(v is c or (type(v) is type(c) and v == c) for c in candidates)]
    if 0 < len(rest) <= 2:
        return "≠" + ",".join(show(v) for v in rest)
    return f"one of {len(candidates)}"


def decode_layers(model, tokens: Tokens, names: Optional[Mapping[str, ir.SOp]] = None,
                  hooks: Optional[dict] = None) -> list[Step]:
    """Per sublayer (embedding, then each attention and MLP), {s-op name: value per position}.

    Every s-op appears from the sublayer at which the model has written it.
    `names` (e.g. `program.sops()`) restricts and names the s-ops; `hooks` (as for the
    model's forward) lets you decode an intervened run.
    """
    return decode_batch(model, [tokens], names, hooks)[0]


# ---- attention ---------------------------------------------------------------------------

@dataclass
class HeadInfo:
    layer: int
    index: int
    label: str             # e.g. "aggregate sorted"
    select: str            # the select expression it implements
    node: ir.SOp           # the aggregate / selector_width
    selector: Optional[ir.Selector]
    width: bool            # a selector_width head
    dims: int              # query/key dimensions it uses (literal terms + BOS handling)
    line: Optional[int]
    location: str
    writes: tuple = ()     # every s-op whose features it writes (aggregates sharing a selector
                           # share one head)

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.index}"


def heads(model) -> list[HeadInfo]:
    """Every attention head of the model with what it implements."""
    comp = _need_comp(model)
    out = []
    for layer in range(comp.schedule.num_layers):
        for h, block in enumerate(comp.schedule.heads[layer]):
            src = block.selector if block.selector is not None else block.node
            span = src.origin.user_span() if src.origin is not None else None
            written = list(dict.fromkeys(f.sop_id for f, _, _ in block.values if f.sop_id is not None))
            if block.node.id not in written:
                written.insert(0, block.node.id)
            out.append(HeadInfo(layer, h, block.label, block.description, block.node, block.selector,
                                bool(block.width), max(len(block.terms) + 2, len(block.values)),
                                span.line if span is not None else None,
                                span.location if span is not None else "<python>",
                                tuple(comp.graph.node(i) for i in written)))
    return out


@dataclass
class MLPInfo:
    layer: int
    label: str
    node: ir.SOp
    units: int


def mlps(model) -> list[MLPInfo]:
    comp = _need_comp(model)
    return [MLPInfo(layer, block.label, block.node, len(block.units))
            for layer in range(comp.schedule.num_layers) for block in comp.schedule.mlps[layer]]


def attention_patterns(model, tokens: Tokens) -> dict[tuple[int, int], np.ndarray]:
    """{(layer, head): attention weights [1 + n queries, 1 + n keys]} (position 0 is BOS)."""
    _, cache, lengths = run_with_cache(model, [list(tokens)])
    n = lengths[0]
    out = {}
    for layer in range(model.num_layers):
        pattern = cache.get(f"blocks.{layer}.attn.hook_pattern")
        if pattern is None:
            continue
        p = pattern[0].double().cpu().numpy()
        for h in range(p.shape[0]):
            out[(layer, h)] = p[h, :n + 1, :n + 1]
    return out


# ---- substitution (the interpreter side of a patch) --------------------------------------

def substitute(root: ir.Node, replace: Mapping[int, ir.Node],
               canon: Optional[Mapping[int, ir.Node]] = None) -> ir.Node:
    """A copy of `root`'s graph in which node id -> replacement node (downstream rebuilt).

    With `canon` (a compiled graph's `canon` map), a node is replaced when its
    canonical node's id is in `replace`, so merged duplicates are replaced together.
    Nodes that do not depend on a replaced node are shared, not copied.
    """
    def key(node: ir.Node) -> int:
        if canon is not None and node.id in canon:
            return canon[node.id].id
        return node.id

    new: dict[int, ir.Node] = {}
    for node in ir.topological_order([root]):
        if key(node) in replace:
            new[node.id] = replace[key(node)]
            continue
        kids = [new[c.id] for c in node.children]
        if all(k is c for k, c in zip(kids, node.children)):
            new[node.id] = node
            continue
        new[node.id] = _rebuild(node, kids)
    return new[root.id]


def _rebuild(node: ir.Node, kids: list) -> ir.Node:
    origin = node.origin
    if isinstance(node, ir.Map):
        out: ir.Node = ir.Map(node.fn, kids, origin=origin)
    elif isinstance(node, ir.Aggregate):
        out = ir.Aggregate(kids[0], kids[1], node.default, node.semantics, origin=origin)
    elif isinstance(node, ir.SelectorWidth):
        out = ir.SelectorWidth(kids[0], origin=origin)
    elif isinstance(node, ir.Select):
        out = ir.Select(kids[0], kids[1], node.ir_predicate, origin=origin)
    elif isinstance(node, ir.SelectAnd):
        out = ir.SelectAnd(kids[0], kids[1], origin=origin)
    elif isinstance(node, ir.SelectOr):
        out = ir.SelectOr(kids[0], kids[1], origin=origin)
    elif isinstance(node, ir.SelectNot):
        out = ir.SelectNot(kids[0], origin=origin)
    else:  # pragma: no cover - leaves have no children to replace
        raise TypeError(f"cannot rebuild {node!r}")
    out.annotations = dict(node.annotations._values)
    if node.has_user_name:
        out.named(node.name)
    return out


def interpret_patched(model, tokens: Tokens, patches: Mapping[SOpRef, Sequence[Any]]) -> list:
    """The interpreter's output for the compiled program with s-ops replaced by fixed values."""
    import rasp
    comp = _need_comp(model)
    tokens = list(tokens)
    replace = {}
    for sop, values in patches.items():
        node = find_node(model, sop)
        values = list(values)
        if len(values) != len(tokens):
            raise ValueError(f"patch for {node.name!r} has {len(values)} values for an input of length "
                             f"{len(tokens)}")
        const = ir.ConstantSequence(values)
        const.named(f"{node.name} (patched)")
        replace[node.id] = const
    root = substitute(comp.graph.output, replace, comp.graph.canon)
    return rasp.evaluate(root, tokens)


def _downstream_values(model, tokens: list, replace_values: Mapping[int, list], nodes: Iterable[ir.SOp]) -> dict:
    """Interpreter values of `nodes` in the patched program (node id -> values)."""
    import rasp
    comp = _need_comp(model)
    replace = {nid: ir.ConstantSequence(list(v)) for nid, v in replace_values.items()}
    mapping: dict[int, ir.Node] = {}
    roots = list(nodes)
    rebuilt = [substitute(n, replace, comp.graph.canon) for n in roots]
    for n, r in zip(roots, rebuilt):
        mapping[n.id] = r
    got = rasp.evaluate_all(rebuilt, [tokens])
    return {n.id: got[mapping[n.id].id][0] for n in roots}


# ---- patching ----------------------------------------------------------------------------

def own_features(model, node: ir.SOp) -> list:
    """The residual features written for `node` (its value's functions; no auxiliaries)."""
    comp = _need_comp(model)
    return [f for f in comp.layout.features
            if f.sop_id == node.id and f.kind not in ("aux", "one", "bos") and f.fn is not None]


def _value_index(model, node: ir.SOp):
    from .infer import ValueIndex
    comp = _need_comp(model)
    values = comp.inference.info[node.id].values
    index = ValueIndex(values)

    def find(v: Any) -> int:
        i = index.find(v)
        if i is None:
            shown = ", ".join(map(repr, values[:20])) + (", ..." if len(values) > 20 else "")
            raise ValueError(f"{v!r} is not a value {node.name!r} can take in this model (values: {shown})")
        return i
    return find


def _write_time(model, node: ir.SOp) -> int:
    comp = _need_comp(model)
    return max((comp.schedule.producer_time.get(f.uid, 0) for f in own_features(model, node)), default=0)


def _blocks_reads(comp) -> list[tuple[str, int, set]]:
    """(block label, node id it computes, s-ops it reads) for every head and MLP block.

    A read of an auxiliary feature (a selector_width head's 1/(w+1)) counts as a read of
    the s-op whose head wrote it.
    """
    aux_owner = {}
    for layer in range(comp.schedule.num_layers):
        for head in comp.schedule.heads[layer]:
            for f, _, _ in head.values:
                aux_owner[f.uid] = head.node.id

    def sops(lin) -> set:
        out = set()
        for term in lin:
            sid = term.sop_id if term.sop_id is not None else aux_owner.get(getattr(term, "uid", None))
            if sid is not None:
                out.add(sid)
        return out

    out = []
    for layer in range(comp.schedule.num_layers):
        for head in comp.schedule.heads[layer]:
            reads: set = set()
            for q, k in head.terms:
                reads |= sops(q) | sops(k)
            for _, lin, _ in head.values:
                reads |= sops(lin)
            out.append((head.label, head.node.id, reads))
        for block in comp.schedule.mlps[layer]:
            reads = set()
            for unit in block.units:
                reads |= sops(unit.pre)
            out.append((block.label, block.node.id, reads))
    return out


def _consistent_set(model, node: ir.SOp, latest: int) -> list[ir.SOp]:
    """S-ops computed from `node` that the model writes no later than `latest`."""
    import networkx as nx
    comp = _need_comp(model)
    out = []
    for nid in nx.descendants(comp.graph.graph, node.id):
        other = comp.graph.node(nid)
        if isinstance(other, ir.SOp) and own_features(model, other) and _write_time(model, other) <= latest:
            out.append(other)
    return out


def patch_problem(model, sop: SOpRef) -> Optional[str]:
    """Why patching `sop` would not give the interpreter's patched output (None: it does).

    Patching overwrites the s-op's own residual features. That changes exactly the
    s-ops computed from it when (1) it has features of its own, (2) every read of it
    goes through those features (or those of s-ops patched along with it), (3) no
    s-op that does not depend on it reads its features (the embedding may share one
    direction between a token map and the tokens), and (4) no block computes an s-op
    downstream of it straight from its inputs (a map folded into a later MLP).
    The check is conservative: a patch it accepts matches the interpreter whenever
    the patched values can occur together with the rest of the input (the compiled
    model is exact on the value combinations that inputs produce).
    """
    comp = _need_comp(model)
    node = find_node(model, sop)
    cache = _PROBLEMS.setdefault(comp, {})
    if node.id not in cache:
        cache[node.id] = _patch_problem(model, comp, node)
    return cache[node.id]


_PROBLEMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _patch_problem(model, comp, node: ir.SOp) -> Optional[str]:
    import networkx as nx
    g = comp.graph.graph
    if not own_features(model, node):
        kind = comp.plan.kind.get(node.id, "?")
        return (f"{node.name!r} has no residual features of its own (it is compiled as {kind}: blocks read it "
                f"as a function of its inputs); patch its inputs instead")
    patched = {node.id} | {n.id for n in _consistent_set(model, node, _write_time(model, node))}
    down = nx.descendants(g, node.id)
    up = nx.ancestors(g, node.id)
    without = g.subgraph([n for n in g.nodes if n != node.id])

    def avoiding(zid: int) -> set:
        return nx.ancestors(without, zid) if zid in without else set()

    owner = {f.uid: f.sop_id for f in comp.layout.features}
    for zid, refs in comp.lowered.refs.items():
        zname = comp.graph.node(zid).name if zid in g else str(zid)
        owners = {owner.get(f.uid) for ref in refs for f in ref.read().features()} - {None}
        if zid == node.id:
            if not owners <= patched:
                return (f"the model reads {node.name!r} partly through other s-ops' features "
                        f"({', '.join(sorted(comp.graph.node(o).name for o in owners - patched))})")
        elif zid not in down:
            hit = owners & patched
            if hit:
                return (f"{zname!r} does not depend on {node.name!r} but the model reads it through "
                        f"{comp.graph.node(next(iter(hit))).name!r}'s residual features (a shared direction)")
        else:
            stale = (owners & up) - avoiding(zid)
            if stale:
                return (f"the model reads {zname!r} (computed from {node.name!r}) through the features of "
                        f"{', '.join(sorted(comp.graph.node(o).name for o in stale))}, not through "
                        f"{node.name!r}")
    by_node: dict[int, tuple[list, set]] = {}
    for label, yid, reads in _blocks_reads(comp):
        labels, union = by_node.setdefault(yid, ([], set()))
        labels.append(label)
        union |= reads - {yid}          # a block reading its own s-op's auxiliaries
    for yid, (labels, reads) in by_node.items():
        if yid == node.id or yid not in down:
            continue
        label = " + ".join(repr(x) for x in dict.fromkeys(labels))
        if not reads & (down | patched):
            return f"{label} compute(s) an s-op straight from {node.name!r}'s inputs ({node.name!r} is folded in)"
        stale = (reads & up) - avoiding(yid)
        if stale:
            return (f"{label} compute(s) {comp.graph.node(yid).name!r} from "
                    f"{', '.join(sorted(comp.graph.node(o).name for o in stale))}, bypassing {node.name!r}")
    return None


def _patch_plan(model, node: ir.SOp, values: Sequence[Any], at_time: Optional[int]) -> list[tuple]:
    """[(residual time, residual index, value of the feature per position)] for one patch."""
    comp = _need_comp(model)
    find = _value_index(model, node)
    idx = np.array([find(v) for v in values], dtype=np.int64)
    plan = []
    for f in own_features(model, node):
        t = comp.schedule.producer_time.get(f.uid, 0)
        if at_time is not None:
            t = max(t, at_time)
        plan.append((t, comp.layout[f], np.asarray(f.fn, dtype=np.float64)[idx]))
    return plan


def patch_hooks(model, tokens: Tokens, patches: Mapping[SOpRef, Sequence[Any]], at_time: Optional[int] = None,
                heads: Optional[Mapping[tuple[int, int], Any]] = None, force: bool = False) -> dict:
    """Forward hooks that carry out `run_patched`'s interventions (for your own runs/caches)."""
    tokens = list(tokens)
    n = len(tokens)
    if at_time is not None and not 0 <= at_time <= 2 * model.num_layers:
        raise ValueError(f"at_time must be a residual time from 0 to {2 * model.num_layers}, got {at_time}")
    nodes: dict[int, tuple[ir.SOp, list]] = {}
    for sop, values in patches.items():
        node = find_node(model, sop)
        values = list(values)
        if len(values) != n:
            raise ValueError(f"patch for {node.name!r} has {len(values)} values for an input of length {n}")
        if not own_features(model, node):
            raise ValueError(patch_problem(model, node))
        if not force:
            problem = patch_problem(model, node)
            if problem is not None:
                raise ValueError(f"cannot patch {node.name!r} exactly: {problem} (force=True patches its "
                                 "features anyway)")
        nodes[node.id] = (node, values)
    # s-ops computed from a patched one but written no later than it (token maps that the
    # embedding holds) change with it: give them their values in the patched program
    extra: list[ir.SOp] = []
    for nid, (node, values) in list(nodes.items()):
        extra += [x for x in _consistent_set(model, node, _write_time(model, node)) if x.id not in nodes]
    if extra:
        got = _downstream_values(model, tokens, {nid: v for nid, (_, v) in nodes.items()}, extra)
        for node in extra:
            nodes[node.id] = (node, got[node.id])
    writes: dict[int, list[tuple[int, np.ndarray]]] = {}
    for nid, (node, values) in nodes.items():
        for t, col, vec in _patch_plan(model, node, values, at_time):
            writes.setdefault(t, []).append((col, vec))
    hooks: dict[str, Callable] = {}
    for t, items in writes.items():
        def set_features(x: torch.Tensor, items=items) -> torch.Tensor:
            x = x.clone()
            for col, vec in items:
                x[:, 1:n + 1, col] = torch.as_tensor(vec, dtype=x.dtype, device=x.device)
            return x
        hooks[resid_hook(t)] = set_features
    for (layer, h), how in (heads or {}).items():
        name = f"blocks.{layer}.attn.hook_pattern" if isinstance(how, str) and how == "bos" else \
            f"blocks.{layer}.attn.hook_z"
        prev = hooks.get(name)
        hooks[name] = _head_hook(h, how, prev)
    return hooks


def _head_hook(h: int, how: Any, prev: Optional[Callable]) -> Callable:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if prev is not None:
            x = prev(x)
        x = x.clone()
        if how is None or (isinstance(how, str) and how == "zero"):
            x[:, h] = 0.0
        elif isinstance(how, str) and how == "bos":
            x[:, h] = 0.0
            x[:, h, :, 0] = 1.0        # every query attends to BOS only: the empty selection
        elif callable(how):
            x[:, h] = how(x[:, h])
        else:
            x[:, h] = torch.as_tensor(how, dtype=x.dtype, device=x.device)
        return x
    return fn


def _check_heads(model, heads: Optional[Mapping[tuple[int, int], Any]]) -> None:
    for (layer, h), how in (heads or {}).items():
        if not 0 <= layer < model.num_layers or not 0 <= h < model.heads_per_layer[layer]:
            raise ValueError(f"the model has no head {h} in layer {layer} "
                             f"(heads per layer: {model.heads_per_layer})")
        if isinstance(how, str) and how not in ("zero", "bos"):
            raise ValueError(f"a head intervention is 'zero', 'bos', None, a tensor or a function; got {how!r}")


@torch.no_grad()
def run_patched(model, tokens: Tokens, patches: Optional[Mapping[SOpRef, Sequence[Any]]] = None,
                at_time: Optional[int] = None, heads: Optional[Mapping[tuple[int, int], Any]] = None,
                force: bool = False) -> list:
    """Run `model` on `tokens` with interventions; returns the decoded output.

    patches: {s-op name or node: new value per input position}. The s-op's own
        features are overwritten with the encoding of the new values right after they
        are written (or at residual time `at_time`, if later), so every later block
        reads the new values. S-ops computed from a patched one that the model writes no
        later than it (maps of the tokens that the embedding holds) are patched to match.
        A patch whose effect the interpreter could not predict (see `patch_problem`) is
        a ValueError unless `force`.
    heads: {(layer, head): intervention} on the head's output: "zero"/None (hook_z = 0),
        "bos" (the head attends only to BOS: an empty selection, so an aggregate gives
        its default), a tensor for hook_z[:, head] ([batch, pos, d_head]), or a function
        of it.
    """
    _check_heads(model, heads)
    hooks = patch_hooks(model, tokens, patches or {}, at_time, heads, force)
    ids, mask, lengths = model.encode([list(tokens)])
    logits = model.module(ids, mask, hooks=hooks)
    n = lengths[0]
    return model.output.decode(logits[0, 1:n + 1].float().cpu().numpy())


def head_of(model, sop: SOpRef) -> list[tuple[int, int]]:
    """The (layer, head) pairs that implement an aggregate or selector_width."""
    node = find_node(model, sop)
    return [(h.layer, h.index) for h in heads(model) if h.node.id == node.id]


__all__ = ["Sublayer", "Step", "HeadInfo", "MLPInfo", "sublayers", "resid_hook", "run_with_cache", "residuals",
           "named_probes", "find_node", "decode_layers", "decode_batch", "value_classes", "describe_candidates", "heads", "mlps", "attention_patterns",
           "substitute", "interpret_patched", "own_features", "patch_problem", "patch_hooks", "run_patched", "head_of"]
