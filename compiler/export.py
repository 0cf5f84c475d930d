"""Export a compiled model: to TransformerLens (`HookedTransformer`) and to ONNX.

    import compiler
    tl = compiler.to_transformer_lens(model)             # pip install 'rasp-compiler[transformer-lens]'
    ids, mask, lengths = model.encode(["cab"])
    logits = tl(ids, return_type="logits")             # same logits as model.module(ids)
    model.output.decode(logits[0, 1:].detach().numpy())

    model.export_onnx("sort.onnx")                      # pip install 'rasp-compiler[onnx]'

TransformerLens needs one head count, head size and MLP width for every layer; a
compiled model uses exactly what each layer needs, so the export pads every layer to
the largest with zero weights (a zero head attends uniformly and writes nothing; a zero
MLP unit is never active). There is no LayerNorm, attention is bidirectional, and the
attention scale is carried over (TransformerLens divides q.k by `attn_scale`; our model
multiplies by `shape.attn_scale`, which is 1 for compiled models). Feed our token ids
(BOS = 1 first, `default_prepend_bos=False`); TransformerLens has no padding mask, so run
inputs of one length per batch.

The ONNX graph takes `tokens` (int64 [batch, pos]) and `mask` (bool [batch, pos], True
for real positions) and returns `logits` ([batch, pos, d_out]); batch and pos are dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Union

import torch


def to_transformer_lens(model, device: Union[str, torch.device, None] = None):
    """A `transformer_lens.HookedTransformer` computing the same logits as `model`."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as err:  # pragma: no cover - depends on the installed extra
        raise ImportError("to_transformer_lens needs TransformerLens 2.x or 3.x (with HookedTransformer): "
                          "pip install 'rasp-compiler[transformer-lens]'") from err
    module = getattr(model, "module", model)
    shape = module.shape
    n_heads = max(max(shape.n_heads, default=0), 1)
    d_head = max(max(shape.d_head, default=0), 1)
    d_mlp = max(max(shape.d_mlp, default=0), 1)
    cfg = HookedTransformerConfig(
        n_layers=shape.n_layers, d_model=shape.d_model, n_ctx=shape.n_ctx, d_head=d_head, n_heads=n_heads,
        d_mlp=d_mlp, d_vocab=shape.d_vocab, d_vocab_out=shape.d_out, act_fn="relu", normalization_type=None,
        attn_only=False, attention_dir="bidirectional", positional_embedding_type="standard",
        default_prepend_bos=False, use_attn_scale=True, attn_scale=1.0 / shape.attn_scale,
        original_architecture="rasp-compiler", device=str(device or module.W_E.device), dtype=torch.float32,
        init_weights=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # 3.x points to its 4.0 replacement
        tl = HookedTransformer(cfg)
    state = {k: v.clone() for k, v in tl.state_dict().items()}
    for k, v in state.items():
        if k.endswith(("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "b_in", "W_out", "b_out",
                       "W_E", "W_pos", "W_U", "b_U")):
            state[k] = torch.zeros_like(v)
    f = lambda t: t.detach().to(torch.float32).cpu()  # noqa: E731
    state["embed.W_E"] = f(module.W_E)
    state["pos_embed.W_pos"] = f(module.W_pos)
    state["unembed.W_U"] = f(module.W_U)
    state["unembed.b_U"] = f(module.b_U)
    for l, block in enumerate(module.blocks):
        p = f"blocks.{l}"
        if block.attn is not None:
            H, D = block.attn.n_heads, block.attn.d_head
            for name in ("W_Q", "W_K", "W_V"):
                state[f"{p}.attn.{name}"][:H, :, :D] = f(getattr(block.attn, name))
            for name in ("b_Q", "b_K", "b_V"):
                state[f"{p}.attn.{name}"][:H, :D] = f(getattr(block.attn, name))
            state[f"{p}.attn.W_O"][:H, :D, :] = f(block.attn.W_O)
            state[f"{p}.attn.b_O"] = f(block.attn.b_O)
        if block.mlp is not None:
            M = block.mlp.W_in.shape[1]
            state[f"{p}.mlp.W_in"][:, :M] = f(block.mlp.W_in)
            state[f"{p}.mlp.b_in"][:M] = f(block.mlp.b_in)
            state[f"{p}.mlp.W_out"][:M, :] = f(block.mlp.W_out)
            state[f"{p}.mlp.b_out"] = f(block.mlp.b_out)
    tl.load_state_dict(state, strict=True)
    tl.eval()
    return tl


class _OnnxWrapper(torch.nn.Module):
    def __init__(self, module) -> None:
        super().__init__()
        self.module = module

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.module(tokens, mask)


def export_onnx(model, path: Union[str, Path], opset: int = 17, dynamo: Optional[bool] = None) -> Path:
    """Write the model as an ONNX graph (inputs `tokens`, `mask`; output `logits`).

    Uses torch's TorchScript-based exporter (fast, needs only `onnx`) and falls back to
    the torch.export-based one (needs `onnxscript`) where the former is unavailable;
    `dynamo=True`/`False` picks one.
    """
    path = Path(path)
    ids, mask, _ = model.encode([list(model.vocab[:1]) * min(2, model.max_seq_len)])
    wrapper = _OnnxWrapper(model.module).eval()
    names = {"input_names": ["tokens", "mask"], "output_names": ["logits"]}
    errors = []
    for use_dynamo in ([dynamo] if dynamo is not None else [False, True]):
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if use_dynamo:
                    batch = torch.export.Dim("batch")
                    pos = torch.export.Dim("pos", min=1, max=model.max_seq_len + 1)
                    torch.onnx.export(wrapper, (ids, mask), str(path), opset_version=max(opset, 18), dynamo=True,
                                      dynamic_shapes={"tokens": {0: batch, 1: pos}, "mask": {0: batch, 1: pos}},
                                      verbose=False, **names)
                else:
                    torch.onnx.export(wrapper, (ids, mask), str(path), opset_version=opset, dynamo=False,
                                      dynamic_axes={"tokens": {0: "batch", 1: "pos"}, "mask": {0: "batch", 1: "pos"},
                                                    "logits": {0: "batch", 1: "pos"}}, **names)
            return path
        except (ImportError, TypeError, RuntimeError, NotImplementedError) as err:
            errors.append(f"{'torch.export' if use_dynamo else 'TorchScript'} exporter: {err}")
    raise RuntimeError("ONNX export failed (pip install 'rasp-compiler[onnx]'):\n  " + "\n  ".join(errors))
