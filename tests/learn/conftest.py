"""Shared small models for the learn/compare tests (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

import compiler
import rasp
from compiler import learn

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"
HIST_VOCAB, HIST_LEN = "abc", 5
HIST_CONFIG = dict(steps=400, eval_every=50, batch_size=64, warmup=30, seed=0)


@pytest.fixture(scope="session")
def hist_program():
    return rasp.load(PROGRAMS / "hist.rasp")


@pytest.fixture(scope="session")
def hist_compiled(hist_program):
    return compiler.compile(hist_program["hist"], HIST_VOCAB, HIST_LEN)


@pytest.fixture(scope="session")
def hist_task(hist_program, hist_compiled):
    return learn.Task.from_program(hist_program["hist"], HIST_VOCAB, HIST_LEN, hist_compiled,
                                   program_path=str(PROGRAMS / "hist.rasp"), name="hist")


@pytest.fixture(scope="session")
def hist_learned(hist_task, hist_compiled):
    """hist over "abc" up to length 5, one layer of one head, d_model 32, 400 steps (~3 s)."""
    shape = learn.shape_for(hist_task, "1x1x32", hist_compiled)
    return learn.train(hist_task, shape, learn.TrainConfig(**HIST_CONFIG))
