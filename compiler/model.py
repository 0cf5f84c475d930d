"""A plain transformer (no LayerNorm) whose weights can be compiled or trained.

    x = W_E[token] + W_pos[position]
    for each layer:  x = x + Attn(x);  x = x + MLP(x)        (ReLU MLP)
    logits = x @ W_U + b_U

Weights use TransformerLens's shapes (W_Q: [heads, d_model, d_head], ...), so a model
exports directly. Layers may differ in head count, head size and MLP width (a
compiled model uses exactly what each layer needs; a trained one is usually uniform).
Everything is batched matrix multiplication: no Python loop over positions or heads.
This module knows tensors and shapes only; nothing here knows about RASP.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
from torch import nn

Hook = Callable[[torch.Tensor], Optional[torch.Tensor]]

# a product with at most this many outputs, from at least twice as many inputs, runs with
# its weight transposed in memory on CPU (see _affine)
SKINNY_OUTPUTS = 16


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ weight + bias for x of shape [rows, in]. CPU BLAS computes a product with few
    outputs from many inputs about 3x faster from the weight stored [out, in] (10,496 rows,
    78 -> 4: 150 against 470 µs; 160 -> 246 is 10 % slower that way, so only narrow
    outputs take it). The copy is of the weight alone; the arithmetic is float32 either way
    (compiler.bounds charges every sum for any order of summation)."""
    n_in, n_out = weight.shape
    if x.device.type == "cpu" and n_out <= SKINNY_OUTPUTS and n_in >= 2 * n_out:
        return torch.nn.functional.linear(x, weight.t().contiguous(), bias)
    return torch.addmm(bias, x, weight)


@dataclass
class ModelShape:
    d_vocab: int                 # token ids (including BOS and PAD)
    n_ctx: int                   # positions (including BOS)
    d_model: int
    d_out: int                   # readout size
    n_heads: list[int]           # per layer
    d_head: list[int]            # per layer
    d_mlp: list[int]             # per layer
    attn_scale: float = 1.0      # multiplies q.k (compiled: 1, trained: 1/sqrt(d_head))

    @property
    def n_layers(self) -> int:
        return len(self.n_heads)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("d_vocab", "n_ctx", "d_model", "d_out", "n_heads", "d_head",
                                              "d_mlp", "attn_scale")}

    @staticmethod
    def uniform(d_vocab: int, n_ctx: int, d_model: int, d_out: int, n_layers: int, n_heads: int,
                d_head: int, d_mlp: int) -> "ModelShape":
        return ModelShape(d_vocab, n_ctx, d_model, d_out, [n_heads] * n_layers, [d_head] * n_layers,
                          [d_mlp] * n_layers, attn_scale=1.0 / math.sqrt(max(1, d_head)))


Weights = Optional[dict[str, torch.Tensor]]


def _param(weights: Weights, name: str, *shape: int) -> nn.Parameter:
    """The parameter `name`: the given tensor (a compiled model's weights, so that a compile
    builds each tensor once) or zeros (to be trained or loaded)."""
    given = weights.get(name) if weights is not None else None
    if given is None:
        return nn.Parameter(torch.zeros(*shape))
    if tuple(given.shape) != shape:
        raise ValueError(f"{name}: weights of shape {tuple(given.shape)}, the model needs {shape}")
    return nn.Parameter(given)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int, scale: float,
                 weights: Weights = None, prefix: str = "") -> None:
        super().__init__()
        self.n_heads, self.d_head, self.scale = n_heads, d_head, scale
        self.W_Q = _param(weights, prefix + "W_Q", n_heads, d_model, d_head)
        self.W_K = _param(weights, prefix + "W_K", n_heads, d_model, d_head)
        self.W_V = _param(weights, prefix + "W_V", n_heads, d_model, d_head)
        self.W_O = _param(weights, prefix + "W_O", n_heads, d_head, d_model)
        self.b_Q = _param(weights, prefix + "b_Q", n_heads, d_head)
        self.b_K = _param(weights, prefix + "b_K", n_heads, d_head)
        self.b_V = _param(weights, prefix + "b_V", n_heads, d_head)
        self.b_O = _param(weights, prefix + "b_O", d_model)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, hooks: dict, prefix: str) -> torch.Tensor:
        B, T, M = x.shape
        H, D = self.n_heads, self.d_head
        # one matmul for queries, keys and values of every head
        w = torch.cat([self.W_Q, self.W_K, self.W_V], dim=0)          # [3H, M, D]
        w = w.permute(1, 0, 2).reshape(M, 3 * H * D)
        b = torch.cat([self.b_Q, self.b_K, self.b_V], dim=0).reshape(3 * H * D)
        qkv = _affine(x.reshape(B * T, M), w, b).reshape(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                # [B, H, T, D]
        watched = any(name.startswith(prefix + ".") for name in hooks)
        if not watched:
            z = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=key_mask[:, None, None, :], scale=self.scale)
        else:
            q = _hook(hooks, f"{prefix}.hook_q", q)
            k = _hook(hooks, f"{prefix}.hook_k", k)
            v = _hook(hooks, f"{prefix}.hook_v", v)
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
            scores = _hook(hooks, f"{prefix}.hook_attn_scores", scores)
            pattern = torch.softmax(scores, dim=-1)
            pattern = _hook(hooks, f"{prefix}.hook_pattern", pattern)
            z = torch.matmul(pattern, v)
            z = _hook(hooks, f"{prefix}.hook_z", z)
            if f"{prefix}.hook_result" in hooks:
                result = torch.einsum("bhtd,hdm->bhtm", z, self.W_O)
                result = _hook(hooks, f"{prefix}.hook_result", result)
                return result.sum(dim=1) + self.b_O
        out = _affine(z.permute(0, 2, 1, 3).reshape(B * T, H * D), self.W_O.reshape(H * D, M), self.b_O)
        return out.reshape(B, T, M)


class MLP(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, weights: Weights = None, prefix: str = "") -> None:
        super().__init__()
        self.W_in = _param(weights, prefix + "W_in", d_model, d_mlp)
        self.b_in = _param(weights, prefix + "b_in", d_mlp)
        self.W_out = _param(weights, prefix + "W_out", d_mlp, d_model)
        self.b_out = _param(weights, prefix + "b_out", d_model)

    def forward(self, x: torch.Tensor, hooks: dict, prefix: str) -> torch.Tensor:
        # addmm: the bias is added inside the matrix product (one pass over the output)
        lead = x.shape[:-1]
        pre = _affine(x.reshape(-1, x.shape[-1]), self.W_in, self.b_in).reshape(*lead, -1)
        pre = _hook(hooks, f"{prefix}.hook_pre", pre)
        # (in place unless a hook may keep `pre`, as run_with_cache does)
        post = _hook(hooks, f"{prefix}.hook_post", torch.relu(pre) if hooks else torch.relu_(pre))
        return _affine(post.reshape(-1, post.shape[-1]), self.W_out, self.b_out).reshape(*lead, -1)


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int, d_mlp: int, scale: float,
                 weights: Weights = None, prefix: str = "") -> None:
        super().__init__()
        self.attn = Attention(d_model, n_heads, d_head, scale, weights, prefix + "attn.") if n_heads > 0 else None
        self.mlp = MLP(d_model, d_mlp, weights, prefix + "mlp.") if d_mlp > 0 else None

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, hooks: dict, prefix: str) -> torch.Tensor:
        x = _hook(hooks, f"{prefix}.hook_resid_pre", x)
        if self.attn is not None:
            attn_out = _hook(hooks, f"{prefix}.hook_attn_out", self.attn(x, key_mask, hooks, f"{prefix}.attn"))
            x = x + attn_out
        x = _hook(hooks, f"{prefix}.hook_resid_mid", x)
        if self.mlp is not None:
            mlp_out = _hook(hooks, f"{prefix}.hook_mlp_out", self.mlp(x, hooks, f"{prefix}.mlp"))
            x = x + mlp_out
        return _hook(hooks, f"{prefix}.hook_resid_post", x)


@contextlib.contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """On CUDA, float32 products computed as float32: no TF32 (which `torch.set_float32_
    matmul_precision("high")` turns on for the whole process, with a 10-bit mantissa) and
    attention by the plain kernel (matmul, softmax, matmul), not a fused one whose
    arithmetic is the kernel's own. A compiled model's error bound assumes float32
    arithmetic. The settings are restored afterwards; elsewhere this does nothing."""
    if device.type != "cuda":
        yield
        return
    precision, cudnn_tf32 = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        with _plain_attention():
            yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cudnn.allow_tf32 = cudnn_tf32


def _plain_attention():
    """scaled_dot_product_attention restricted to its math kernel (torch >= 2.3 has
    torch.nn.attention; 2.2 the older switch)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:             # pragma: no cover - torch 2.2
        return torch.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False, enable_math=True)
    return sdpa_kernel(SDPBackend.MATH)


def _hook(hooks: dict, name: str, value: torch.Tensor) -> torch.Tensor:
    fn = hooks.get(name)
    if fn is None:
        return value
    out = fn(value)
    return value if out is None else out


class Transformer(nn.Module):
    """The model class shared by compiled and trained transformers."""

    def __init__(self, shape: ModelShape, weights: Weights = None) -> None:
        """`weights`: tensors by parameter name (`blocks.0.attn.W_Q`, ...) to use as they are;
        every other parameter starts at zero."""
        super().__init__()
        self.shape = shape
        self.W_E = _param(weights, "W_E", shape.d_vocab, shape.d_model)
        self.W_pos = _param(weights, "W_pos", shape.n_ctx, shape.d_model)
        self.blocks = nn.ModuleList(
            Block(shape.d_model, h, d, m, shape.attn_scale, weights, f"blocks.{i}.")
            for i, (h, d, m) in enumerate(zip(shape.n_heads, shape.d_head, shape.d_mlp)))
        self.W_U = _param(weights, "W_U", shape.d_model, shape.d_out)
        self.b_U = _param(weights, "b_U", shape.d_out)

    def forward(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None,
                hooks: Optional[dict[str, Hook]] = None) -> torch.Tensor:
        """tokens: [batch, pos] ids; mask: [batch, pos] True for real (non-pad) positions."""
        hooks = hooks or {}
        if mask is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        with full_float32(tokens.device):
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            embed = _hook(hooks, "hook_embed", self.W_E[tokens])
            pos = _hook(hooks, "hook_pos_embed", self.W_pos[positions][None, :, :].expand_as(embed))
            x = embed + pos
            for i, block in enumerate(self.blocks):
                x = block(x, mask, hooks, f"blocks.{i}")
            x = _hook(hooks, "hook_resid_final", x)
            return _affine(x.reshape(-1, x.shape[-1]), self.W_U, self.b_U).reshape(*x.shape[:-1], -1)

    def run_with_cache(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       hooks: Optional[dict[str, Hook]] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and every intermediate activation, named as in TransformerLens."""
        cache: dict[str, torch.Tensor] = {}
        user = dict(hooks or {})

        def saver(name: str) -> Hook:
            def fn(t: torch.Tensor) -> torch.Tensor:
                if name in user:
                    out = user[name](t)
                    t = t if out is None else out
                cache[name] = t.detach()
                return t
            return fn

        names = ["hook_embed", "hook_pos_embed", "hook_resid_final"]
        for i, block in enumerate(self.blocks):
            p = f"blocks.{i}"
            names += [f"{p}.hook_resid_pre", f"{p}.hook_resid_mid", f"{p}.hook_resid_post"]
            if block.attn is not None:
                names += [f"{p}.hook_attn_out"] + [f"{p}.attn.{h}" for h in
                                                    ("hook_q", "hook_k", "hook_v", "hook_attn_scores",
                                                     "hook_pattern", "hook_z")]
            if block.mlp is not None:
                names += [f"{p}.hook_mlp_out", f"{p}.mlp.hook_pre", f"{p}.mlp.hook_post"]
        all_hooks = {n: saver(n) for n in names}
        for n, fn in user.items():
            if n not in all_hooks:
                all_hooks[n] = fn
        logits = self.forward(tokens, mask, all_hooks)
        return logits, cache

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
