"""Checkpoints: safetensors weights + JSON metadata, and the loaders."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from compiler import learn
from compiler.runtime import CompiledModel
from rasp.errors import RaspInputError

from .conftest import HIST_LEN


def test_round_trip(hist_learned, tmp_path):
    path = tmp_path / "hist.safetensors"
    hist_learned.save(path)
    back = learn.load_learned(path)
    for k, v in hist_learned.module.state_dict().items():
        assert torch.equal(v, back.module.state_dict()[k]), k
    assert back.module.shape == hist_learned.module.shape
    assert back.vocab == hist_learned.vocab and back.values == hist_learned.values
    assert back.max_seq_len == HIST_LEN
    inputs = [list("abcab"), list("c"), list("bb")]
    assert back.run_batch(inputs) == hist_learned.run_batch(inputs)
    assert back.final == hist_learned.final
    assert back.meta["program"]["name"] == "hist"
    assert back.meta["config"]["steps"] == 400 and back.meta["config"]["seed"] == 0
    assert len(back.history) == len(hist_learned.history)


def test_metadata_is_json_in_the_safetensors_header(hist_learned, tmp_path):
    path = tmp_path / "m.safetensors"
    hist_learned.save(path)
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[learn.META_KEY])
    assert meta["format"] == learn.FORMAT
    assert meta["shape"]["n_heads"] == [1] and meta["shape"]["d_model"] == 32
    assert meta["output_values"] == hist_learned.values
    assert {"program", "config", "final", "history", "steps_to_99"} <= set(meta)


def test_training_folder_and_load_any(hist_learned, hist_compiled, tmp_path):
    paths = learn.write_training_files(hist_learned, tmp_path / "run")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert learn.load_learned(tmp_path / "run").values == hist_learned.values      # a folder works too
    hist_compiled.save(tmp_path / "c.safetensors")
    assert isinstance(learn.load_any(tmp_path / "c.safetensors"), CompiledModel)
    assert isinstance(learn.load_any(tmp_path / "run"), learn.LearnedModel)
    with pytest.raises(RaspInputError):
        learn.load_learned(tmp_path / "c.safetensors")
    with pytest.raises(RaspInputError):
        learn.load_learned(tmp_path / "missing.safetensors")
