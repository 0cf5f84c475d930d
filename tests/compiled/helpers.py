"""Shared checks for compiler tests: compiled model == reference interpreter."""

from __future__ import annotations

import contextlib
import itertools
import random
import sys
from types import ModuleType
from typing import Any, Iterator, Sequence

import compiler
import rasp


def all_inputs(vocab: Sequence[Any], max_len: int) -> list[list]:
    return [list(t) for n in range(1, max_len + 1) for t in itertools.product(vocab, repeat=n)]


def random_inputs(vocab: Sequence[Any], max_len: int, per_length: int, seed: int = 0) -> list[list]:
    rng = random.Random(seed)
    return [[rng.choice(list(vocab)) for _ in range(n)] for n in range(1, max_len + 1) for _ in range(per_length)]


def assert_exact(sop: rasp.SOp, vocab: Sequence[Any], max_len: int, inputs: list[list] | None = None,
                 model: compiler.CompiledModel | None = None) -> compiler.CompiledModel:
    """Compile (unless given) and compare with the interpreter on `inputs` (default: all)."""
    model = model or compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
    inputs = inputs if inputs is not None else all_inputs(vocab, max_len)
    good, expected = interpret(sop, inputs)
    assert good, "the interpreter rejected every input"
    got = model.run_batch(good)
    bad = [(x, e, g) for x, e, g in zip(good, expected, got) if not compiler.same_output(e, g)]
    assert not bad, f"{len(bad)}/{len(good)} inputs differ, e.g. {bad[:3]}"
    return model


def interpret(sop: rasp.SOp, inputs: list[list]) -> tuple[list[list], list]:
    """(inputs the interpreter accepts, its outputs)."""
    return rasp.evaluate_accepted(sop, inputs)


def compile_text(source: str, name: str = "out") -> rasp.SOp:
    return rasp.parse(source, "<test>")[name]


@contextlib.contextmanager
def modules_replaced(modules: dict[str, ModuleType]) -> Iterator[None]:
    """For a while, sys.modules (and the parent package's attribute, where the parent is
    loaded) name these modules; everything is restored afterwards. Lets Tracr's own code
    import `rasp.tracr` in place of its `tracr.rasp.rasp`."""
    saved = {name: sys.modules.get(name) for name in modules}
    restore: list[tuple[Any, str, Any]] = []
    try:
        for name, module in modules.items():
            sys.modules[name] = module
            parent, _, attr = name.rpartition(".")
            if parent in sys.modules:
                restore.append((sys.modules[parent], attr, getattr(sys.modules[parent], attr, None)))
                setattr(sys.modules[parent], attr, module)
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for pkg, attr, value in reversed(restore):
            setattr(pkg, attr, value)
