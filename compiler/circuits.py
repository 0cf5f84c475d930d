"""Compare a learned transformer's circuits with the compiled one's.

    from compiler import circuits, load
    from compiler.learn import load_learned
    report = circuits.compare(load("hist.safetensors"), load_learned("runs/hist"), sop, program=prog)
    report.summary          # mean matched head similarity, mean IIA, ...
    report.write("compare/hist")   # CSV + markdown tables and PNG plots

Three views, each a table and a plot:

* **Heads.** Every head's attention pattern on the same inputs, compared as
  `similarity = 1 - mean total-variation distance` between the two heads' attention
  rows. A row is one query position's distribution over keys; we use the real query
  positions (the input tokens, not BOS or padding) and all real keys including BOS
  (both kinds of model park "attend to nothing" on BOS, so it belongs to the
  distribution). The total-variation distance 0.5 * sum |p - q| is the share of
  attention mass that sits on different keys, so the similarity is directly readable
  ("83 % of the attention lands on the same keys"), lies in [0, 1], is 1 exactly when
  the patterns agree, and (unlike a correlation) is defined for constant patterns such
  as uniform attention. The Pearson correlation of the flattened patterns is reported
  alongside. Heads are then matched one to one by the Hungarian algorithm (maximum
  total similarity, `scipy.optimize.linear_sum_assignment`).
* **Probes.** For every s-op of the program (named top-level s-ops and every IR s-op
  node the output depends on) and every residual stream of the learned model (the
  embedding and each block's output), a multinomial logistic-regression probe is fit
  on the residual vectors of training inputs and scored on held-out inputs (accuracy
  over token positions; the majority-class rate is given as the floor). Logistic rather
  than least squares: a value stored as a scalar with several levels (a count, 1/(n+1))
  is decodable by a softmax readout but not by one-vs-rest least squares. The compiled
  model's residuals get the same probes, and the compiled layer from which its exact
  probe reads the s-op is shown for reference.
* **Interchange interventions.** For each matched head pair, random inputs A and B
  with B at least as long as A: run each model on A with that head's output (`hook_z`,
  at A's positions) replaced by its value on B. The interchange-intervention accuracy
  (IIA, as in InterpBench) is the share of token positions where the learned model's
  patched output equals the compiled model's patched output. Because many patches
  change nothing, we also give the share of positions where the compiled output
  changed, the IIA restricted to those, and the share where the learned output changed.
  (Probes use a weak L2 penalty, 1e-7 on standardised inputs: compiled models store
  many values as one number with evenly spaced levels, which a softmax reads only with
  large weights.)
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

import rasp
from rasp import ir
from rasp.errors import RaspError, RaspInputError

from .learn import Encoder, LearnedModel, ValueIndex, torch_threads, value_key
from .model import Transformer
from .runtime import CompiledModel

Subject = Union[CompiledModel, LearnedModel]


# ---- attention patterns and their similarity ------------------------------------------------

def heads_of(module: Transformer) -> list[tuple[int, int]]:
    return [(l, h) for l, block in enumerate(module.blocks) if block.attn is not None
            for h in range(block.attn.n_heads)]


@torch.no_grad()
def attention_patterns(module: Transformer, ids: torch.Tensor,
                       mask: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """{(layer, head): pattern [batch, query, key]} in float64."""
    _, cache = module.run_with_cache(ids, mask)
    out = {}
    for l, h in heads_of(module):
        out[(l, h)] = cache[f"blocks.{l}.attn.hook_pattern"][:, h].double()
    return out


def _query_mask(mask: torch.Tensor) -> torch.Tensor:
    q = mask.clone()
    q[:, 0] = False          # BOS is not an input position
    return q


def pattern_similarity(p: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - mean total-variation distance between the attention rows of real query positions."""
    qm = _query_mask(mask).to(p.device)
    tv = 0.5 * (p - q).abs().sum(-1)                      # [batch, query]
    return float(1.0 - tv[qm].mean()) if bool(qm.any()) else float("nan")


def similarity_matrix(pa: dict, pb: dict, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(1 - mean TV, Pearson correlation) for every head of `pa` against every head of `pb`."""
    ka, kb = list(pa), list(pb)
    qm = _query_mask(mask)
    full = qm[:, :, None] & mask[:, None, :]              # real query x real key entries
    sim = np.zeros((len(ka), len(kb)))
    cor = np.zeros((len(ka), len(kb)))
    flat_b = [pb[k][full] for k in kb]
    for i, a in enumerate(ka):
        fa = pa[a][full]
        for j, b in enumerate(kb):
            sim[i, j] = pattern_similarity(pa[a], pb[b], mask)
            cor[i, j] = _pearson(fa, flat_b[j])
    return sim, cor


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = float(x.norm() * y.norm())
    return float((x * y).sum()) / den if den > 1e-12 else float("nan")


def match_heads(sim: np.ndarray) -> list[tuple[int, int]]:
    """The one-to-one matching of rows to columns with the largest total similarity."""
    from scipy.optimize import linear_sum_assignment
    if sim.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.nan_to_num(sim, nan=0.0), maximize=True)
    return list(zip(rows.tolist(), cols.tolist()))


# ---- inputs and outputs ------------------------------------------------------------------------

def _decoder(subject: Subject):
    if isinstance(subject, CompiledModel):
        return subject.output.decode
    return subject.decode


@torch.no_grad()
def _outputs(subject: Subject, ids: torch.Tensor, mask: torch.Tensor, lengths: Sequence[int],
             hooks: Optional[dict] = None) -> list[list[tuple]]:
    """Decoded outputs (as value keys) of every input, optionally under hooks."""
    logits = subject.module(ids, mask, hooks=hooks).float().cpu().numpy()
    decode = _decoder(subject)
    return [[value_key(v) for v in decode(logits[b, 1:n + 1])] for b, n in enumerate(lengths)]


def random_inputs(vocab: Sequence[Any], max_len: int, n: int, rng: np.random.Generator,
                  lengths: Optional[Sequence[int]] = None) -> list[list]:
    arr = np.empty(len(vocab), dtype=object)
    arr[:] = list(vocab)
    if lengths is None:
        lengths = rng.integers(1, max_len + 1, size=n)
    toks = rng.integers(0, len(vocab), size=(len(lengths), max_len))
    words = arr[toks]
    return [list(words[b, :lengths[b]]) for b in range(len(lengths))]


def _check_compatible(a: Subject, b: Subject) -> None:
    if [value_key(v) for v in a.vocab] != [value_key(v) for v in b.vocab]:
        raise RaspInputError(f"the models have different vocabularies: {a.vocab!r} vs {b.vocab!r}")
    if a.module.shape.n_ctx != b.module.shape.n_ctx:
        raise RaspInputError(f"the models have different context sizes: {a.max_seq_len} vs {b.max_seq_len}")


# ---- probes -------------------------------------------------------------------------------------

def probe_nodes(sop: ir.SOp, program: Any = None) -> list[ir.SOp]:
    """The output's s-op ancestors (and itself) plus the program's named top-level s-ops,
    every node after its children; constants are left out (they carry no information)."""
    roots: list[ir.Node] = [sop]
    if program is not None:
        roots += list(program.sops().values())
    out: list[ir.SOp] = []
    for node in ir.topological_order(roots):
        if isinstance(node, ir.SOp) and not isinstance(node, (ir.Constant, ir.ConstantSequence)):
            out.append(node)
    return out


def residual_streams(module: Transformer, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"embed": ..., "L0": resid_post of block 0, ...}, each [batch, pos, d_model]."""
    with torch.no_grad():
        _, cache = module.run_with_cache(ids, mask)
    out = {"embed": (cache["hook_embed"] + cache["hook_pos_embed"]).double()}
    for l in range(len(module.blocks)):
        out[f"L{l}"] = cache[f"blocks.{l}.hook_resid_post"].double()
    return out


def fit_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
              n_classes: int, l2: float = 1e-7, max_iter: int = 300) -> float:
    """Held-out accuracy of a multinomial logistic regression (standardised inputs, L-BFGS)."""
    if len(y_test) == 0:
        return float("nan")
    if n_classes <= 1:
        return 1.0
    mean = x_train.mean(0, keepdim=True)
    std = x_train.std(0, keepdim=True).clamp_min(1e-6)
    xtr = (x_train - mean) / std
    xte = (x_test - mean) / std
    W = torch.zeros(xtr.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ W + b, y_train) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xte @ W + b).argmax(-1)
    return float((pred == y_test).double().mean())


@dataclass
class ProbeRow:
    node: str
    kind: str
    n_values: int
    baseline: float                          # majority-class rate on the held-out positions
    learned: dict[str, float]                # layer -> held-out accuracy
    compiled: dict[str, float]               # same probes on the compiled model
    compiled_layer: Optional[str] = None     # where the compiled model's exact probe reads it
    learned_first: Optional[str] = None      # first learned layer with accuracy >= 0.99


def _node_labels(nodes: Sequence[ir.SOp], inputs: list[list]) -> dict[int, list]:
    try:
        return rasp.evaluate_all(list(nodes), inputs)
    except RaspError:
        out: dict[int, list] = {}
        for node in nodes:
            vals = []
            for x in inputs:
                try:
                    vals.append(rasp.evaluate(node, x))
                except RaspError:
                    vals.append(None)
            out[node.id] = vals
        return out


def linear_probes(learned: Subject, compiled: Optional[Subject], nodes: Sequence[ir.SOp], n_train: int = 600,
                  n_test: int = 400, seed: int = 0, compiled_times: Optional[dict[int, int]] = None) -> list[ProbeRow]:
    rng = np.random.default_rng([seed, 2])
    vocab, max_len = learned.vocab, learned.max_seq_len
    train_in = random_inputs(vocab, max_len, n_train, rng)
    test_in = random_inputs(vocab, max_len, n_test, rng)
    enc = Encoder(vocab, max_len)
    streams = {}
    for which, subject in (("learned", learned), ("compiled", compiled)):
        if subject is None:
            continue
        per = {}
        for split, inputs in (("train", train_in), ("test", test_in)):
            ids, mask, lengths = enc.encode(inputs, width=max_len + 1)
            res = residual_streams(subject.module, ids.to(subject.module.W_E.device),
                                   mask.to(subject.module.W_E.device))
            pos = _positions(lengths)
            per[split] = {k: v.cpu()[pos[:, 0], pos[:, 1]] for k, v in res.items()}
        streams[which] = per
    labels_train = _node_labels(nodes, train_in)
    labels_test = _node_labels(nodes, test_in)
    rows = []
    for node in nodes:
        index = ValueIndex()
        ytr = _flat_labels(labels_train[node.id], index, add=True)
        yte = _flat_labels(labels_test[node.id], index, add=False)
        keep_tr, keep_te = ytr >= 0, yte >= 0
        counts = np.bincount(ytr[keep_tr], minlength=len(index)) if keep_tr.any() else np.zeros(1)
        baseline = float((yte[keep_te] == int(np.argmax(counts))).mean()) if keep_te.any() else float("nan")
        result: dict[str, dict[str, float]] = {}
        for which, per in streams.items():
            result[which] = {}
            for layer in per["train"]:
                xtr = per["train"][layer][torch.from_numpy(keep_tr)]
                xte = per["test"][layer][torch.from_numpy(keep_te)]
                result[which][layer] = fit_probe(xtr, torch.from_numpy(ytr[keep_tr]), xte,
                                                 torch.from_numpy(yte[keep_te]), len(index))
        first = next((layer for layer, acc in result["learned"].items() if acc >= 0.99), None)
        ctime = None
        if compiled_times is not None and node.id in compiled_times:
            t = compiled_times[node.id]
            ctime = "embed" if t == 0 else f"L{(t - 1) // 2}"
        rows.append(ProbeRow(node.name, node.kind, len(index), baseline, result["learned"],
                             result.get("compiled", {}), ctime, first))
    return rows


def _positions(lengths: Sequence[int]) -> torch.Tensor:
    return torch.tensor([(b, i + 1) for b, n in enumerate(lengths) for i in range(n)], dtype=torch.long)


def _flat_labels(values: list, index: ValueIndex, add: bool) -> np.ndarray:
    out = []
    for seq in values:
        if seq is None:
            continue
        for v in seq:
            out.append(index.add(v) if add else index.get(v))
    return np.array(out, dtype=np.int64)


# ---- interchange interventions -------------------------------------------------------------

@dataclass
class InterchangeRow:
    learned_head: str
    compiled_head: str
    similarity: float
    iia: float                 # share of positions: learned patched output == compiled patched output
    changed: float             # share of positions where the patch changed the compiled output
    iia_changed: float         # IIA over those positions only
    learned_changed: float     # share of positions where the patch changed the learned output
    positions: int


def _patch(layer: int, head: int, source: torch.Tensor):
    name = f"blocks.{layer}.attn.hook_z"

    def fn(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, head] = source[:, head]
        return z
    return {name: fn}


@torch.no_grad()
def interchange(learned: Subject, compiled: Subject, pairs: Sequence[tuple[tuple[int, int], tuple[int, int], float]],
                n: int = 512, seed: int = 0) -> list[InterchangeRow]:
    """IIA of each (learned head, compiled head, similarity) pair on `n` input pairs (A, B)."""
    rng = np.random.default_rng([seed, 3])
    vocab, max_len = compiled.vocab, compiled.max_seq_len
    lengths = rng.integers(1, max_len + 1, size=n)
    a_in = random_inputs(vocab, max_len, n, rng, lengths)
    # B is at least as long as A, so every patched position of A is a real position of B;
    # lengths may differ (with equal lengths a head that only counts the input would
    # never change anything)
    b_in = random_inputs(vocab, max_len, n, rng, rng.integers(lengths, max_len + 1))
    enc = Encoder(vocab, max_len)
    rows = []
    z_cache = {}
    for name, subject in (("learned", learned), ("compiled", compiled)):
        dev = subject.module.W_E.device
        a_ids, a_mask, lens = enc.encode(a_in, width=max_len + 1)
        b_ids, b_mask, _ = enc.encode(b_in, width=max_len + 1)
        a_ids, a_mask, b_ids, b_mask = (t.to(dev) for t in (a_ids, a_mask, b_ids, b_mask))
        _, cache_b = subject.module.run_with_cache(b_ids, b_mask)
        z_cache[name] = (a_ids, a_mask, lens, cache_b, _outputs(subject, a_ids, a_mask, lens))
    for (ll, lh), (cl, ch), sim in pairs:
        a_ids, a_mask, lens, cache_b, clean_l = z_cache["learned"]
        out_l = _outputs(learned, a_ids, a_mask, lens, _patch(ll, lh, cache_b[f"blocks.{ll}.attn.hook_z"]))
        a_ids_c, a_mask_c, _, cache_bc, clean_c = z_cache["compiled"]
        out_c = _outputs(compiled, a_ids_c, a_mask_c, lens, _patch(cl, ch, cache_bc[f"blocks.{cl}.attn.hook_z"]))
        same = changed = same_changed = l_changed = total = 0
        for pl, pc, cc, cl_ in zip(out_l, out_c, clean_c, clean_l):
            for x, y, c0, l0 in zip(pl, pc, cc, cl_):
                total += 1
                same += x == y
                if y != c0:
                    changed += 1
                    same_changed += x == y
                l_changed += x != l0
        rows.append(InterchangeRow(f"L{ll}.H{lh}", f"L{cl}.H{ch}", sim, same / max(1, total), changed / max(1, total),
                                   same_changed / changed if changed else float("nan"), l_changed / max(1, total),
                                   total))
    return rows


@torch.no_grad()
def agreement(a: Subject, b: Subject, n: int = 512, seed: int = 0) -> tuple[float, float]:
    """(token, sequence) agreement of the two models' outputs on random inputs."""
    rng = np.random.default_rng([seed, 4])
    inputs = random_inputs(a.vocab, a.max_seq_len, n, rng)
    enc = Encoder(a.vocab, a.max_seq_len)
    ids, mask, lens = enc.encode(inputs, width=a.max_seq_len + 1)
    oa = _outputs(a, ids.to(a.module.W_E.device), mask.to(a.module.W_E.device), lens)
    ob = _outputs(b, ids.to(b.module.W_E.device), mask.to(b.module.W_E.device), lens)
    tok = sum(x == y for s, t in zip(oa, ob) for x, y in zip(s, t)) / max(1, sum(lens))
    seq = sum(s == t for s, t in zip(oa, ob)) / max(1, len(oa))
    return tok, seq


# ---- the report --------------------------------------------------------------------------------

@dataclass
class Report:
    learned_heads: list[str]
    compiled_heads: list[str]
    similarity: np.ndarray
    correlation: np.ndarray
    matches: list[tuple[int, int]]
    probes: list[ProbeRow]
    interchange: list[InterchangeRow]
    summary: dict = field(default_factory=dict)

    # tables as lists of rows (header first)
    def matching_table(self) -> list[list]:
        rows = [["learned head", "compiled head", "similarity (1-TV)", "pearson"]]
        for i, j in self.matches:
            rows.append([self.learned_heads[i], self.compiled_heads[j], self.similarity[i, j],
                         self.correlation[i, j]])
        return rows

    def similarity_table(self) -> list[list]:
        rows = [["learned \\ compiled"] + self.compiled_heads]
        for i, name in enumerate(self.learned_heads):
            rows.append([name] + list(self.similarity[i]))
        return rows

    def probe_table(self) -> list[list]:
        layers = list(self.probes[0].learned) if self.probes else []
        clayers = list(self.probes[0].compiled) if self.probes else []
        rows = [["s-op", "kind", "values", "majority"] + [f"learned {l}" for l in layers]
                + ["learned first >=.99", "compiled exact at"] + [f"compiled {l}" for l in clayers]]
        for p in self.probes:
            rows.append([p.node, p.kind, p.n_values, p.baseline] + [p.learned[l] for l in layers]
                        + [p.learned_first or "-", p.compiled_layer or "-"] + [p.compiled[l] for l in clayers])
        return rows

    def interchange_table(self) -> list[list]:
        rows = [["learned head", "compiled head", "similarity", "IIA", "compiled changed", "IIA where changed",
                 "learned changed", "positions"]]
        for r in self.interchange:
            rows.append([r.learned_head, r.compiled_head, r.similarity, r.iia, r.changed, r.iia_changed,
                         r.learned_changed, r.positions])
        return rows

    def tables(self) -> dict[str, tuple[str, list[list]]]:
        return {"head_matching": ("Matched heads (Hungarian, max total similarity)", self.matching_table()),
                "head_similarity": ("Attention similarity, every learned head x every compiled head",
                                    self.similarity_table()),
                "probes": ("Linear probes: held-out accuracy of reading each s-op from the residual stream",
                           self.probe_table()),
                "interchange": ("Interchange interventions on matched heads", self.interchange_table())}

    def print(self, console=None) -> None:
        from rich.console import Console
        from rich.table import Table
        console = console or Console()
        for key, (title, rows) in self.tables().items():
            table = Table(title=title)
            for h in rows[0]:
                table.add_column(str(h))
            for row in rows[1:]:
                table.add_row(*[_fmt(v) for v in row])
            console.print(table)
        console.print("summary: " + ", ".join(f"{k} {_fmt(v)}" for k, v in self.summary.items()
                                              if not isinstance(v, (dict, list))))

    def write(self, out_dir: Union[str, Path]) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        md = ["# Learned vs compiled circuits", ""]
        for key, value in self.summary.items():
            if not isinstance(value, (dict, list)):
                md.append(f"- {key}: {_fmt(value)}")
        md.append("")
        for key, (title, rows) in self.tables().items():
            path = out / f"{key}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                for row in rows:
                    w.writerow([_csv(v) for v in row])
            written.append(path)
            md += [f"## {title}", "", _markdown(rows), "", f"![{key}]({key}.png)", ""]
        (out / "report.md").write_text("\n".join(md))
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2, default=str))
        written += [out / "report.md", out / "summary.json"]
        written += self.plot(out)
        return written

    def plot(self, out: Path) -> list[Path]:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
        paths = []

        # head similarity heatmap, matched pairs outlined (also saved as head_matching.png)
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * max(1, len(self.compiled_heads)),
                                        1.0 + 0.6 * max(1, len(self.learned_heads))))
        im = ax.imshow(self.similarity if self.similarity.size else np.zeros((1, 1)), vmin=0, vmax=1,
                       cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(self.compiled_heads)), self.compiled_heads, rotation=45)
        ax.set_yticks(range(len(self.learned_heads)), self.learned_heads)
        ax.set_xlabel("compiled head")
        ax.set_ylabel("learned head")
        for i in range(self.similarity.shape[0]):
            for j in range(self.similarity.shape[1]):
                ax.text(j, i, f"{self.similarity[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
        for i, j in self.matches:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_title("attention similarity (1 - TV); red: matched")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        for name in ("head_similarity", "head_matching"):
            fig.savefig(out / f"{name}.png", dpi=110)
            paths.append(out / f"{name}.png")
        plt.close(fig)

        # probes heatmap
        if self.probes:
            layers = list(self.probes[0].learned)
            clayers = list(self.probes[0].compiled)
            mats = [("learned", layers, np.array([[p.learned[l] for l in layers] for p in self.probes]))]
            if clayers:
                mats.append(("compiled", clayers, np.array([[p.compiled[l] for l in clayers] for p in self.probes])))
            fig, axes = plt.subplots(1, len(mats), figsize=(2 + 1.1 * sum(len(m[1]) for m in mats),
                                                            1.2 + 0.45 * len(self.probes)), squeeze=False)
            for ax, (title, cols, mat) in zip(axes[0], mats):
                ax.imshow(mat, vmin=0, vmax=1, cmap="magma", aspect="auto")
                ax.set_xticks(range(len(cols)), cols)
                ax.set_yticks(range(len(self.probes)), [p.node for p in self.probes])
                ax.set_title(f"{title} residual stream")
                for i in range(mat.shape[0]):
                    for j in range(mat.shape[1]):
                        ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center",
                                color="k" if mat[i, j] > 0.6 else "w", fontsize=8)
            fig.suptitle("probe accuracy (held out)")
            fig.tight_layout()
            fig.savefig(out / "probes.png", dpi=110)
            plt.close(fig)
            paths.append(out / "probes.png")

        # interchange bars
        fig, ax = plt.subplots(figsize=(max(5.0, 2 + 1.4 * len(self.interchange)), 3.5))
        labels = [f"{r.learned_head}\n~{r.compiled_head}" for r in self.interchange]
        x = np.arange(len(self.interchange))
        for k, (attr, name) in enumerate((("iia", "IIA"), ("iia_changed", "IIA where changed"),
                                          ("changed", "compiled changed"))):
            ax.bar(x + (k - 1) * 0.27, [np.nan_to_num(getattr(r, attr)) for r in self.interchange], 0.27,
                   label=name)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        ax.set_title("interchange interventions on matched heads")
        fig.tight_layout()
        fig.savefig(out / "interchange.png", dpi=110)
        plt.close(fig)
        paths.append(out / "interchange.png")
        return paths


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _csv(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _markdown(rows: list[list]) -> str:
    lines = ["| " + " | ".join(str(h) for h in rows[0]) + " |", "|" + "---|" * len(rows[0])]
    for row in rows[1:]:
        lines.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def compare(compiled: Subject, learned: Subject, sop: Optional[ir.SOp] = None, program: Any = None,
            n_inputs: int = 512, n_probe_train: int = 600, n_probe_test: int = 400, seed: int = 0,
            compiled_times: Optional[dict[int, int]] = None, baseline: Optional[Subject] = None,
            probe_compiled: bool = True, threads: Optional[int] = 1) -> Report:
    """Heads, probes and interchange interventions of `learned` against `compiled`.

    `sop` (and optionally the whole `program`) gives the s-ops to probe; without it the
    probe table is empty. `compiled_times` ({s-op id: residual time}, from a fresh
    compile's `program.probes`) adds where the compiled model writes each s-op.
    `baseline` (e.g. an untrained model) gets the same head matching and IIA, reported in
    the summary as the null reference. `probe_compiled=False` skips fitting the probes on
    the compiled model's residual stream. Runs with `threads` torch threads (see
    `learn.torch_threads`).
    """
    with torch_threads(threads):
        return _compare(compiled, learned, sop, program, n_inputs, n_probe_train, n_probe_test, seed,
                        compiled_times, baseline, probe_compiled)


def _compare(compiled: Subject, learned: Subject, sop: Optional[ir.SOp], program: Any, n_inputs: int,
             n_probe_train: int, n_probe_test: int, seed: int, compiled_times: Optional[dict[int, int]],
             baseline: Optional[Subject], probe_compiled: bool) -> Report:
    _check_compatible(compiled, learned)
    rng = np.random.default_rng([seed, 1])
    inputs = random_inputs(compiled.vocab, compiled.max_seq_len, n_inputs, rng)
    enc = Encoder(compiled.vocab, compiled.max_seq_len)
    ids, mask, _ = enc.encode(inputs, width=compiled.max_seq_len + 1)
    pc = attention_patterns(compiled.module, ids.to(compiled.module.W_E.device), mask.to(compiled.module.W_E.device))
    pl = attention_patterns(learned.module, ids.to(learned.module.W_E.device), mask.to(learned.module.W_E.device))
    pc = {k: v.cpu() for k, v in pc.items()}
    pl = {k: v.cpu() for k, v in pl.items()}
    sim, cor = similarity_matrix(pl, pc, mask)
    matches = match_heads(sim)
    lk, ck = list(pl), list(pc)
    names_l = [f"L{l}.H{h}" for l, h in lk]
    names_c = [f"L{l}.H{h}" for l, h in ck]
    pairs = [(lk[i], ck[j], float(sim[i, j])) for i, j in matches]
    iia_rows = interchange(learned, compiled, pairs, n=n_inputs, seed=seed)
    probes = linear_probes(learned, compiled if probe_compiled else None, probe_nodes(sop, program), n_probe_train,
                           n_probe_test, seed, compiled_times) if sop is not None else []
    tok, seq = agreement(learned, compiled, n_inputs, seed)
    summary: dict = {
        "learned_heads": len(lk), "compiled_heads": len(ck),
        "output_agreement_token": tok, "output_agreement_sequence": seq,
        "mean_matched_similarity": float(np.mean([sim[i, j] for i, j in matches])) if matches else float("nan"),
        "mean_iia": float(np.mean([r.iia for r in iia_rows])) if iia_rows else float("nan"),
        "mean_iia_where_changed": float(np.nanmean([r.iia_changed for r in iia_rows]))
        if iia_rows and any(not math.isnan(r.iia_changed) for r in iia_rows) else float("nan"),
    }
    if probes:
        finals = [p.learned[list(p.learned)[-1]] for p in probes]
        summary["mean_probe_acc_last_layer"] = float(np.mean(finals))
    if baseline is not None:
        pb = attention_patterns(baseline.module, ids, mask)
        bsim, _ = similarity_matrix(pb, pc, mask)
        bm = match_heads(bsim)
        bk = list(pb)
        brows = interchange(baseline, compiled, [(bk[i], ck[j], float(bsim[i, j])) for i, j in bm], n=n_inputs,
                            seed=seed)
        summary["baseline_mean_matched_similarity"] = \
            float(np.mean([bsim[i, j] for i, j in bm])) if bm else float("nan")
        summary["baseline_mean_iia"] = float(np.mean([r.iia for r in brows])) if brows else float("nan")
        summary["baseline_mean_iia_where_changed"] = float(np.nanmean([r.iia_changed for r in brows])) \
            if brows and any(not math.isnan(r.iia_changed) for r in brows) else float("nan")
    return Report(names_l, names_c, sim, cor, matches, probes, iia_rows, summary)


def compiled_probe_times(sop: ir.SOp, vocab: Sequence[Any], max_seq_len: int) -> Optional[dict[int, int]]:
    """{s-op id: residual time} from a fresh compile (None when the program does not compile)."""
    from . import compile as compile_sop
    from .errors import CompileError
    try:
        model = compile_sop(sop, vocab, max_seq_len)
        return {i: p.time for i, p in model.program.probes.items()}
    except CompileError:
        return None
