"""Random well-typed programs (rasp/randprog.py), compiled vs interpreted, every input."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compiler
import rasp
from rasp.randprog import VOCAB, random_program

from .helpers import all_inputs, interpret

INPUTS = all_inputs(VOCAB, 4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), steps=st.integers(2, 10))
def test_random_programs_compile_exactly(seed, steps):
    source = random_program(random.Random(seed), steps=steps)
    sop = rasp.parse(source)["out"]
    good, expected = interpret(sop, INPUTS)
    if not good:
        return
    try:
        model = compiler.compile(sop, vocab=VOCAB, max_seq_len=4)
    except compiler.CompileError:
        return  # a clear refusal is allowed; a wrong model is not
    got = model.run_batch(good)
    for x, e, g in zip(good, expected, got):
        assert compiler.same_output(e, g), f"{source}\ninput {x}: expected {e}, got {g}"


def test_random_programs_mostly_compile():
    failures = 0
    for seed in range(60):
        sop = rasp.parse(random_program(random.Random(seed), steps=8))["out"]
        try:
            compiler.compile(sop, vocab=VOCAB, max_seq_len=4)
        except compiler.CompileError:
            failures += 1
    assert failures <= 3
