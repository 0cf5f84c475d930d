"""Tracr's own test programs, from the installed `tracr-pypi` package (the `tracr` extra).

Tracr ships its integration-test programs in `tracr/compiler/test_cases.py`, built by
its `tracr/compiler/lib.py`. Both files are executed here as they are installed, once
with Tracr's `rasp` module (programs that Tracr's own evaluator runs) and once with
`rasp.tracr` standing in for it (programs our compiler takes). For every case the
compiled model must give Tracr's expected output on Tracr's test input, and agree with
Tracr's evaluator on every input of the domain (or on random inputs of every length
where the domain is large). That includes `UNSUPPORTED_TEST_CASES`, the programs Tracr's
compiler rejects. The programs Tracr's own module built are also compiled directly
(`compiler.compile` converts them). Skipped when tracr-pypi is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import random
import sys
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("tracr.compiler.test_cases")

import compiler  # noqa: E402
import rasp.tracr as ours  # noqa: E402
from tracr.compiler import test_cases as tracr_cases  # noqa: E402
from tracr.rasp import rasp as tracr_rasp  # noqa: E402

from .helpers import modules_replaced  # noqa: E402

# (causal-only cases: Tracr's expected output assumes its causal=True compilation, in which
# a query sees only earlier keys; RASP's semantics, and Tracr's evaluator, see all keys;
# test_causal_cases_through_tracrs_entry_point compiles them causally)
GROUPS = ("TEST_CASES", "UNSUPPORTED_TEST_CASES", "CAUSAL_TEST_CASES")
UNIVERSAL = {case["testcase_name"] for case in tracr_cases.UNIVERSAL_TEST_CASES}


def _execute_installed(name: str, substitutes: dict[str, ModuleType]) -> ModuleType:
    """A fresh copy of the installed module `name`, its imports resolved to `substitutes`."""
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    with modules_replaced(substitutes):
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def our_cases() -> ModuleType:
    logging.getLogger("rasp.tracr").setLevel(logging.ERROR)     # (test_cases' own SequenceMap warning)
    our_lib = _execute_installed("tracr.compiler.lib", {"tracr.rasp.rasp": ours})
    return _execute_installed("tracr.compiler.test_cases",
                              {"tracr.rasp.rasp": ours, "tracr.compiler.lib": our_lib})


def _domain(vocab: set, max_len: int, limit: int = 1500, count: int = 300) -> list[list]:
    tokens = sorted(vocab, key=repr)
    if sum(len(tokens) ** n for n in range(1, max_len + 1)) <= limit:
        return [list(t) for n in range(1, max_len + 1) for t in itertools.product(tokens, repeat=n)]
    rng = random.Random(max_len)
    return [[rng.choice(tokens) for _ in range(1 + i % max_len)] for i in range(count)]


def _cases() -> list[tuple[str, int, str]]:
    out = []
    for group in GROUPS:
        for i, case in enumerate(getattr(tracr_cases, group)):
            if group == "CAUSAL_TEST_CASES" and case["testcase_name"] in UNIVERSAL:
                continue        # (already run under TEST_CASES)
            out.append((group, i, case["testcase_name"]))
    return out


@pytest.mark.parametrize("group,index,name", _cases(), ids=[f"{g}-{n}" for g, _, n in _cases()])
def test_tracr_case_compiles_to_tracrs_answers(our_cases: ModuleType, group: str, index: int, name: str) -> None:
    theirs: dict[str, Any] = getattr(tracr_cases, group)[index]
    mine: dict[str, Any] = getattr(our_cases, group)[index]
    assert mine["testcase_name"] == name
    model = compiler.compile(mine["program"], vocab=mine["vocab"], max_seq_len=mine["max_seq_len"])
    if "expected_output" in mine and not (group == "CAUSAL_TEST_CASES" and name not in UNIVERSAL):
        assert compiler.same_output(model(mine["test_input"]), mine["expected_output"])
    inputs = _domain(mine["vocab"], mine["max_seq_len"])
    expected = [tracr_rasp.evaluate(theirs["program"], x) for x in inputs]
    wrong = [(x, got, want) for x, got, want in zip(inputs, model.run_batch(inputs), expected)
             if not compiler.same_output(got, want)]
    assert not wrong, f"{len(wrong)}/{len(inputs)} inputs differ from Tracr's evaluator, e.g. {wrong[0]}"


@pytest.mark.parametrize("group,index,name", _cases(), ids=[f"{g}-{n}" for g, _, n in _cases()])
def test_programs_built_with_tracr_itself_compile_directly(group: str, index: int, name: str) -> None:
    """No module swap: `compiler.compile` takes the program Tracr's own `rasp` built."""
    case: dict[str, Any] = getattr(tracr_cases, group)[index]
    program = case["program"]
    assert isinstance(program, tracr_rasp.RASPExpr) and not isinstance(program, ours.RASPExpr)
    model = compiler.compile(program, vocab=case["vocab"], max_seq_len=case["max_seq_len"])
    inputs = _domain(case["vocab"], case["max_seq_len"])
    expected = [tracr_rasp.evaluate(program, x) for x in inputs]
    wrong = [(x, got, want) for x, got, want in zip(inputs, model.run_batch(inputs), expected)
             if not compiler.same_output(got, want)]
    assert not wrong, f"{len(wrong)}/{len(inputs)} inputs differ from Tracr's evaluator, e.g. {wrong[0]}"


def test_conversion_keeps_sharing_annotations_and_predicates() -> None:
    """One copy per Tracr node (a shared subexpression stays one node), names and encodings
    carried over, Tracr's Comparison members mapped to ours and lambdas kept."""
    shared = tracr_rasp.numerical(tracr_rasp.Map(lambda x: x + 1, tracr_rasp.tokens)).named("plus_one")
    select = tracr_rasp.Select(shared, tracr_rasp.indices, tracr_rasp.Comparison.LEQ)
    custom = tracr_rasp.Select(tracr_rasp.tokens, tracr_rasp.tokens, lambda k, q: (k + q) % 2 == 0)
    both = tracr_rasp.SelectorAnd(select, tracr_rasp.SelectorNot(custom))
    program = tracr_rasp.SequenceMap(lambda a, b: a * b, shared,
                                     tracr_rasp.numerical(tracr_rasp.Aggregate(both, shared, default=0)))
    copy = ours.from_tracr(program)
    fst, snd = copy.fst, copy.snd
    assert fst.name == "plus_one" and ours.is_numerical(fst) and ours.is_numerical(snd)
    assert snd.children[1] is fst                          # (the shared Map: one node)
    assert snd.children[0].fst.predicate is ours.Comparison.LEQ
    assert snd.children[0].snd.inner.predicate is custom.predicate
    for xs in ([1, 2, 3], [3, 0, 0, 2], [2]):
        assert compiler.same_output(ours.evaluate(copy, xs), tracr_rasp.evaluate(program, xs))
    with pytest.raises(compiler.CompileError, match="expects an s-op, got Select"):
        compiler.compile(select, vocab={1, 2}, max_seq_len=3)

    class Unknown(tracr_rasp.SOp):          # (not a primitive: nothing says how to compute it)
        children = ()

        def __call__(self, xs):
            return xs
    with pytest.raises(compiler.CompileError, match="cannot convert Unknown from Tracr"):
        compiler.compile(tracr_rasp.Map(lambda x: x, Unknown()), vocab={1}, max_seq_len=3)


def test_the_cases_come_from_tracr(our_cases: ModuleType) -> None:
    """The substitution took: our copies hold rasp.tracr programs, Tracr's hold its own."""
    assert isinstance(our_cases.TEST_CASES[0]["program"], ours.RASPExpr)
    assert not isinstance(tracr_cases.TEST_CASES[0]["program"], ours.RASPExpr)
    assert isinstance(tracr_cases.TEST_CASES[0]["program"], tracr_rasp.RASPExpr)
    assert sys.modules["tracr.rasp.rasp"] is tracr_rasp
    assert importlib.import_module("tracr.compiler.lib").rasp is tracr_rasp


@pytest.mark.parametrize("index,name", [(i, c["testcase_name"]) for i, c in enumerate(tracr_cases.CAUSAL_TEST_CASES)],
                         ids=[c["testcase_name"] for c in tracr_cases.CAUSAL_TEST_CASES])
def test_causal_cases_through_tracrs_entry_point(index: int, name: str) -> None:
    """Tracr's causal test cases, compiled as Tracr's harness does (`compile_rasp_to_model(...,
    causal=True)`, `apply([bos, *input]).decoded`): Tracr's expected output (which its causal
    model computes; the selector_width case counts only earlier keys), and on the domain the
    causal program's own evaluation."""
    from compiler import tracr_compat
    case: dict[str, Any] = tracr_cases.CAUSAL_TEST_CASES[index]
    model = tracr_compat.compile_rasp_to_model(case["program"], vocab=case["vocab"],
                                               max_seq_len=case["max_seq_len"], causal=True, compiler_bos="BOS")
    decoded = model.apply(["BOS", *case["test_input"]]).decoded
    assert decoded[0] == "BOS" and compiler.same_output(decoded[1:], case["expected_output"])
    causal = ours.causal(case["program"])
    inputs = _domain(case["vocab"], case["max_seq_len"])
    wrong = [(x, got) for x, got in zip(inputs, model.run_batch(inputs))
             if not compiler.same_output(got, ours.evaluate(causal, x))]
    assert not wrong, f"{len(wrong)}/{len(inputs)} inputs differ from the causal program, e.g. {wrong[0]}"


def test_tracr_sort_freq_at_longer_lengths() -> None:
    """Tracr's sort_freq sorts by `-hist + i * min_key / max_seq_len` keys whose offsets
    put distinct keys within 1e-12 of each other's rounding variants past max_seq_len 5;
    its select over them was refused at 12 and 24. It now compares exact copies of the
    keys (compiler.rewrite.exact_operand); checked against Tracr's evaluator on inputs
    drawn from few tokens, where frequencies tie."""
    case = next(c for c in tracr_cases.TEST_CASES if c["testcase_name"] == "sort_freq")
    tokens = sorted(case["vocab"], key=repr)
    for max_len in (8, 12):
        model = compiler.compile(case["program"], vocab=case["vocab"], max_seq_len=max_len)
        rng = random.Random(max_len)
        inputs = []
        for i in range(600):
            chosen = rng.sample(tokens, 1 + i % len(tokens))
            inputs.append([rng.choice(chosen) for _ in range(1 + i % max_len)])
        expected = [tracr_rasp.evaluate(case["program"], x) for x in inputs]
        wrong = [(x, got, want) for x, got, want in zip(inputs, model.run_batch(inputs), expected)
                 if not compiler.same_output(got, want)]
        assert not wrong, f"{len(wrong)}/{len(inputs)} inputs differ at max_seq_len {max_len}, e.g. {wrong[0]}"
