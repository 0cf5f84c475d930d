"""Pictures of a compiled model: its dataflow graph and its attention maps (matplotlib, Agg).

    from compiler import plots
    plots.save_graph(model, "sort.svg")                    # nodes coloured by where they run
    plots.save_attention_maps(model, "cabbad", "attn/")    # one PNG per head

Every function takes the model returned by `compiler.compile` (it needs the compilation
for names and sources) and returns or writes matplotlib figures; nothing opens a window.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from rasp import ir

from . import inspect

EMBED_COLOR = "#9ecae1"
VIRTUAL_COLOR = "#f0f0f0"
CONST_COLOR = "#d9d9d9"


def _pyplot():
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")           # files only: never a window
    import matplotlib.pyplot as plt
    return plt


# ---- where each node runs ----------------------------------------------------------------

def placements(model) -> dict[int, tuple[str, int]]:
    """{node id: (placement label, residual time)} for every node of the compiled graph.

    Labels: "embedding", "layer l attention", "layer l MLP", "constant", "virtual (no block)".
    An s-op runs in the sublayer that writes its value (a selector_width in its decoding
    MLP); a selector in the attention sublayer of the first head that uses it.
    """
    comp = inspect._need_comp(model)
    slot: dict[int, int] = {}
    for layer in range(comp.schedule.num_layers):
        for head in comp.schedule.heads[layer]:
            for nid in [head.node.id] + [f.sop_id for f, _, _ in head.values if f.sop_id is not None]:
                slot[nid] = max(slot.get(nid, 0), head.slot)
        for block in comp.schedule.mlps[layer]:
            slot[block.node.id] = max(slot.get(block.node.id, 0), block.slot)
    sel_slot: dict[int, int] = {}
    for layer in range(comp.schedule.num_layers):
        for head in comp.schedule.heads[layer]:
            if head.selector is None:
                continue
            stack = [head.selector]
            while stack:
                node = stack.pop()
                if isinstance(node, ir.Selector) and node.id not in sel_slot:
                    sel_slot[node.id] = head.slot
                    stack.extend(comp.graph.children(node))
    out = {}
    for node in comp.graph.nodes():
        nid = node.id
        if isinstance(node, ir.Selector):
            t = sel_slot.get(nid)
            out[nid] = (_slot_label(t), t) if t is not None else ("virtual (no block)", -1)
            continue
        kind = comp.plan.kind.get(nid)
        if nid in slot:
            out[nid] = (_slot_label(slot[nid]), slot[nid])
        elif kind in ("embed_tok", "embed_pos") or isinstance(node, (ir.Tokens, ir.Indices)):
            out[nid] = ("embedding", 0)
        elif kind == "const":
            out[nid] = ("constant", -1)
        else:
            out[nid] = ("virtual (no block)", -1)
    return out


def _slot_label(t: int) -> str:
    if t == 0:
        return "embedding"
    layer = (t - 1) // 2
    return f"layer {layer} attention" if t % 2 == 1 else f"layer {layer} MLP"


def _colors(num_layers: int) -> dict[str, str]:
    plt = _pyplot()
    from matplotlib.colors import to_hex
    oranges, greens = plt.get_cmap("Oranges"), plt.get_cmap("Greens")
    out = {"embedding": EMBED_COLOR, "virtual (no block)": VIRTUAL_COLOR, "constant": CONST_COLOR}
    for layer in range(num_layers):
        shade = 0.3 + 0.5 * (layer / max(1, num_layers - 1))
        out[f"layer {layer} attention"] = to_hex(oranges(shade))
        out[f"layer {layer} MLP"] = to_hex(greens(shade))
    return out


def _layered_positions(graph, nodes_order: Sequence[int]) -> dict[int, tuple[float, float]]:
    """Top-to-bottom layout: rows are topological generations, ordered to cut crossings."""
    import networkx as nx
    generations = [list(g) for g in nx.topological_generations(graph)]
    rank = {nid: i for i, nid in enumerate(nodes_order)}
    pos: dict[int, tuple[float, float]] = {}
    for depth, gen in enumerate(generations):
        if depth == 0:
            gen.sort(key=lambda n: rank.get(n, 0))
        else:   # barycenter of the parents' x, then source order
            def bary(n: int) -> float:
                xs = [pos[p][0] for p in graph.predecessors(n) if p in pos]
                return sum(xs) / len(xs) if xs else 0.0
            gen.sort(key=lambda n: (bary(n), rank.get(n, 0)))
        width = len(gen)
        for i, nid in enumerate(gen):
            pos[nid] = (i - (width - 1) / 2.0, -float(depth))
    return pos


def _node_label(node: ir.Node) -> str:
    name = node.name if len(node.name) <= 18 else node.name[:17] + "…"
    if isinstance(node, ir.Select):
        kind = f"select {node.ir_predicate.label}"
    elif isinstance(node, ir.Selector):
        kind = node.kind.replace("_", " ")
    else:
        kind = {"selector_width": "width", "constant": "const"}.get(node.kind, node.kind)
    if name == kind or name.startswith(kind.split(" ")[0] + "_"):
        return name if kind.split(" ")[0] == name.split("_")[0] and not isinstance(node, ir.Select) \
            else f"{name}\n({kind})"
    return f"{name}\n({kind})"


def graph_figure(model, title: Optional[str] = None):
    """The dataflow graph, nodes coloured by the sublayer they are compiled into."""
    import networkx as nx
    plt = _pyplot()
    from matplotlib.patches import Patch
    comp = inspect._need_comp(model)
    g = comp.graph.graph
    nodes = comp.graph.nodes()
    place = placements(model)
    colors = _colors(model.num_layers)
    pos = _layered_positions(g, [n.id for n in nodes])
    xs = [p[0] for p in pos.values()] or [0.0]
    depth = -min((p[1] for p in pos.values()), default=0.0) + 1
    span_x = max(xs) - min(xs) + 1
    fig_w = min(40.0, max(7.0, 1.9 * span_x))
    fig_h = min(40.0, max(4.0, 1.25 * depth + 1.5))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    labels = {node.id: _node_label(node) for node in nodes}
    sops = [n.id for n in nodes if isinstance(n, ir.SOp)]
    sels = [n.id for n in nodes if isinstance(n, ir.Selector)]
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=10, edge_color="#888888",
                           node_size=1800, width=1.0)
    for ids, shape in ((sops, "o"), (sels, "D")):
        if ids:
            nx.draw_networkx_nodes(g, pos, nodelist=ids, ax=ax, node_shape=shape, node_size=1800,
                                   node_color=[colors.get(place[i][0], VIRTUAL_COLOR) for i in ids],
                                   edgecolors=["#d62728" if i == comp.graph.output.id else "#444444" for i in ids],
                                   linewidths=[2.5 if i == comp.graph.output.id else 1.0 for i in ids])
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7)
    used = list(dict.fromkeys(place[n.id][0] for n in sorted(nodes, key=lambda n: place[n.id][1])))
    order = ["embedding"] + [k for k in colors if k.startswith("layer")] + ["constant", "virtual (no block)"]
    handles = [Patch(facecolor=colors[k], edgecolor="#444444", label=k) for k in order if k in used]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
              title="compiled into", title_fontsize=9)
    ax.set_title(title or f"dataflow graph of {comp.graph.output.name} "
                          f"({model.num_layers} layers; circles: s-ops, diamonds: selectors)", fontsize=10)
    ax.margins(0.08)
    ax.axis("off")
    fig.tight_layout()
    return fig


def save_graph(model, path: Union[str, Path], title: Optional[str] = None) -> Path:
    """Write the graph picture; the format follows the suffix (.svg, .png, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"the graph is written as .svg, .png or .pdf, not {path.suffix or 'no suffix'!r}")
    plt = _pyplot()
    fig = graph_figure(model, title)
    try:
        fig.savefig(path, format=fmt, dpi=110)
    finally:
        plt.close(fig)
    return path


# ---- attention maps ----------------------------------------------------------------------

def _show(t: Any) -> str:
    if isinstance(t, float) and t == int(t):
        return str(int(t)) if abs(t) < 1e6 else f"{t:g}"
    text = str(t)
    return text if len(text) <= 6 else text[:5] + "…"


def attention_figure(pattern: np.ndarray, tokens: Sequence[Any], head: "inspect.HeadInfo"):
    """One head's attention weights (queries down, keys across; row 0 / column 0 is BOS)."""
    plt = _pyplot()
    n = len(tokens)
    ticks = ["BOS"] + [_show(t) for t in tokens]
    size = min(12.0, max(4.0, 0.45 * (n + 1) + 2.5))
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(pattern, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n + 1), ticks, rotation=90 if any(len(t) > 2 for t in ticks[1:]) else 0, fontsize=8)
    ax.set_yticks(range(n + 1), ticks, fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    if n <= 14:
        for q in range(n + 1):
            for k in range(n + 1):
                w = pattern[q, k]
                if w >= 0.005:
                    ax.text(k, q, f"{w:.2f}".rstrip("0").rstrip("."), ha="center", va="center", fontsize=6,
                            color="white" if w > 0.5 else "#222222")
    where = f"line {head.line}" if head.line is not None else head.location
    select = head.select if len(head.select) <= 70 else head.select[:69] + "…"
    ax.set_title(f"{head.name} ({head.label})\n{select}\n{where}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def save_attention_maps(model, tokens: Sequence[Any], outdir: Union[str, Path]) -> list[Path]:
    """One PNG per head (`L{layer}H{head}.png`) of its attention on `tokens`."""
    plt = _pyplot()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tokens = list(tokens)
    patterns = inspect.attention_patterns(model, tokens)
    paths = []
    for head in inspect.heads(model):
        fig = attention_figure(patterns[(head.layer, head.index)], tokens, head)
        path = outdir / f"{head.name}.png"
        try:
            fig.savefig(path, format="png", dpi=100)
        finally:
            plt.close(fig)
        paths.append(path)
    return paths


def figure_bytes(fig, fmt: str = "png", dpi: int = 100) -> bytes:
    """A figure as PNG or SVG bytes (and closes it)."""
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
