"""Per-layer decoding: every s-op read back from the residual stream of a compiled model
equals the interpreter's value, at every sublayer from the one that writes it on."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
import rasp
from compiler import inspect
from compiler.infer import ValueIndex

from inspect_helpers import PROGRAM_NAMES, compiled, load, random_inputs, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

INPUTS_PER_PROGRAM = 24


def _show(tokens) -> str:
    return "".join(tokens) if all(isinstance(t, str) and len(t) == 1 for t in tokens) else repr(tokens)


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_every_probe_matches_interpreter_at_every_sublayer(name):
    model = compiled(name)
    probes = model.program.probes
    inputs = random_inputs(name, INPUTS_PER_PROGRAM)
    assert len(inputs) >= INPUTS_PER_PROGRAM // 2
    expected = rasp.evaluate_all([p.node for p in probes.values()], inputs)
    resid, lengths = inspect.residuals(model, inputs)
    steps = inspect.decode_batch(model, inputs)
    names = inspect.named_probes(model)
    by_id = {p.node.id: name_ for name_, p in names.items()}
    checked = 0
    separates = {pid: p.separates() for pid, p in probes.items()}
    finders = {pid: ValueIndex(p.values).find for pid, p in probes.items()}
    for sub in inspect.sublayers(model):
        r = resid[sub.time]
        for pid, probe in probes.items():
            if probe.time > sub.time:
                continue
            find = finders[pid]
            for b, tokens in enumerate(inputs):
                n = lengths[b]
                want = expected[probe.node.id][b]
                if separates[pid]:
                    got = steps[b][sub.time].values[by_id[probe.node.id]]
                    assert compiler.same_output(want, got), (
                        f"{name}: {probe.node.name} after {sub.label} on {_show(tokens)}: "
                        f"decoded {got}, interpreter {want}")
                else:
                    err = probe.error(r[b, 1:n + 1], want, find)
                    assert np.all(err < 0.1), (
                        f"{name}: {probe.node.name} after {sub.label} on {_show(tokens)}: "
                        f"probe error {err.max():.3g} (interpreter {want})")
                    cands = steps[b][sub.time].candidates[by_id[probe.node.id]]
                    assert all(any(compiler.same_value(w, c) for c in cs) for w, cs in zip(want, cands))
                checked += 1
    assert checked > 0


def test_decode_layers_names_and_order():
    prog, header, sop = load("sort")
    model = compiled("sort")
    steps = inspect.decode_layers(model, "cabbad", prog.sops())
    expected = ["embedding"] + [f"layer {l} {part}" for l in range(model.num_layers) for part in ("attention", "MLP")]
    assert model.num_layers >= 2
    assert [s.label for s in steps] == expected
    assert [s.hook for s in steps][:3] == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid",
                                           "blocks.0.hook_resid_post"]
    last = steps[-1].values
    assert last["sorted"] == list("aabbcd")
    assert last["target"] == rasp.evaluate(prog["target"], "cabbad")
    # each s-op appears from its writing sublayer on, and is announced there once
    first = {}
    for s in steps:
        for n in s.new:
            first.setdefault(n, s.time)
        for n in s.values:
            assert n in first
    assert first["sorted"] == model.program.probes[prog["sorted"].id].time


def test_decode_layers_reports_ambiguous_probes():
    model = compiled("count_a")
    steps = inspect.decode_layers(model, "abca")
    # count_a only stores `tokens == "a"`: the tokens cannot be told apart in full
    assert "tokens" in steps[0].ambiguous
    cands = steps[0].candidates["tokens"]
    assert cands[0] == ("a",) and cands[3] == ("a",)
    assert set(cands[1]) == set(cands[2]) == set(model.vocab) - {"a"}
    shown = [inspect.describe_candidates(c, steps[0].domains["tokens"]) for c in cands]
    assert shown == ["a", "≠a", "≠a", "a"]


def test_sublayer_hooks_match_the_cache():
    model = compiled("reverse")
    _, cache, _ = inspect.run_with_cache(model, ["abc"])
    for s in inspect.sublayers(model):
        assert s.hook in cache
    assert inspect.resid_hook(0) == "blocks.0.hook_resid_pre"
    assert inspect.resid_hook(3) == "blocks.1.hook_resid_mid"
    assert inspect.resid_hook(4) == "blocks.1.hook_resid_post"


def test_model_without_compilation_is_a_clear_error(tmp_path):
    model = compiled("reverse")
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = compiler.load(path)
    with pytest.raises(ValueError, match="no compilation"):
        inspect.decode_layers(loaded, "abc")
