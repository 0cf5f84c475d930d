"""The interpreter computes selects of many short inputs position-major (a faster memory
layout) and others batch-major: both must give the same values for every s-op of every
library program, including the selectors themselves."""

from __future__ import annotations

import random

import pytest

import rasp
import rasp.interpreter as interp

from .conftest import PROGRAM_NAMES, header, program_path


def _all_nodes(name: str) -> list:
    """Every node the program's named s-ops and selectors depend on."""
    prog = rasp.load(program_path(name))
    roots = [prog[n] for n in prog.names() if isinstance(prog[n], (rasp.ir.SOp, rasp.ir.Selector))]
    return [node for node in rasp.ir.topological_order(roots) if isinstance(node, (rasp.ir.SOp, rasp.ir.Selector))]


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_position_major_selects_agree_with_batch_major(name, monkeypatch):
    h = header(name)
    rng = random.Random(7)
    vocab = list(h.vocab)
    inputs = [[rng.choice(vocab) for _ in range(rng.randint(1, min(h.max_len, 12)))] for _ in range(300)]
    nodes = _all_nodes(name)
    monkeypatch.setattr(interp, "_SHORT", 0)            # batch-major everywhere
    expected = rasp.interpreter.evaluate_all(nodes, inputs)
    monkeypatch.setattr(interp, "_SHORT", 10_000)       # position-major for every batch
    monkeypatch.setattr(interp, "_LONG_BATCH", 1)
    got = rasp.interpreter.evaluate_all(nodes, inputs)
    assert got.keys() == expected.keys()
    for node in nodes:
        assert got[node.id] == expected[node.id], node.name
