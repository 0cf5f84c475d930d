"""Interventions: a patched s-op or head changes the compiled model's output exactly as
the interpreter predicts for the patched program."""

from __future__ import annotations

import random

import pytest

import compiler
import rasp
from compiler import inspect
from rasp import api as r
from rasp.errors import RaspError

from inspect_helpers import compiled, load, random_inputs, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

PATCH_PROGRAMS = ["sort", "reverse", "hist", "dyck1", "most_freq", "sort_freq", "majority", "frac_prevs",
                  "double_hist", "induction", "running_max", "shuffle_dyck2", "addition", "index_of"]
PATCHES_PER_SOP = 3


def _resample(node, tokens, pool, rng):
    """The s-op's values on another input of the same length (values that can occur together)."""
    same = [t for t in pool if len(t) == len(tokens) and t != tokens]
    if not same:
        return None
    try:
        return rasp.evaluate(node, rng.choice(same))
    except RaspError:
        return None


@pytest.mark.parametrize("name", PATCH_PROGRAMS)
def test_patched_model_equals_interpreter_on_patched_program(name):
    model = compiled(name)
    rng = random.Random(name)
    pool = random_inputs(name, 40, "pool")
    checked = 0
    for k, node in enumerate(model.program.graph.nodes()):
        if not isinstance(node, rasp.ir.SOp) or not inspect.own_features(model, node):
            continue
        if inspect.patch_problem(model, node) is not None:
            continue
        for tokens in rng.sample(pool, PATCHES_PER_SOP):
            new = _resample(node, tokens, pool, rng)
            if new is None:
                continue
            try:
                want = inspect.interpret_patched(model, tokens, {node: new})
            except RaspError:
                continue        # the patched program fails in the interpreter (e.g. averaging strings)
            got = inspect.run_patched(model, tokens, {node: new})
            assert compiler.same_output(want, got), (
                f"{name}: patching {node.name} to {new} on {tokens}: model {got}, interpreter {want}")
            checked += 1
    assert checked >= 4


def test_patch_by_name_sort():
    model = compiled("sort")
    # target says where each token goes: send c to 2, a to 1, b to 0
    assert inspect.run_patched(model, "cab", {"target": [2, 1, 0]}) == ["b", "a", "c"]
    assert inspect.interpret_patched(model, "cab", {"target": [2, 1, 0]}) == ["b", "a", "c"]
    # patching the tokens (the embedding) changes everything downstream
    assert inspect.run_patched(model, "cab", {"tokens": list("dde")}) == ["d", "d", "e"]


def test_patch_shows_in_the_decoded_layers():
    prog, _, _ = load("sort")
    model = compiled("sort")
    hooks = inspect.patch_hooks(model, "cab", {"target": [2, 1, 0]})
    steps = inspect.decode_layers(model, "cab", prog.sops(), hooks=hooks)
    write = model.program.probes[prog["target"].id].time
    for s in steps:
        if s.time >= write:
            assert s.values["target"] == [2, 1, 0]
    assert steps[-1].values["sorted"] == ["b", "a", "c"]


def test_patch_after_the_last_reader_changes_nothing():
    model = compiled("sort")
    last = 2 * model.num_layers
    assert inspect.run_patched(model, "cab", {"target": [2, 1, 0]}, at_time=last) == ["a", "b", "c"]


def test_patch_errors_are_clear():
    model = compiled("sort")
    with pytest.raises(ValueError, match="no s-op named"):
        inspect.run_patched(model, "cab", {"nope": [0, 1, 2]})
    with pytest.raises(ValueError, match="3 values"):
        inspect.run_patched(model, "ca", {"target": [0, 1, 2]})
    with pytest.raises(ValueError, match="not a value"):
        inspect.run_patched(model, "cab", {"target": [0, 1, 99]})
    with pytest.raises(ValueError, match="pass the IR node"):
        inspect.run_patched(compiled("detect_pattern"), "abc", {"found": [True] * 3})   # three s-ops named so
    with pytest.raises(ValueError, match="at_time must be"):
        inspect.run_patched(model, "cab", {"target": [2, 1, 0]}, at_time=99)
    assert inspect.head_of(model, "sorted") == [(model.num_layers - 1, 0)]
    assert inspect.head_of(model, "target") == [(0, 0), (0, 1)]
    with pytest.raises(ValueError, match="no head 5"):
        inspect.run_patched(model, "cab", heads={(0, 5): "zero"})


def test_unpredictable_patches_are_refused():
    # index_of's embedding holds `has_val` (tokens == "c") in a direction that the tokens'
    # reads share: overwriting it would also change what the model reads as the tokens
    model = compiled("index_of")
    problem = inspect.patch_problem(model, "has_val")
    assert problem is not None and "shared direction" in problem
    with pytest.raises(ValueError, match="cannot patch"):
        inspect.run_patched(model, "abc", {"has_val": [True, True, True]})
    inspect.run_patched(model, "abc", {"has_val": [True, True, True]}, force=True)   # allowed when forced


def test_virtual_sops_cannot_be_patched():
    model = compiled("reverse")
    virtual = [n for n in model.program.graph.nodes()
               if isinstance(n, rasp.ir.SOp) and model.program.plan.kind[n.id] == "map_virtual"
               and not inspect.own_features(model, n)]
    assert virtual
    with pytest.raises(ValueError, match="no residual features"):
        inspect.run_patched(model, "abc", {virtual[0]: [0, 1, 2]})


def test_substitute_rebuilds_only_downstream():
    x = r.tokens == "a"
    y = r.numerical(r.aggregate(r.select(r.indices, r.indices, "<="), r.map(lambda b: 1 if b else 0, x)))
    z = y + r.indices
    const = rasp.ir.ConstantSequence([1, 1, 1])
    new = inspect.substitute(z, {x.id: const})
    assert new is not z
    assert rasp.evaluate(new, "abc") == [1, 2, 3]
    assert rasp.evaluate(z, "abc") == [1, 1.5, 2 + 1 / 3]
    # untouched subgraphs are shared
    assert inspect.substitute(z, {}) is z
    sel_ids = {n.id for n in rasp.ir.topological_order([new])}
    assert r.indices.id in sel_ids


ZERO_IS_DEFAULT = ["sort", "shift_right", "majority", "most_freq", "frac_prevs", "induction", "sort_freq"]


@pytest.mark.parametrize("name", ZERO_IS_DEFAULT)
def test_zeroing_an_aggregate_head_gives_its_default(name):
    model = compiled(name)
    checked = 0
    for head in inspect.heads(model):
        if head.width:
            continue
        for tokens in random_inputs(name, 4, "zero"):
            want = inspect.interpret_patched(model, tokens, {n: [n.default] * len(tokens) for n in head.writes})
            got = inspect.run_patched(model, tokens, heads={(head.layer, head.index): "zero"})
            assert compiler.same_output(want, got), (name, head.label, tokens, want, got)
            checked += 1
    assert checked


# Not reverse or palindrome: their aggregates always select exactly one position, so
# the compiled output has no encoding for the default (None).
BOS_PROGRAMS = ["compare_halves", "detect_pattern", "dyck1", "dyck2", "index_of", "induction",
                "running_max", "shuffle_dyck2", "sort_unique", "seq_min", "n_distinct"]


@pytest.mark.parametrize("name", BOS_PROGRAMS)
def test_attending_only_to_bos_gives_the_default(name):
    model = compiled(name)
    for head in inspect.heads(model):
        if head.width:
            continue
        for tokens in random_inputs(name, 2, "bos"):
            try:
                want = inspect.interpret_patched(model, tokens, {n: [n.default] * len(tokens)
                                                                 for n in head.writes})
            except RaspError:
                continue
            got = inspect.run_patched(model, tokens, heads={(head.layer, head.index): "bos"})
            assert compiler.same_output(want, got), (name, head.label, tokens, want, got)


def test_replacing_a_head_output():
    model = compiled("shift_right")
    (head,) = inspect.heads(model)
    # hook_z holds the copied value's features; replacing it by BOS's copy is the default
    _, cache, _ = inspect.run_with_cache(model, ["abc"])
    z = cache[f"blocks.{head.layer}.attn.hook_z"][:, head.index]
    bos_z = z[:, :1].expand_as(z)
    got = inspect.run_patched(model, "abc", heads={(head.layer, head.index): bos_z})
    assert got == inspect.interpret_patched(model, "abc", {head.node: [head.node.default] * 3})
