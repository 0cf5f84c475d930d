"""Every program of Tracr's compiler/lib.py, built through rasp.tracr, compiles exactly.

Sizes are checked against Tracr's own measurements (../shared/REFERENCE-NUMBERS.md):
our d_model and parameter count must be smaller on every row we compile here.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

import compiler

from .helpers import assert_exact, modules_replaced

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
from tracr_programs import PROGRAMS  # noqa: E402
from compare_tracr import reference_rows  # noqa: E402

REFERENCE = reference_rows()


def _inputs(kind: str, vocab: list, n: int, count: int = 150) -> list[list]:
    rng = random.Random(n)
    out = []
    for i in range(count):
        length = 1 + i % n
        out.append(rng.sample(vocab, length) if kind == "distinct" else [rng.choice(vocab) for _ in range(length)])
    return out


@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("n", [5, 10])
def test_tracr_program_exact_and_smaller(name, n):
    build, vocab_of, kind = PROGRAMS[name]
    sop, vocab = build(n), vocab_of(n)
    model = assert_exact(sop, vocab, n, inputs=_inputs(kind, vocab, n))
    row = REFERENCE.get((name, n))
    if row is not None and row[4].isdigit():
        assert model.d_model < int(row[4]), f"d_model {model.d_model} vs Tracr {row[4]}"
        assert model.num_params < int(row[5]), f"params {model.num_params} vs Tracr {row[5]}"
        assert model.num_layers <= int(row[2])


def test_tracr_module_is_a_drop_in():
    import importlib
    import types

    import rasp.tracr as ours
    stand_ins = {"tracr": types.ModuleType("tracr"), "tracr.rasp": types.ModuleType("tracr.rasp"),
                 "tracr.rasp.rasp": ours}
    with modules_replaced(stand_ins):
        rasp_mod = importlib.import_module("tracr.rasp.rasp")
        assert stand_ins["tracr.rasp"].rasp is ours
        hist = rasp_mod.SelectorWidth(rasp_mod.Select(rasp_mod.tokens, rasp_mod.tokens, rasp_mod.Comparison.EQ))
        model = compiler.compile(hist, vocab={"a", "b"}, max_seq_len=6)
        assert model(["a", "b", "a"]) == [2, 1, 2]
