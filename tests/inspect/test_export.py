"""Export: TransformerLens HookedTransformer and ONNX (skipped when the extra is missing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import compiler

from inspect_helpers import compiled, random_inputs, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

EXPORT_PROGRAMS = ["sort", "reverse", "running_mean", "length", "dyck2", "shift_right"]


@pytest.mark.parametrize("name", EXPORT_PROGRAMS)
def test_transformer_lens_model_gives_the_same_outputs(name):
    pytest.importorskip("transformer_lens")
    model = compiled(name)
    tl = compiler.to_transformer_lens(model)
    from transformer_lens import HookedTransformer
    assert isinstance(tl, HookedTransformer)
    cfg = tl.cfg
    assert cfg.n_layers == model.num_layers and cfg.d_model == model.d_model
    assert cfg.n_heads == max(1, model.num_heads) and cfg.normalization_type is None and not cfg.attn_only
    inputs = random_inputs(name, 12, "tl")
    by_len: dict[int, list] = {}
    for t in inputs:
        by_len.setdefault(len(t), []).append(t)
    for n, batch in by_len.items():             # TransformerLens has no padding mask: one length per batch
        ids, mask, _ = model.encode(batch)
        with torch.no_grad():
            ours = model.module(ids, mask)
            theirs = tl(ids, return_type="logits")
        assert torch.allclose(ours, theirs, atol=1e-4), float((ours - theirs).abs().max())
        for b, tokens in enumerate(batch):
            assert compiler.same_output(model.output.decode(theirs[b, 1:n + 1].numpy()), model(tokens))
    # the cache has TransformerLens's names
    ids, _, _ = model.encode([inputs[0]])
    _, cache = tl.run_with_cache(ids)
    assert "blocks.0.hook_resid_post" in cache and "blocks.0.attn.hook_pattern" in cache


@pytest.mark.parametrize("name", ["sort", "running_mean", "dyck2"])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = compiled(name)
    path = tmp_path / f"{name}.onnx"
    assert model.export_onnx(path) == path
    import onnx
    onnx.checker.check_model(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = random_inputs(name, 16, "onnx")            # mixed lengths: padding and masks
    ids, mask, lengths = model.encode(inputs)
    (logits,) = sess.run(None, {"tokens": ids.numpy(), "mask": mask.numpy()})
    with torch.no_grad():
        ref = model.module(ids, mask).numpy()
    assert np.abs(logits - ref).max() < 1e-4
    for b, tokens in enumerate(inputs):
        assert compiler.same_output(model.output.decode(logits[b, 1:lengths[b] + 1]), model(tokens))
