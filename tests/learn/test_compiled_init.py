"""Compiled initialisation: the copy is exact before training; the readout decodes like the compiled one."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
import rasp
from compiler import learn
from compiler.runtime import OutputSpec

from .conftest import PROGRAMS


@pytest.mark.parametrize("name, vocab, n", [("hist", "abc", 5),            # numeric readout
                                             ("reverse", "abcd", 5),       # code readout
                                             ("first_occurrence", "abc", 5),  # onehot readout
                                             ("frac_prevs", "abc", 4)])    # numeric, fractions
def test_copy_is_exact(name, vocab, n):
    prog = rasp.load(PROGRAMS / f"{name}.rasp")
    loaded_name = prog.result_name if name != "hist" else "hist"
    sop = prog[loaded_name]
    c = compiler.compile(sop, vocab, n)
    task = learn.Task.from_program(sop, vocab, n, c)
    module, exact = learn.from_compiled(c, task.values)
    assert exact
    ids, mask, labels = task.batch(task.all_inputs())
    tok, seq = learn.accuracy(module, ids, mask, labels)
    assert tok == 1.0 and seq == 1.0


def test_training_from_compiled_records_drift(hist_compiled, hist_task):
    config = learn.TrainConfig(steps=20, eval_every=10, lr=1e-6, init="compiled", track_size=64)
    model = learn.train(hist_task, None, config, compiled=hist_compiled)
    h = model.history
    assert h[0]["test_seq_acc"] == 1.0 and h[0]["mean_head_similarity"] == pytest.approx(1.0)
    assert h[0]["weight_drift"] == 0.0
    assert h[-1]["weight_drift"] > 0.0 and "0.0" in h[-1]["head_similarity"]
    assert h[-1]["test_seq_acc"] == 1.0                     # a tiny step size keeps it exact
    assert model.module.shape.n_heads == hist_compiled.module.shape.n_heads
    assert model.meta["exact_readout_init"] is True


def test_noise_perturbs(hist_compiled, hist_task):
    m0, _ = learn.from_compiled(hist_compiled, hist_task.values)
    import torch
    m1, _ = learn.from_compiled(hist_compiled, hist_task.values, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(m0.blocks[0].mlp.W_in, m1.blocks[0].mlp.W_in)
    assert torch.equal(m0.W_U, m1.W_U)                      # the readout is not perturbed


def test_fresh_head_when_readout_is_not_linear(hist_compiled, hist_task):
    # a numeric readout with a None flag has no exact linear classification head
    c = compiler.CompiledModel(hist_compiled.module, hist_compiled.vocab, hist_compiled.max_seq_len,
                               OutputSpec("numeric", list(hist_compiled.output.values), none_flag=True),
                               hist_compiled.feature_labels)
    assert learn.compiled_readout(c, hist_task.values) is None
    config = learn.TrainConfig(steps=30, eval_every=30, lr=1e-3, init="compiled", readout_steps=20, track_size=32)
    model = learn.train(hist_task, None, config, compiled=c)
    assert model.meta["exact_readout_init"] is False
    assert np.isfinite(model.history[-1]["loss"])
