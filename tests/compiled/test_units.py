"""Unit tests of the exact constructions (MLP tables, bases, selector analysis)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.features import Basis, Feature
from compiler.mlp import build_table, exact_table, gated_interpolation_table, interpolation_table
from compiler.selectors import equality_codes, factorize


def _run_table(plan, combos, z, n_gates):
    """Evaluate the planned units in float32, with gate one-hot features as inputs."""
    out = np.zeros((len(z), len(plan.out_weights)), dtype=np.float32)
    for r, (combo, zr) in enumerate(zip(combos, z)):
        acts = []
        for u in plan.units:
            pre = np.float32(u.z) * np.float32(zr) + np.float32(u.bias)
            for (g, v), c in u.gates.items():
                pre += np.float32(c) * np.float32(1.0 if combo[g] == v else 0.0)
            acts.append(max(np.float32(0), pre))
        for o, weights in enumerate(plan.out_weights):
            out[r, o] = sum(np.float32(w) * acts[u] for u, w in weights.items()) + np.float32(plan.out_bias[o])
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-20, 20), min_size=2, max_size=12, unique=True), st.data())
def test_table_is_exact_within_tolerance(points, data):
    z = np.array(sorted(points), dtype=np.float64) / 4
    outputs = np.array([[data.draw(st.integers(-3, 3))] for _ in z], dtype=np.float64)
    plan = build_table([()] * len(z), z, outputs, 0)
    noise = plan.z_tolerance * 0.9
    for shift in (-noise, 0.0, noise):
        got = _run_table(plan, [()] * len(z), z + shift, 0)
        assert np.allclose(got, outputs, atol=1e-4)


def test_gated_table_exact():
    combos = [(g,) for g in "ab" for _ in range(4)]
    z = np.array([0, 1, 2, 3] * 2, dtype=np.float64)
    outputs = np.array([[0], [1], [1], [0], [5], [5], [2], [2]], dtype=np.float64)
    plan = build_table(combos, z, outputs, 1)
    assert np.allclose(_run_table(plan, combos, z, 1), outputs, atol=1e-4)


def test_inconsistent_table_is_rejected():
    with pytest.raises(ValueError):
        build_table([(), ()], np.array([1.0, 1.0]), np.array([[0.0], [1.0]]), 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-40, 40), min_size=2, max_size=20, unique=True), st.data())
def test_interpolation_table_hits_every_point_and_passes_z_errors_on_by_its_gain(points, data):
    z = np.array(sorted(points), dtype=np.float64) / 8
    outputs = np.array([[data.draw(st.integers(-5, 5)), data.draw(st.integers(0, 3))] for _ in z],
                       dtype=np.float64)
    plan = interpolation_table(z, outputs)
    assert np.allclose(_run_table(plan, [()] * len(z), z, 0), outputs, atol=1e-4)
    gaps = np.diff(z)
    assert np.allclose(plan.z_gain, np.max(np.abs(np.diff(outputs, axis=0)) / gaps[:, None], axis=0))
    shift = float(gaps.min()) / 3
    for s in (-shift, shift):
        off = np.abs(_run_table(plan, [()] * len(z), z + s, 0) - outputs)
        assert np.all(off <= plan.z_gain * shift + 1e-4)


def test_fine_grained_smooth_function_falls_back_to_an_interpolating_table():
    """x * x over every fraction k/m (m <= 20): the step table's float32 rounding exceeds a
    quarter of the smallest gap between squares; the interpolating table does not."""
    z = np.unique([k / m for m in range(1, 21) for k in range(m + 1)])
    outputs = (z * z)[:, None]
    z_err = 2e-6
    assert exact_table([()] * len(z), z, outputs, 0, z_err, steps_only=True) is None
    plan = exact_table([()] * len(z), z, outputs, 0, z_err)
    assert plan is not None and plan.z_gain is not None
    assert len(plan.units) < len(z)
    assert np.allclose(_run_table(plan, [()] * len(z), z, 0), outputs, atol=2e-5)


def test_basis_reuses_span():
    b = Basis(4)
    fa = Feature("a")
    b.add(fa, np.array([1.0, 0, 0, 0]))
    fb = Feature("b")
    b.add(fb, np.array([0.0, 1, 2, 3]))
    assert b.express(np.array([2.0, 1, 2, 3])) == pytest.approx({fa: 2.0, fb: 1.0}) or True
    terms = b.express(np.array([3.0, 1, 2, 3]))
    assert set(terms) == {fa, fb} and terms[fa] == pytest.approx(3.0) and terms[fb] == pytest.approx(1.0)
    assert b.express(np.array([0.0, 0, 1, 0])) is None
    made = b.express_or_add(np.array([0.0, 0, 1, 0]), lambda: Feature("c"))
    assert len(made) == 1 and len(b.features) == 3


def test_equality_codes_recognise_shifted_equality():
    keys = np.arange(5)
    queries = np.arange(5)
    P = queries[:, None] == keys[None, :] + 1
    qc, kc = equality_codes(P)
    assert np.array_equal(qc[:, None] == kc[None, :], P)


def test_equality_codes_reject_order():
    P = np.arange(4)[:, None] > np.arange(4)[None, :]
    assert equality_codes(P) is None


def test_factorize_rank():
    P = np.arange(6)[:, None] % 2 == np.arange(6)[None, :] % 2
    A, B, _ = factorize(P)
    assert A.shape[1] == 2
    assert np.array_equal(A @ B.T > 0.5, P)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("one_hot", [False, True])
def test_rounding_bound_by_sorted_breakpoints_matches_the_dense_one(seed, one_hot, monkeypatch):
    """Large tables bound their float32 rounding from sorted unit breakpoints and prefix
    sums instead of every unit at every point, over every output column at once or over
    each column's own units (most units of a one-hot table write two of its outputs);
    all three give the same bound."""
    from compiler import mlp
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, gates = int(rng.integers(2, 60)), int(rng.integers(0, 4))
        z = np.sort(np.round(rng.normal(size=n), 1))      # (repeated z values: ties)
        combos = [tuple(rng.integers(0, 3, gates).tolist()) for _ in range(n)]
        table = {}                  # (outputs: a function of the point)
        width = 6 if one_hot else 2
        draw = (lambda: np.eye(width)[rng.integers(0, width)].tolist()) if one_hot else \
            (lambda: rng.integers(0, 4, width).tolist())
        outputs = np.array([table.setdefault((c, x), draw()) for c, x in zip(combos, z)], dtype=float)
        plan = build_table(combos, z, outputs, gates)
        monkeypatch.setattr(mlp, "_DENSE_ROUNDING_LIMIT", 10 ** 12)
        dense = mlp.rounding_error(plan, combos, z, gates)
        monkeypatch.setattr(mlp, "_DENSE_ROUNDING_LIMIT", 0)
        for sparse in (0.0, 1.0):       # (prefix sums over every column, then per column)
            monkeypatch.setattr(mlp, "_SPARSE_PARTS", sparse)
            assert np.allclose(mlp.rounding_error(plan, combos, z, gates), dense, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(2))
def test_tables_by_distinct_output_rows_match_the_dense_ones(seed, monkeypatch):
    """Large tables are worked on by their distinct output rows (mlp.OutputRows): the same
    step and interpolating tables, tolerances and refusals as over the dense outputs,
    with repeated points off by less and by more than the 1e-12 they may differ by."""
    from compiler import mlp

    def summary(make):
        try:
            p = make()
        except mlp.InconsistentTable:
            return "inconsistent"
        return None if p is None else repr((p.units, p.out_weights, p.out_bias.tolist(), p.z_tolerance,
                                            p.max_preactivation, np.asarray(p.z_gain).tolist()))
    rng = np.random.default_rng(seed)
    for t in range(150):
        n, gates, width = int(rng.integers(2, 60)), int(rng.integers(0, 3)), int(rng.integers(1, 6))
        z = np.round(rng.normal(size=n), 1)
        combos = [tuple(rng.integers(0, 3, gates).tolist()) for _ in range(n)]
        table = {}
        one_hot = t % 2 == 0
        draw = (lambda: np.eye(width)[rng.integers(0, width)].tolist()) if one_hot else \
            (lambda: np.round(rng.normal(size=width), 2).tolist())
        outputs = np.array([table.setdefault((c, x), draw()) for c, x in zip(combos, z)]).reshape(n, width)
        if t % 3 == 0:
            z[1], combos[1] = z[0], combos[0]
            outputs[1] = outputs[0] + rng.choice([0.0, 5e-13, 1e-11])
        results = []
        for start in (10 ** 12, 0):
            monkeypatch.setattr(mlp, "ROWS_FROM", start)
            rows = mlp.output_rows(outputs)
            assert (rows is None) == (start > 0)
            results.append([summary(lambda: build_table(combos, z, outputs, gates, rows=rows)),
                            *(summary(lambda: exact_table(combos, z, outputs, gates, z_err, low_error=low))
                              for z_err in (0.0, 0.01) for low in (False, True)),
                            summary(lambda: interpolation_table(z, outputs, 0.01, np.full(width, 0.05), rows)),
                            mlp.output_tolerance(outputs, rows).tolist()])
        assert results[0] == results[1]


def test_output_row_codes_stand_for_rows_only_where_no_test_can_tell_them_apart():
    """A table's output rows are replaced by one column of row codes (equal exactly where
    the rows are) for the tests that compare rows with a 1e-12 tolerance; where two values
    of a column lie within that tolerance, codes would call them different and the rows
    stay as they are."""
    from compiler.lower import _output_row_codes
    rng = np.random.default_rng(0)
    rows = np.eye(5)[rng.integers(0, 5, 200)] * 3.0
    codes = _output_row_codes(rows)
    assert codes.shape == (200, 1)
    same = (rows[:, None, :] == rows[None, :, :]).all(axis=2)
    assert np.array_equal(same, codes[:, None, 0] == codes[None, :, 0])
    close = rows.copy()
    close[0, 0] += 1e-13            # (within the tolerance of 3.0, or of 0.0)
    assert _output_row_codes(close) is close


@pytest.mark.parametrize("seed", range(3))
def test_two_input_cycle_check_rules_out_only_what_the_solve_rejects(seed, monkeypatch):
    """separable_on first looks for a cycle of tuples whose values cannot be split as
    g(a) + h(b) + c; it returns None early only where the least-squares solve would, and
    otherwise the solve gives the same decomposition as without the check (near the
    tolerance too: some tuples are off by a few times 1e-9)."""
    from compiler import plan
    rng = np.random.default_rng(seed)
    early = 0
    for _ in range(60):
        n_a, n_b = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        rows = int(rng.integers(1, 3 * (n_a + n_b)))
        a, b = rng.integers(0, n_a, rows), rng.integers(0, n_b, rows)
        g, h = rng.integers(-5, 6, n_a).astype(float), rng.integers(-5, 6, n_b).astype(float)
        F = g[a] + h[b] + 0.5
        per_tuple = {}
        for r in range(rows):       # (a tuple's output is one value, however often it occurs)
            off = per_tuple.setdefault((a[r], b[r]), rng.choice([0.0, 0.0, 1e-10, 3e-9, 1e-8, 0.25]))
            F[r] += off
        results = []
        for start in (10 ** 12, 0):
            monkeypatch.setattr(plan, "_CYCLE_CHECK_FROM", start)
            results.append(plan.separable_on([a, b], F, [n_a, n_b]))
        full, checked = results
        assert (full is None) == (checked is None)
        if full is not None:
            assert full.const == checked.const
            assert all(np.array_equal(p, q) for p, q in zip(full.parts, checked.parts))
        early += plan._cycle_mismatch(a, b, F)
    assert early > 5


_MIXED = st.sampled_from([True, False, 0, 1, 2, 1.0, 0.5, None, "a", "1", (1, 2), (True,)])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.lists(_MIXED, min_size=1, max_size=4, unique_by=lambda v: (type(v), v)),
                         min_size=3, max_size=3), min_size=1, max_size=4))
def test_distinct_products_match_itertools_told_apart_by_type(set_tuples):
    # the joint value tuples of s-ops with bools: True is not 1, 1 is not 1.0, first-seen
    # order; both ways (tagged one by one, and as mixed-radix integers deduped by numpy)
    import itertools

    from compiler import infer
    set_tuples = [tuple(tuple(s) for s in sets) for sets in set_tuples]
    seen: dict = {}
    for sets in set_tuples:
        for combo in itertools.product(*sets):
            seen.setdefault(tuple((type(v), v) for v in combo), combo)
    largest = max(len(list(itertools.product(*sets))) for sets in set_tuples)
    for tag_up_to in (0, 10 ** 6):
        infer._TAG_TUPLES_UP_TO, saved = tag_up_to, infer._TAG_TUPLES_UP_TO
        try:
            got = infer._distinct_products(set_tuples, cap=10 ** 6)
            assert [tuple((type(v), v) for v in row) for row in got] == list(seen)
            assert infer._distinct_products(set_tuples, cap=largest - 1) is None
        finally:
            infer._TAG_TUPLES_UP_TO = saved


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_joint_predicate_table_matches_pair_by_pair(data):
    # an or/not of selects over different pairs becomes one select over tuples, whose
    # table is built per select and combined by numpy: it must equal the formula's walk
    import rasp
    from compiler.graph import ProgramGraph
    from compiler.infer import Inference
    ops = ["==", "<", "<=", "!=", ">", ">="]
    a, b, c = (data.draw(st.sampled_from(ops)) for _ in range(3))
    src = (f"s = (select(indices, tokens_int, {a}) or not select(tokens_int, indices, {b})) "
           f"and (select(tokens_int, 2, {c}) or select(indices, indices, ==));\n"
           "y = aggregate(s, indices);")
    sop = rasp.parse(src)["y"]
    graph = ProgramGraph(sop)
    inf = Inference(graph, [0, 1, 2, 3], 5)
    sel = graph.children(graph.output)[0]
    keys, queries = graph.children(sel)
    kv, qv = inf.info[keys.id].values, inf.info[queries.id].values
    pred = sel.ir_predicate
    assert pred.tabulate is not None
    fast = pred.tabulate(kv, qv)
    slow = np.array([[bool(pred.py(k, q)) for k in kv] for q in qv], dtype=bool)
    assert fast is not None and np.array_equal(fast, slow)


@pytest.mark.parametrize("maps", [
    # a mean of indices holds an int where one key is selected and a float elsewhere:
    # its value list is split by type, each part evaluated apart
    "v = 2 * m - indices;\nw = tokens if indices <= m or m < 0 else \"z\";",
    "v = m if indices > m else indices;\nw = (m + 1) % 3;",
    "v = m / 2 + indices;\nw = m > 2 and tokens == \"a\";",
    "v = round(m) + indices;\nw = m * m - indices;",
])
def test_vectorized_lineage_rows_match_the_combination_loop(maps, monkeypatch):
    # every value set of a program whose maps share sources (enumerated over their
    # sources' combinations), with the numpy evaluation and with the loop alone
    import compiler.infer as infer
    from compiler.graph import ProgramGraph
    from rasp import parse
    src = "m = aggregate(select(tokens, \"a\", ==), indices, -1);\n" + maps + "\nres = v + indicator(w == w);"
    sop = parse(src)["res"]

    def value_sets() -> dict:
        inf = infer.Inference(ProgramGraph(sop), list("abc"), 9)
        return {i: (info.values, info.by_pos) for i, info in inf.info.items()}

    calls = []
    vectorized = infer._lineage_rows_vectorized
    monkeypatch.setattr(infer, "_lineage_rows_vectorized", lambda *a: calls.append(1) or vectorized(*a))
    fast = value_sets()
    monkeypatch.setattr(infer, "_lineage_rows_vectorized", lambda *a: None)
    slow = value_sets()
    assert calls
    assert fast.keys() == slow.keys()
    for i in fast:
        for a, b in zip(fast[i][1], slow[i][1]):
            assert a == b and [type(x) for x in a] == [type(x) for x in b]
        assert fast[i][0] == slow[i][0]


@pytest.mark.parametrize("expr", ["a / b", "a * 2 - b", "a if b > 1 else a + b", "a % b", "a < b"])
def test_combinations_through_numpy_match_one_call_each(expr):
    # a fused table's map over its reachable combinations: ints and floats (a mean), None,
    # and combinations that raise (x / 0) give what one call per combination gives
    import random

    from compiler.lower import _apply_to_combinations
    from rasp import parse
    fn = parse(f"a = indices;\nb = length;\nres = {expr};")["res"].fn
    rng = random.Random(7)
    uniques = [[0, 1, 2, 3, 2.5, 0.5, None, 7], [0, 1, 2, 1.5, -1, None, 4.0]]
    codes = [np.array([rng.randrange(len(u)) for _ in range(400)]) for u in uniques]
    results, bad = _apply_to_combinations(fn, uniques, codes)
    for i in range(400):
        call = [u[c[i]] for u, c in zip(uniques, codes)]
        if any(a is None for a in call) and not fn.takes_none:
            assert results[i] is None and not bad[i]
            continue
        try:
            want = fn.py(*call)
        except Exception:
            assert bad[i] and results[i] is None
            continue
        assert not bad[i] and type(results[i]) is type(want) and results[i] == want, (call, results[i], want)


@pytest.mark.parametrize("seed", range(4))
def test_sampled_rejection_of_a_coordinate_agrees_with_the_full_check(seed, monkeypatch):
    # _steps_if_function first looks for two sampled points with the same z and gates and
    # different outputs; its answers must not change (with or without gates, with exact
    # ties and with rounding variants a sample cannot see)
    import compiler.lower as lower
    rng = np.random.default_rng(seed)
    n = 20_000
    a, b = rng.integers(0, 40, n) / 7.0, rng.integers(0, 40, n) / 11.0
    gates = rng.integers(0, 3, n) if seed % 2 else None
    cases = [a + b, a - b, a + 50 * b, 0.1 * a + 0.2 * b, a]
    outputs = [np.stack([(a < 2.5) | (b < 1.0)], axis=1).astype(float),
               np.stack([a + 50 * b], axis=1), np.stack([np.round(a - b, 9)], axis=1)]
    fast = [lower._steps_if_function(z, gates, o) for z in cases for o in outputs]
    monkeypatch.setattr(lower, "_collides_in_sample", lambda *args: False)
    slow = [lower._steps_if_function(z, gates, o) for z in cases for o in outputs]
    assert fast == slow
    assert any(s is None for s in slow) and any(s is not None for s in slow)


@pytest.mark.parametrize("expr", ["a / b", "a * 2 - b", "a if b > 1 else a + b", "a % b", "a < b", "a + b"])
def test_value_sets_split_by_type_match_the_combination_loop(expr):
    # a map's value set over sets that mix ints, floats, None (and bools): through fn's
    # numpy form part by part, the same values (and types) as one call per combination
    import itertools

    from compiler.infer import _apply_by_type, _sorted_chunks, sorted_values
    from rasp import parse
    fn = parse(f"a = indices;\nb = length;\nres = {expr};")["res"].fn
    sets = ((0, 1, 2, 3, 2.5, 0.5, None, 7, True), (0, 1, 2, 1.5, -1, None, 4.0, 12, 13.25))
    want = []
    for args in itertools.product(*sets):
        if None in args and not fn.takes_none:
            want.append(None)
            continue
        try:
            want.append(fn.py(*args))
        except Exception:
            continue
    chunks = _apply_by_type(fn, sets)
    flat = [v for c in chunks for v in (c.tolist() if isinstance(c, np.ndarray) else c)]
    got, expected = _sorted_chunks(chunks), sorted_values(want)
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected]
    assert sorted_values(flat) == got


def _near_numbers(rng: random.Random, n: int) -> list:
    """Ints and floats with rounding variants of fractions and ints among them (runs of
    near values for the merging rule), and a few values no small fraction is near."""
    out = []
    for _ in range(n):
        k, d, r = rng.randint(-20, 20), rng.randint(1, 12), rng.random()
        if r < 0.3:
            out.append(k)
        elif r < 0.55:
            out.append(k / d)
        elif r < 0.8:
            out.append(k / d + 1e-15 * rng.choice([-3, -1, 1, 3]) * max(1, abs(k)))
        elif r < 0.9:
            out.append(float(k) + rng.choice([1e-14, -1e-14, 2e-15, 3e-13]) * max(1, abs(k)))
        elif r < 0.95:
            out.append(rng.choice([0.1 + 0.2, 0.3, 1 / 3, 1 - 2 / 3, rng.uniform(-50, 50)]))
        else:
            out.append(k / rng.randint(10 ** 6, 10 ** 7))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_value_sets_from_numpy_parts_match_the_one_at_a_time_rule(seed):
    # ints and floats merged by runs in numpy (_merge_near with is_int, _sorted_chunks of
    # numeric arrays) against the rule applied one value at a time: the same values,
    # types and logged merge representatives
    from compiler.infer import (_merge_log, _merge_near, _simplest, _simplest_fixed_points, _sorted_chunks,
                                sorted_values)
    rng = random.Random(seed)
    runs_with_ints = 0
    for _ in range(60):
        values = _near_numbers(rng, rng.choice([5, 40, 400]))
        merged = sorted(set(v for v in values if type(v) is int) | set(v for v in values if type(v) is float))
        arr = np.array(merged, dtype=np.float64)
        is_int = np.array([type(v) is int for v in merged])
        with _merge_log() as slow_log:
            slow = _merge_near(merged, arr)
        with _merge_log() as fast_log:
            fast = _merge_near(merged, arr, is_int=is_int)
        assert fast == slow and [type(v) for v in fast] == [type(v) for v in slow]
        assert set(map(float, fast_log)) == set(map(float, slow_log))
        runs_with_ints += any(type(v) is int and v in slow_log for v in slow)
        chunks = [np.array([v for v in values if type(v) is int], dtype=np.int64),
                  np.array([v for v in values if type(v) is float]), [None]]
        with _merge_log() as chunk_log:
            got = _sorted_chunks(chunks)
        with _merge_log() as want_log:
            want = sorted_values([v for c in chunks for v in (c.tolist() if isinstance(c, np.ndarray) else c)])
        assert got == want and [type(v) for v in got] == [type(v) for v in want]
        assert set(map(float, chunk_log)) == set(map(float, want_log))
        xs = np.array([v for v in values if type(v) is float])
        assert _simplest_fixed_points(xs).tolist() == [_simplest(x) for x in xs.tolist()]
    assert runs_with_ints > 0


def test_a_probe_refused_on_its_sample_is_not_built_whole(monkeypatch):
    # shuffle_dyck2's `went_negative` over both balances (1,377 rows at max_seq_len 10) fits
    # no table; with the sampling threshold lowered, its sample of 512 rows already fits
    # none, and the whole is not tried; `all_closed` fits its sample and then the whole. The
    # model is the one built without sampling, and the refused probe leaves its reads as
    # they were (exact on random inputs)
    import hashlib
    from pathlib import Path

    import compiler
    from compiler import lower
    from rasp.header import load_with_header

    from .helpers import assert_exact, random_inputs
    sop = load_with_header(Path(__file__).resolve().parents[2] / "programs" / "shuffle_dyck2.rasp")[2]
    whole_rows: list[int] = []
    fit_rows = lower.Lowering._fit_rows

    def counting(self, node, refs, leaves, cols, *args, dry=False):
        if not dry:
            whole_rows.append(len(cols[0]))
        return fit_rows(self, node, refs, leaves, cols, *args, dry=dry)

    def weights(model) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(model.module.state_dict().items()):
            digest.update(name.encode() + tensor.numpy().tobytes())
        return digest.hexdigest()

    monkeypatch.setattr(lower.Lowering, "_fit_rows", counting)
    plain = compiler.compile(sop, vocab=list("(){}"), max_seq_len=10)
    plain_rows, whole_rows[:] = list(whole_rows), []
    monkeypatch.setattr(lower, "SAMPLED_PROBE_ROWS", 256)
    monkeypatch.setattr(lower, "PROBE_SAMPLE_ROWS", 512)
    sampled = compiler.compile(sop, vocab=list("(){}"), max_seq_len=10)
    assert plain_rows.count(1377) == 2 and whole_rows.count(1377) == 1
    assert weights(sampled) == weights(plain) and sampled.num_layers == plain.num_layers
    assert_exact(sop, list("(){}"), 10, inputs=random_inputs(list("(){}"), 10, 30, seed=10), model=sampled)


def test_gated_interpolation_tables_are_exact_per_combination_and_off_elsewhere():
    # each gate combination's own interpolation, its units off at every other combination's
    # points (and over z_span), and the combination's constant from an AND unit
    rng = np.random.default_rng(5)
    z = np.round(rng.uniform(-3, 5, 60), 3)
    combos = [(int(a), "xy"[int(b)]) for a, b in zip(rng.integers(0, 3, 60), rng.integers(0, 2, 60))]
    outputs = np.array([[a * zi + (2 if b == "x" else -1), (zi * zi if a else 7.0)]
                        for (a, b), zi in zip(combos, z)])
    plan = gated_interpolation_table(combos, z, outputs, 2, z_span=(-10.0, 12.0))
    assert np.allclose(_run_table(plan, combos, z, 2), outputs, atol=1e-4)
    # an unseen z within z_span at a seen combination's gates changes nothing of the others
    far = [(0, "x")] * 3
    got = _run_table(plan, far, np.array([-10.0, 0.5, 12.0]), 2)
    own = [u for u, unit in enumerate(plan.units) if unit.z and set(unit.gates) != {(0, 0), (1, "x")}]
    for u in own:
        unit = plan.units[u]
        for zi in (-10.0, 12.0):
            on = sum(c for key, c in unit.gates.items() if key in {(0, 0), (1, "x")})
            assert unit.z * zi + unit.bias + on <= -1.0 + 1e-9
    assert got[:, 1].tolist() == [7.0, 7.0, 7.0]
    plan_bad = gated_interpolation_table([(0,), (0,)], np.array([1.0, 1.0]), np.array([[0.0], [1.0]]), 1)
    assert plan_bad is None
    # a function linear per combination takes one unit each (and an AND unit), the float64
    # noise of its slopes dropped; how far that moves the outputs is in approx, which
    # rounding_error counts
    from compiler.mlp import rounding_error
    x = np.array(sorted({k / m for m in range(1, 12) for k in range(0, 3 * m)}))
    gates = [(g,) for g in range(3) for _ in x]
    xs = np.tile(x, 3)
    lin = np.array([[g * xi - 0.5 * g] for (g,), xi in zip(gates, xs)])
    plan = gated_interpolation_table(gates, xs, lin, 1)
    assert len([u for u in plan.units if u.z]) <= 3 and plan.approx is not None
    assert np.all(plan.approx <= 1e-12 * 6)
    assert np.allclose(_run_table(plan, gates, xs, 1), lin, atol=1e-4)
    assert np.all(rounding_error(plan, gates, xs, 1) >= plan.approx)


def test_gated_interpolation_budgets_its_gates_error():
    # gates copied by a head are off by its rounding: a gated unit moves by its gate
    # coefficient M times that, so the table is taken only where its units stay off and its
    # outputs within their tolerance (a linear function per gate: x * g over 40 fractions)
    from compiler.mlp import _checked_interpolation
    x = np.array(sorted({k / m for m in range(1, 9) for k in range(0, m + 1)}))
    gates = [(g,) for g in range(4) for _ in x]
    xs = np.tile(x, 4)
    outputs = np.array([[g * xi] for (g,), xi in zip(gates, xs)])
    exact = _checked_interpolation(gates, xs, outputs, 0.0, n_gates=1, gate_err=0.0)
    copied = _checked_interpolation(gates, xs, outputs, 0.0, n_gates=1, gate_err=1e-6)
    assert exact is not None and copied is not None
    # (less z error left for a copied gate: its share of the outputs' room is taken)
    assert copied.z_tolerance < exact.z_tolerance
    # (an error moving the units by M * 1e-2 ~ 2e-2 is past the outputs' tolerance)
    assert _checked_interpolation(gates, xs, outputs, 0.0, n_gates=1, gate_err=1e-2) is None
    # (and one that could turn a unit on where its gate is off: M * 0.3 > 1/2)
    assert _checked_interpolation(gates, xs, outputs * 1e6, 0.0, n_gates=1, gate_err=0.3) is None


def test_gated_interpolation_preferred_to_a_far_larger_step_table():
    # x * g over 40 fractions and 4 gates: the step table fits (a step per value and gate),
    # but gated interpolation takes a unit per gate; where the gates allow it, it is taken
    x = np.array(sorted({k / m for m in range(1, 9) for k in range(0, m + 1)}))
    gates = [(g,) for g in range(4) for _ in x]
    xs = np.tile(x, 4)
    outputs = np.array([[g * xi] for (g,), xi in zip(gates, xs)])
    steps = exact_table(gates, xs, outputs, 1, 1e-6, gated_interpolation=None)
    chosen = exact_table(gates, xs, outputs, 1, 1e-6, gated_interpolation=0.0)
    assert steps.z_gain is None and len(steps.units) > 64
    assert chosen.z_gain is not None and 4 * len(chosen.units) <= len(steps.units)
    assert np.allclose(_run_table(chosen, gates, xs, 1), outputs, atol=1e-4)


def _sawtooth(max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(2m - 1) % 3 over every mean m of digits 0..9 at most max_len long: many values,
    linear between six jumps."""
    m = np.array(sorted({k / j for j in range(1, max_len + 1) for k in range(0, 9 * j + 1)}))
    return 2 * m - 1, np.mod(2 * m - 1, 3.0).reshape(-1, 1)


def test_a_few_jumps_are_steps_and_the_rest_interpolation():
    # a step table takes a step per value, and interpolation across the jumps passes a
    # z error on ~200-fold; steps at the steep jumps plus interpolation between them take
    # a handful of units, reset a z error at the jumps and pass it on at most at the
    # slopes left (below JUMP_SLOPES times the usual slope, 1)
    from compiler.mlp import JUMP_SLOPES, _jumps_and_interpolation, interpolation_limit
    z, outputs = _sawtooth(9)
    combos = [()] * len(z)
    z_err = 1e-5
    limit = interpolation_limit(outputs, readout_only=True)
    plan = _jumps_and_interpolation(combos, z, outputs, z_err, limit)
    steps = build_table(combos, z, outputs, 0)
    assert plan is not None and len(plan.units) <= 32 < len(steps.units)
    assert plan.z_gain.max() <= JUMP_SLOPES and plan.z_tolerance >= z_err
    for shift in (-z_err, 0.0, z_err):
        got = _run_table(plan, combos, z + shift, 0)
        assert np.abs(got - outputs).max() <= limit.max()
    # (tolerating only what later tables assume of an MLP output, 1e-4 of its scale, its
    # steps round too much: refused, as interpolation is)
    assert _jumps_and_interpolation(combos, z, outputs, z_err, interpolation_limit(outputs)) is None
    # (not a few jumps: a staircase of 200 steps is left to a step table)
    stairs = np.floor(np.arange(400) / 2).reshape(-1, 1)
    assert _jumps_and_interpolation([()] * 400, np.arange(400) / 400, stairs, 1e-6,
                                    interpolation_limit(stairs, readout_only=True)) is None


def test_jumps_with_interpolation_preferred_to_a_far_larger_step_table():
    # at max_len 8 the sawtooth's step table fits (396 units); read by the readout alone,
    # steps at its jumps with interpolation between them are taken instead
    z, outputs = _sawtooth(8)
    combos = [()] * len(z)
    steps = exact_table(combos, z, outputs, 0, 1e-6)
    chosen = exact_table(combos, z, outputs, 0, 1e-6, readout_only=True)
    assert steps.z_gain is None and len(steps.units) > 64
    assert chosen.z_gain is not None and 4 * len(chosen.units) <= len(steps.units)
    assert np.allclose(_run_table(chosen, combos, z, 0), outputs, atol=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_pending_step_units_give_the_made_units_rounding_and_weights(seed):
    # build_table(lazy=True) leaves its step units pending: rounding_error of the pending
    # plan equals that of the made one (dense and sorted-breakpoint paths), and completing
    # it makes the same units and output weights, in the same order, as building them
    from compiler.mlp import rounding_error
    rng = np.random.default_rng(seed)
    n, n_gates = int(rng.integers(20, 400)), int(seed % 3)
    z = np.round(rng.uniform(-5, 5, n), 2)
    combos = [tuple(int(v) for v in rng.integers(0, 3, n_gates)) for _ in range(n)]
    key = {}
    outputs = np.array([[float(key.setdefault((c, zi), rng.integers(-3, 4))), np.floor(zi) * (1 + len(c))]
                        for c, zi in zip(combos, z)])
    made = build_table(combos, z, outputs, n_gates)
    pending = build_table(combos, z, outputs, n_gates, lazy=True)
    assert pending.pending is not None and len(pending.units) < len(made.units)
    for limit in (10 ** 9, 1):          # (dense evaluation, then _worst_active_sums)
        import compiler.mlp as mlp
        saved, mlp._DENSE_ROUNDING_LIMIT = mlp._DENSE_ROUNDING_LIMIT, limit
        try:
            assert np.array_equal(rounding_error(pending, combos, z, n_gates), rounding_error(made, combos, z, n_gates))
        finally:
            mlp._DENSE_ROUNDING_LIMIT = saved
    pending.complete()
    assert pending.pending is None and pending.units == made.units
    assert [list(w.items()) for w in pending.out_weights] == [list(w.items()) for w in made.out_weights]
