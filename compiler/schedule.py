"""Stage 4: put every head and MLP block into the earliest layer its inputs allow.

Time 0 is the embedding; layer l's attention runs at time 2l+1 and its MLP at 2l+2.
A head can read anything written before its attention sublayer, an MLP anything
written before it (including its own layer's heads). Blocks in the same sublayer run
in parallel: heads share the attention sublayer, MLP blocks are concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .errors import CompileError
from .features import BOS, ONE, Feature
from .lower import HeadBlock, Lowered, MLPBlock, resolve
from .plan import attn_slot, mlp_slot


@dataclass
class Schedule:
    num_layers: int
    heads: list[list[HeadBlock]]      # per layer
    mlps: list[list[MLPBlock]]        # per layer
    producer_time: dict[int, int]     # feature uid -> time it is written


def _reads(block) -> list[Feature]:
    feats: list[Feature] = []
    if isinstance(block, HeadBlock):
        for q, k in block.terms:
            feats += resolve(q).features()
            feats += resolve(k).features()
        for _, lin, _ in block.values:
            feats += resolve(lin).features()
    else:
        for u in block.units:
            feats += resolve(u.pre).features()
    return feats


def _writes(block) -> list[Feature]:
    if isinstance(block, HeadBlock):
        return [f for f, _, _ in block.values]
    return [f for f, _, _ in block.outputs]


def schedule(lowered: Lowered) -> Schedule:
    blocks = list(lowered.heads) + list(lowered.mlps)
    producer: dict[int, object] = {}
    for block in blocks:
        for f in _writes(block):
            producer[f.uid] = block
    g = nx.DiGraph()
    for i, block in enumerate(blocks):
        g.add_node(i)
    index = {id(b): i for i, b in enumerate(blocks)}
    reads = [_reads(b) for b in blocks]
    for i, feats in enumerate(reads):
        for f in feats:
            p = producer.get(f.uid)
            if p is not None:
                g.add_edge(index[id(p)], i)
    if not nx.is_directed_acyclic_graph(g):  # pragma: no cover - lowering never makes cycles
        raise CompileError("internal: the blocks depend on each other in a cycle")
    time: dict[int, int] = {ONE.uid: 0, BOS.uid: 0}
    for e in lowered.embed:
        time[e.feature.uid] = 0
    for i in nx.topological_sort(g):
        block = blocks[i]
        t_in = max((time.get(f.uid, 0) for f in reads[i]), default=0)
        slot = attn_slot(t_in) if isinstance(block, HeadBlock) else mlp_slot(t_in)
        block.slot = slot
        for f in _writes(block):
            time[f.uid] = slot
    last = max((b.slot for b in blocks), default=0)
    num_layers = max(1, (last + 1) // 2)
    heads: list[list[HeadBlock]] = [[] for _ in range(num_layers)]
    mlps: list[list[MLPBlock]] = [[] for _ in range(num_layers)]
    for block in blocks:
        layer = (block.slot - 1) // 2
        (heads if isinstance(block, HeadBlock) else mlps)[layer].append(block)
    return Schedule(num_layers, heads, mlps, time)
