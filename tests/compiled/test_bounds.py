"""The forward error bound (compiler.bounds) is sound: where it calls a model proven
exact, the model's output logits stay within the bound of their exact values on every
input tried; where it cannot prove it, it says which table or read fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import compiler
from rasp import tracr
from rasp.header import load_with_header

from .helpers import all_inputs, assert_exact, compile_text, interpret, random_inputs

PROGRAMS = {
    # name: (source, vocab, max_len)
    "hist": ("result = selector_width(select(tokens, tokens, ==));", "abc", 8),
    "reverse": ("result = aggregate(select(indices, length - indices - 1, ==), tokens);", "abc", 12),
    "frac_prevs": ("result = numerical(aggregate(select(indices, indices, <=), numerical(indicator(tokens == \"a\"))));",
                   "ab", 10),
    "balance": ("p = select(indices, indices, <=);\n"
                "result = numerical(aggregate(p, numerical(indicator(tokens == \"(\")))) - "
                "numerical(aggregate(p, numerical(indicator(tokens == \")\"))));", "()", 9),
    "count_gt": ("result = selector_width(select(tokens, tokens, <)) > 1;", [1, 2, 3, 4], 7),
    # widths decoded where 1/(w+1) steps are 1/6480 apart: proven by the pointwise bound
    # (a head's rounding is relative to its output, small exactly where the steps are narrow)
    "length_80": ("result = length;", "ab", 80),
    # the difference of two causal means at 80, whose values lie 1/6320 apart: each mean of
    # 0/1 values is off by its relative rounding times at most 1 (its pointwise bound at
    # its largest value), not twice its values' size
    "balance_80": ("p = select(indices, indices, <=);\n"
                   "result = numerical(aggregate(p, numerical(indicator(tokens == \"(\")))) - "
                   "numerical(aggregate(p, numerical(indicator(tokens == \")\"))));", "()a", 80),
    # a copy whose query reads the decoded length (off by 0.006) with weight 60 against key
    # codes up to 79: charged 15 on every score against a gap of 30 it was unproven from
    # 60; bounded per pair of keys (a query's error moves two keys' scores apart by the
    # difference of their codes, and far keys are far below), it is proven
    "reverse_80": ("result = aggregate(select(indices, length - indices - 1, ==), tokens);", "abc", 80),
    "count_rare": ("h = selector_width(select(tokens, tokens, ==));\n"
                   "result = selector_width(select(h, 2, <=));", "abcd", 24),
}


def _exact_logits(model: compiler.CompiledModel, outputs: list) -> np.ndarray:
    """What the model's logits would be with no error at all, per position."""
    spec = model.output
    rows = []
    for v in outputs:
        if spec.mode in ("onehot", "code"):
            index = next(i for i, u in enumerate(spec.values) if compiler.same_value(v, u))
            rows.append([float(i == index) for i in range(len(spec.values))] if spec.mode == "onehot"
                        else [float(index)])
        else:
            rows.append([0.0 if v is None else float(v)] + ([1.0 if v is None else 0.0] if spec.none_flag else []))
    return np.array(rows)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_proven_models_stay_within_their_bound(name):
    source, vocab, max_len = PROGRAMS[name]
    sop = compile_text(source, "result")
    _assert_proven_and_within_bound(sop, vocab, max_len)


@pytest.mark.parametrize("stem", ["most_freq", "dyck2", "seq_max"])
def test_library_programs_proven_by_the_tighter_bounds(stem):
    # widths whose keys are MLP outputs (most_freq's rank, dyck2's depth index): a width
    # is BOS's weight against its keys', off by expm1(a key's score error + BOS's), not
    # expm1(twice the larger), and a one-hot query meets one dimension's key error at a
    # time; seq_max's means of 0/1 values are off by their relative rounding, not twice
    # their size (all three unproven before)
    _, header, sop = load_with_header(Path(__file__).resolve().parents[2] / "programs" / f"{stem}.rasp")
    _assert_proven_and_within_bound(sop, header.vocab, header.max_len)


def test_tracr_sort_freq_is_proven_at_5():
    # Tracr's make_sort_freq: keys -hist + i / 5, a width over keys < keys, then a copy
    hist = tracr.numerical(-1 * tracr.SelectorWidth(tracr.Select(tracr.tokens, tracr.tokens,
                                                                   tracr.Comparison.EQ)))
    keys = tracr.SequenceMap(lambda x, i: x + i / 5, hist, tracr.indices)
    target = tracr.SelectorWidth(tracr.Select(keys, keys, tracr.Comparison.LT))
    sop = tracr.Aggregate(tracr.Select(target, tracr.indices, tracr.Comparison.EQ), tracr.tokens)
    _assert_proven_and_within_bound(sop, list("abcde"), 5)


def _assert_proven_and_within_bound(sop, vocab, max_len: int) -> None:
    model = compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
    assert model.exactness()["proven_exact"], model.exactness()["unproven_because"]
    bound = model.exactness()["output_error_bound"]
    assert 0 < bound < model.exactness()["output_margin"]
    inputs = all_inputs(vocab, min(6, max_len)) + random_inputs(vocab, max_len, 30, seed=1)
    good, expected = interpret(sop, inputs)
    logits, lengths = model.logits(good)
    worst = 0.0
    for b, (n, out) in enumerate(zip(lengths, expected)):
        got = logits[b, 1:n + 1, :]
        worst = max(worst, float(np.max(np.abs(got - _exact_logits(model, out)))))
    print(f"observed {worst:.3g}, bound {bound:.3g}, margin {model.exactness()['output_margin']:.3g}")
    assert worst <= bound, f"observed error {worst:.3g} above the proven bound {bound:.3g}"


@pytest.mark.parametrize("source, vocab, max_len, most", [
    ("result = length;", "ab", 80, 1e-3),
    ("result = selector_width(select(tokens, tokens, ==));", "abc", 40, 1e-3),
    ("result = selector_width(select(tokens, tokens, <));", [1, 2, 3, 4, 5], 30, 1e-3),
    # keys computed by the MLP decoding a first width: scores off by its rounding, which
    # the bound charges as BOS's weight against the keys' (expm1 of their spread)
    ("h = selector_width(select(tokens, tokens, ==));\n"
     "result = selector_width(select(h, h, <));", "abcd", 12, 0.05),
    ("h = selector_width(select(tokens, tokens, ==));\nk = 10 - h if tokens != \"a\" else h;\n"
     "result = selector_width(select(k, k, <=) and select(tokens, tokens, !=));", "abc", 9, 0.05),
])
def test_pointwise_width_bounds_hold_in_the_residual_stream(source, vocab, max_len, most):
    # a width head writes x = 1/(w+1); its pointwise bound (a + r * x) must cover the
    # float32 value the model really computes, at every position of every input tried
    from compiler.bounds import propagate
    from compiler.lower import resolve
    sop = compile_text(source, "result")
    model = compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
    low, lay = model.program.lowered, model.program.layout
    err, pointwise = dict(low.feature_err), {}
    propagate(low.heads, low.mlps, err, low.max_seq_len, resolve, pointwise)
    layer, head = next((layer, h) for layer, heads in enumerate(model.program.schedule.heads)
                       for h in heads if h.width and h.node is sop)
    feature = head.values[0][0]
    a, r = pointwise[feature.uid]
    assert 0 < r < most and a < 1e-6
    inputs = random_inputs(vocab, max_len, 60, seed=3)
    tokens, mask, lengths = model.encode(inputs)
    _, cache = model.module.run_with_cache(tokens, mask)
    x = cache[f"blocks.{layer}.hook_resid_mid"][:, :, lay[feature]].double().numpy()
    _, widths = interpret(head.node, inputs)      # (the width s-op: its values give the exact x)
    worst = 0.0
    for b, (n, ws) in enumerate(zip(lengths, widths)):
        exact = 1.0 / (np.array(ws, dtype=np.float64) + 1.0)
        got = x[b, 1:n + 1]
        assert np.all(np.abs(got - exact) <= a + r * exact), (ws, got - exact)
        worst = max(worst, float(np.max(np.abs(got - exact) / (a + r * exact))))
    print(f"{source}: worst error / pointwise bound = {worst:.3g}")


@pytest.mark.parametrize("source, vocab, max_len", [
    ("result = numerical(aggregate(select(indices, indices, <=), numerical(indicator(tokens == \"a\"))));",
     "abc", 40),
    ("result = numerical(aggregate(select(tokens, tokens, ==), numerical(indicator(tokens == \"c\") * 2), 0));",
     "abc", 24),
])
def test_mean_bounds_hold_in_the_residual_stream(source, vocab, max_len):
    # a mean head's output feature, as the model computes it in float32, stays within the
    # absolute bound the proof gives it, at every position of every input tried
    from compiler.bounds import propagate
    from compiler.lower import resolve
    sop = compile_text(source, "result")
    model = compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
    low, lay = model.program.lowered, model.program.layout
    err = dict(low.feature_err)
    propagate(low.heads, low.mlps, err, low.max_seq_len, resolve, {})
    layer, head = next((layer, h) for layer, heads in enumerate(model.program.schedule.heads)
                       for h in heads if not h.width and h.node is sop)
    feature = head.values[0][0]
    values = model.program.inference.info[sop.id].values
    inputs = random_inputs(vocab, max_len, 40, seed=5)
    tokens, mask, lengths = model.encode(inputs)
    _, cache = model.module.run_with_cache(tokens, mask)
    x = cache[f"blocks.{layer}.hook_resid_mid"][:, :, lay[feature]].double().numpy()
    _, outputs = interpret(sop, inputs)
    worst = 0.0
    for b, (n, ys) in enumerate(zip(lengths, outputs)):
        exact = np.array([feature.fn[next(i for i, v in enumerate(values) if compiler.same_value(v, y))]
                          for y in ys])
        worst = max(worst, float(np.max(np.abs(x[b, 1:n + 1] - exact))))
    print(f"{source}: worst error {worst:.3g}, bound {err[feature.uid]:.3g}")
    assert worst <= err[feature.uid]


@pytest.mark.parametrize("source, vocab", [
    ("result = selector_width(select(tokens, tokens, <));", list(range(10))),
    ("result = selector_width(select(tokens, tokens, <) or (select(tokens, tokens, ==) and "
     "select(indices, indices, <)));", list(range(6))),
])
def test_comparison_scores_from_embeddings_compute_exactly(source, vocab):
    # scores whose reads are integer combinations of embedded features are exact in
    # float32; a scaled indicator embedded as such (30 at token 0) and read back with
    # weight 1/30 was charged ~1e-3 of score rounding, which un-proved sort
    from compiler.bounds import score_error
    from compiler.lower import resolve
    model = compiler.compile(compile_text(source, "result"), vocab=vocab, max_seq_len=10)
    low = model.program.lowered
    for head in low.heads:
        assert score_error(head, dict(low.feature_err), resolve) < 1e-9, head.label
    assert model.exactness()["proven_exact"], model.exactness()["unproven_because"]


def test_unproven_model_names_the_gap():
    # Tracr's sort_unique moving the positions (not the tokens): keys that share a target
    # (equal tokens) hold different indices, which are averaged. The keys of the second
    # head are one-hot features computed by an MLP, whose float32 rounding bound, times
    # the score scale, could make the weights of selected keys unequal, past the 1/180
    # margin between its means. (Moving the tokens is a proven copy: keys that share a
    # target share their token.)
    keys = tracr.tokens
    target = tracr.SelectorWidth(tracr.Select(keys, keys, tracr.Comparison.LT))
    sop = tracr.Aggregate(tracr.Select(target, tracr.indices, tracr.Comparison.EQ), tracr.indices)
    model = compiler.compile(sop, vocab=list(range(10)), max_seq_len=10)
    assert model.exactness()["proven_exact"] is False
    assert "output can be off by" in model.exactness()["unproven_because"]
    assert model.exactness()["output_error_bound"] >= model.exactness()["output_margin"]
    # still exact on the differential test, as every compiled model must be
    assert_exact(sop, list(range(10)), 10, inputs=random_inputs(list(range(10)), 10, 20, seed=2), model=model)


def test_the_verdict_is_saved_with_the_model(tmp_path):
    source, vocab, max_len = PROGRAMS["frac_prevs"]
    model = compiler.compile(compile_text(source, "result"), vocab=vocab, max_seq_len=max_len)
    model.save(tmp_path / "m.safetensors")
    loaded = compiler.load(tmp_path / "m.safetensors")
    assert loaded.exactness() == model.exactness() and loaded.exactness()["proven_exact"]


def test_read_rounding_holds_for_any_order_of_summation():
    """A float32 sum of many terms can lose each small one: 1 + u + u + ... (u = 2**-24,
    half of 1's last bit) stays 1 in the order written, off by k u, which passes 2 eps of
    the terms' sizes from k = 5 (what the proof once charged). read_rounding charges
    gamma_(k+1) of them, which holds in any order."""
    from compiler.bounds import read_rounding
    from compiler.features import ONE, Feature, Read
    from compiler.mlp import EPS32
    u = 2.0 ** -24
    for k in (1, 4, 8, 40):
        parts = [Feature(f"f{j}", sop_id=1000 + j, fn=np.array([1.0])) for j in range(k)]
        read = Read({ONE: 1.0, **{f: u for f in parts}})
        acc = np.float32(1.0)
        for _ in parts:
            acc = np.float32(acc + np.float32(u))
        error = abs(float(acc) - (1.0 + k * u))
        sizes = 1.0 + k * u
        assert error == k * u
        assert read_rounding(read) >= error
        assert (error > 2 * EPS32 * sizes) == (k > 4)


def _float32_table(plan, combos, z, order: str) -> np.ndarray:
    """The table's outputs at each point as float32 computes them: each unit's
    pre-activation in float32, then each output's sum over the units in `order`."""
    f32 = np.float32
    W = np.zeros((len(plan.units), len(plan.out_weights)), dtype=np.float32)
    for o, weights in enumerate(plan.out_weights):
        for u, w in weights.items():
            W[u, o] = w
    out = np.zeros((len(z), W.shape[1]))
    for i, (c, x) in enumerate(zip(combos, z)):
        act = []
        for unit in plan.units:
            pre = f32(f32(unit.z) * f32(x)) + f32(unit.bias)
            for (g, v), coef in unit.gates.items():
                pre = f32(pre + f32(coef) * f32(c[g] == v))
            act.append(max(pre, f32(0.0)))
        act = np.array(act, dtype=np.float32)
        for o in range(W.shape[1]):
            terms = act * W[:, o]
            if order == "pairwise":
                vals = [f32(plan.out_bias[o])] + list(terms)
                while len(vals) > 1:
                    vals = [f32(vals[j] + vals[j + 1]) if j + 1 < len(vals) else vals[j]
                            for j in range(0, len(vals), 2)]
                out[i, o] = float(vals[0])
                continue
            picks = {"ascending": np.argsort(terms), "descending": np.argsort(-terms),
                     "natural": np.arange(len(terms))}[order]
            acc = f32(plan.out_bias[o])
            for t in terms[picks]:
                acc = f32(acc + t)
            out[i, o] = float(acc)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_table_proof_rounding_covers_float32_in_several_orders(seed, monkeypatch):
    """compiler.mlp.proof_rounding bounds a table's float32 outputs at every point whatever
    order its sums take (here: ascending, descending, as written, pairwise), and counts at
    each point the terms an output sums (its active units with a weight, and its bias)."""
    from compiler.mlp import build_table, proof_rounding
    rng = np.random.default_rng(seed)
    for _ in range(6):
        n, gates = int(rng.integers(5, 40)), int(rng.integers(0, 2))
        z = np.sort(rng.choice(np.arange(400), n, replace=False)).astype(float) / 7.0
        combos = [tuple(rng.integers(0, 2, gates).tolist()) for _ in range(n)]
        outputs = rng.integers(-30, 30, (n, 2)).astype(float)
        plan = build_table(combos, z, outputs, gates).complete()
        bound = proof_rounding(plan, combos, z, 1)
        for order in ("ascending", "descending", "natural", "pairwise"):
            error = np.abs(_float32_table(plan, combos, z, order) - outputs).max(axis=0)
            assert np.all(error <= bound.bound), (order, error, bound.bound)
        # (no more terms than units with a weight, and the bias)
        assert np.all(bound.terms <= [len(w) + (b != 0) for w, b in zip(plan.out_weights, plan.out_bias)])
        # (large tables: from the largest term sizes and unit counts, a coarser bound)
        from compiler import mlp
        monkeypatch.setattr(mlp, "_DENSE_ROUNDING_LIMIT", 0)
        assert np.all(proof_rounding(plan, combos, z, 1).bound >= bound.bound)
        monkeypatch.undo()


def test_tables_on_at_once_share_one_sums_rounding():
    """Tables all on in one MLP (a width summed over heads) add their units into one dot
    product per output, so their rounding is gamma of all their terms together, at least
    the sum of each table's own."""
    from compiler.mlp import ProofRounding, gamma32
    one = ProofRounding(np.array([1e-5]), np.array([2e-6]), np.array([40.0]), np.array([30.0]), np.zeros(1))
    two = ProofRounding(np.array([2e-5]), np.array([3e-6]), np.array([90.0]), np.array([50.0]), np.zeros(1))
    both = ProofRounding.combined([one, two])
    assert both[0] == pytest.approx(5e-6 * (1 + gamma32(81)) + gamma32(81) * 130.0)
    assert both[0] >= (2e-6 + gamma32(31) * 40.0) + (3e-6 + gamma32(51) * 90.0)


def test_table_proof_rounding_covers_a_sum_that_cancels():
    """A table output summing 2**24, forty 1s and -2**24 in that order comes out 0, not 40:
    each 1 is lost against the large partial sum. The lowering's estimate (2 eps of the
    terms) misses it; the proof's bound charges each addition by u of the largest partial
    sum the terms can form."""
    from compiler.mlp import TablePlan, Unit, proof_rounding, rounding_error
    k = 40
    big = 2.0 ** 24
    units = [Unit(0.0, {}, big)] + [Unit(0.0, {}, 1.0) for _ in range(k)] + [Unit(0.0, {}, big)]
    weights = {0: 1.0, **{u: 1.0 for u in range(1, k + 1)}, k + 1: -1.0}
    plan = TablePlan(units, [weights], np.zeros(1))
    combos, z = [()], np.zeros(1)
    error = float(np.abs(_float32_table(plan, combos, z, "natural") - k).max())
    assert error == k
    assert rounding_error(plan, combos, z, 0).max() < error <= proof_rounding(plan, combos, z, 0).bound.max()
