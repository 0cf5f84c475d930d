"""Training is deterministic under a seed (and the global RNG state is left as it was)."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from compiler import learn


def _train(task, compiled, seed):
    shape = learn.shape_for(task, "1x2x16", compiled)
    return learn.train(task, shape, learn.TrainConfig(steps=40, eval_every=20, batch_size=32, seed=seed))


def test_same_seed_same_model(hist_task, hist_compiled):
    a, b = _train(hist_task, hist_compiled, 7), _train(hist_task, hist_compiled, 7)
    for (k, x), (_, y) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert torch.equal(x, y), k
    strip = lambda h: json.dumps([{k: v for k, v in r.items() if k != "seconds"} for r in h])  # noqa: E731
    assert strip(a.history) == strip(b.history)      # (as JSON: the step-0 loss is NaN)


def test_different_seed_different_model(hist_task, hist_compiled):
    a, b = _train(hist_task, hist_compiled, 1), _train(hist_task, hist_compiled, 2)
    assert not torch.equal(a.module.W_E, b.module.W_E)


def test_global_state_restored(hist_task, hist_compiled):
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    expect = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    _train(hist_task, hist_compiled, 3)
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expect[0], got[0]) and expect[1:] == got[1:]
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
