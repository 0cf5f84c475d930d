"""Stage 6: dense weight tensors from the scheduled blocks and the layout.

Token ids: 0 is padding, 1 is BOS, 2.. are the vocabulary (in `vocab` order).
Position 0 holds BOS; input token i sits at position i+1.

Every head gets two extra dimensions besides its literal terms:
  * `const`: query reads `one`, key reads `bos` * bos_score, so the BOS key scores
    bos_score for every ordinary query (the fallback of an empty selection, or one
    more key for selector_width);
  * `self`: query reads `bos` * BOS_SELF_SCORE, key reads `bos`, so the BOS query
    attends to the BOS key only.
Because the BOS position only ever attends to itself, its residual stream is the same
for every input; we compute it here layer by layer and set the weights of the `bos`
feature so that BOS's query, key and value vectors are exactly what the construction
needs (zero literal terms, the default value, ...), whatever else the earlier layers
wrote at BOS.
"""

from __future__ import annotations


import numpy as np
import torch

from .features import BOS, ONE
from .lower import BOS_SELF_SCORE, SNAP_OFFSET, HeadBlock, Lowered, resolve
from .model import ModelShape, Transformer
from .residual import Layout
from .schedule import Schedule

PAD_ID, BOS_ID = 0, 1


def _fill_columns(mat: np.ndarray, reads: list, layout: Layout) -> None:
    """Add each (column, read) of `reads` into that column of `mat`, at its features' rows.
    (One np.add.at for the whole matrix, which adds in the terms' order as a loop would,
    repeated rows included: one call per column was a tenth of a small model's assembly.)"""
    rows, cols, vals = [], [], []
    for col, read in reads:
        terms = read.terms
        rows += [layout[f] for f in terms]
        cols += [col] * len(terms)
        vals += terms.values()
    if rows:
        np.add.at(mat, (rows, cols), vals)


def assemble(lowered: Lowered, sched: Schedule, lay: Layout) -> Transformer:
    d = lay.d_model
    V = len(lowered.vocab)
    N = lowered.max_seq_len
    n_heads, d_head, d_mlp = [], [], []
    for layer in range(sched.num_layers):
        heads = sched.heads[layer]
        n_heads.append(len(heads))
        # (a snap head has one more value dimension: its offset alone)
        d_head.append(max((max(len(h.terms) + 2, len(h.values) + (1 if h.snap else 0)) for h in heads), default=0))
        units = sum(len(m.units) for m in sched.mlps[layer])
        constant = any(bias != 0 for m in sched.mlps[layer] for _, _, bias in m.outputs)
        # an MLP whose table is constant has no units but still writes its bias
        d_mlp.append(max(units, 1) if constant else units)
    several = lowered.readout.several
    d_out = len(lowered.readout.reads) + (several is not None)
    shape = ModelShape(V + 2, N + 1, d, d_out, n_heads, d_head, d_mlp, attn_scale=1.0)

    W_E = np.zeros((V + 2, d))
    W_E[BOS_ID, lay[ONE]] = 1.0
    W_E[BOS_ID, lay[BOS]] = 1.0
    W_E[2:, lay[ONE]] = 1.0
    W_pos = np.zeros((N + 1, d))
    for e in lowered.embed:
        if e.where == "token":
            W_E[2:, lay[e.feature]] = e.vector
        else:
            W_pos[1:, lay[e.feature]] = e.vector
    x_bos = W_E[BOS_ID] + W_pos[0]

    params: dict[str, np.ndarray] = {"W_E": W_E, "W_pos": W_pos}
    for layer in range(sched.num_layers):
        heads = sched.heads[layer]
        if heads and d_head[layer] > 0:
            H, D = len(heads), d_head[layer]
            WQ, WK, WV = (np.zeros((H, d, D)) for _ in range(3))
            WO = np.zeros((H, D, d))
            for h, head in enumerate(heads):
                _head_weights(head, WQ[h], WK[h], WV[h], WO[h], lay, x_bos)
            attn_out = np.einsum("hd,hdm->m", np.einsum("m,hmd->hd", x_bos, WV), WO)
            x_bos = x_bos + attn_out
            prefix = f"blocks.{layer}.attn"
            params.update({f"{prefix}.W_Q": WQ, f"{prefix}.W_K": WK, f"{prefix}.W_V": WV, f"{prefix}.W_O": WO})
        mlps = sched.mlps[layer]
        if mlps and d_mlp[layer] > 0:
            M = d_mlp[layer]
            W_in = np.zeros((d, M))
            b_in = np.zeros(M)
            W_out = np.zeros((M, d))
            b_out = np.zeros(d)
            offset = 0
            for block in mlps:
                _fill_columns(W_in, [(offset + u, resolve(unit.pre)) for u, unit in enumerate(block.units)], lay)
                for u, unit in enumerate(block.units):
                    b_in[offset + u] = unit.bias
                for f, weights, bias in block.outputs:
                    for u, w in weights.items():
                        W_out[offset + u, lay[f]] += w
                    b_out[lay[f]] += bias
                offset += len(block.units)
            _silence_at_bos(W_in, b_in, x_bos, lay[BOS])
            x_bos = x_bos + np.maximum(x_bos @ W_in + b_in, 0.0) @ W_out + b_out
            prefix = f"blocks.{layer}.mlp"
            params.update({f"{prefix}.W_in": W_in, f"{prefix}.b_in": b_in, f"{prefix}.W_out": W_out,
                           f"{prefix}.b_out": b_out})
    W_U = np.zeros((d, d_out))
    _fill_columns(W_U, [(o, ref.read()) for o, ref in enumerate(lowered.readout.reads)], lay)
    if several is not None:         # (the last column: see Readout.several)
        W_U[lay[several[0]], d_out - 1] = 1.0
    params["W_U"] = W_U
    # (the float32 arrays themselves become the parameters: building zeros and filling them
    # took a tenth of a small program's compile)
    return Transformer(shape, {name: torch.from_numpy(w.astype(np.float32)) for name, w in params.items()})


def _silence_at_bos(W_in: np.ndarray, b_in: np.ndarray, x_bos: np.ndarray, bos: int) -> None:
    """Switch every MLP unit off at the BOS position, so that the MLP writes only its bias
    there. BOS's residual holds no program value, and a table evaluated on it extrapolates:
    one MLP wrote 303,094 there, whose float32 rounding (a few units) then broke the exact
    cancellation that sets BOS's key in a later head (its score came out 210, not 30, and
    outvoted every real match). The `bos` feature is 1 at BOS and 0 elsewhere, so the
    other positions are untouched; the margin dwarfs the float32 error of the sum."""
    pre = x_bos @ W_in + b_in
    scale = np.abs(x_bos) @ np.abs(W_in) + np.abs(b_in)
    W_in[bos, :] -= (np.maximum(pre, 0.0) + 1.0 + 1e-3 * scale) / x_bos[bos]


def _head_weights(head: HeadBlock, WQ: np.ndarray, WK: np.ndarray, WV: np.ndarray, WO: np.ndarray,
                  lay: Layout, x_bos: np.ndarray) -> None:
    T = len(head.terms)
    _fill_columns(WQ, [(j, resolve(q)) for j, (q, _) in enumerate(head.terms)], lay)
    _fill_columns(WK, [(j, resolve(k)) for j, (_, k) in enumerate(head.terms)], lay)
    const, self_dim = T, T + 1
    WQ[lay[ONE], const] += 1.0
    WQ[lay[BOS], self_dim] += BOS_SELF_SCORE
    WK[lay[BOS], self_dim] += 1.0
    _fill_columns(WV, [(v, resolve(lin)) for v, (_, lin, _) in enumerate(head.values)], lay)
    for v, (f, _, _) in enumerate(head.values):
        WO[v, lay[f]] = 1.0
    # make BOS's query, key and value exactly what the construction needs
    bos = lay[BOS]
    want_q = np.zeros(WQ.shape[1])
    want_q[self_dim] = BOS_SELF_SCORE
    want_k = np.zeros(WK.shape[1])
    want_k[const] = head.bos_score
    want_k[self_dim] = 1.0
    want_v = np.zeros(WV.shape[1])
    for v, (_, _, bos_value) in enumerate(head.values):
        want_v[v] = bos_value
    for W, want in ((WQ, want_q), (WK, want_k), (WV, want_v))[:2 if head.snap else 3]:
        W[bos, :] = 0.0
        got = x_bos @ W
        W[bos, :] = (want - got) / x_bos[bos]
    if head.snap:
        _snap_values(head, WV, WO, lay, x_bos)
    # (kept for compiler.bounds, which charges the float32 rounding of that cancellation)
    head.bos_inputs = (x_bos.copy(), WK, WV)


def _snap_values(head: HeadBlock, WV: np.ndarray, WO: np.ndarray, lay: Layout, x_bos: np.ndarray) -> None:
    """A snap head's values: each read plus SNAP_OFFSET (float32 rounds the sum to an
    integer), and one more dimension holding the offset alone, which W_O subtracts. Every
    sum has one term besides the offset, so no order of summation rounds it differently.
    At BOS the offset is taken away again, with the read's own integer part: BOS's value
    there is the read's small remainder (0 for the bias of a silenced MLP)."""
    shared = len(head.values)
    one, bos = lay[ONE], lay[BOS]
    for v, (f, _, _) in enumerate(head.values):
        WV[bos, v] = 0.0
        remainder_at_bos = float(x_bos @ WV[:, v])
        WV[one, v] += SNAP_OFFSET
        WV[bos, v] = -(SNAP_OFFSET * x_bos[one] + float(np.round(remainder_at_bos))) / x_bos[bos]
        WO[shared, lay[f]] = -1.0
    WV[one, shared] = SNAP_OFFSET
    WV[bos, shared] = -SNAP_OFFSET * x_bos[one] / x_bos[bos]
