"""`rasp.tracr` as a drop-in for Tracr's `tracr.rasp.rasp`.

The library below re-creates the constructors of Tracr's `compiler/lib.py` from their
documented behaviour (our own code), and the expected outputs are worked out by hand
with Tracr's evaluation rules: Map/SequenceMap skip None (the result is None), an
Aggregate of numbers (ints, bools, floats) returns sum/len (always a float), any other
value must be selected at most once, and the default is None.
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest

import rasp
from rasp import tracr as tr

from .helpers import same

EQ, LT, LEQ, GT, GEQ, NEQ, TRUE, FALSE = (tr.Comparison.EQ, tr.Comparison.LT, tr.Comparison.LEQ,
                                          tr.Comparison.GT, tr.Comparison.GEQ, tr.Comparison.NEQ,
                                          tr.Comparison.TRUE, tr.Comparison.FALSE)


# ---- a Tracr-style library (lib.py's constructors, written from their documentation) ---

def make_length():
    everything = tr.Select(tr.tokens, tr.tokens, TRUE).named("everything")
    return tr.SelectorWidth(everything).named("length")


def make_reverse(sop):
    mirrored = (make_length() - tr.indices).named("mirrored")
    mirrored = (mirrored - 1).named("mirrored_minus_one")
    flip = tr.Select(tr.indices, mirrored, EQ).named("flip")
    return tr.Aggregate(flip, sop).named("reverse")


def make_frac_prevs(bools):
    up_to_here = tr.Select(tr.indices, tr.indices, LEQ)
    return tr.numerical(tr.Aggregate(up_to_here, tr.numerical(bools), default=0)).named("frac_prevs")


def make_pair_balance(sop, open_token, close_token):
    opened = tr.numerical(make_frac_prevs(tr.numerical(sop == open_token)))
    closed = tr.numerical(make_frac_prevs(tr.numerical(sop == close_token)))
    return tr.numerical(tr.LinearSequenceMap(opened, closed, 1, -1)).named("pair_balance")


def make_shuffle_dyck(pairs):
    balances = [make_pair_balance(tr.tokens, p[0], p[1]).named(f"balance_{p}") for p in pairs]
    negative = balances[0] < 0
    for b in balances[1:]:
        negative = negative | (b < 0)
    negative = tr.numerical(tr.Map(lambda v: v, negative)).named("negative")
    went_negative = tr.numerical(tr.Aggregate(tr.Select(tr.indices, tr.indices, TRUE), negative, default=0))
    closed = balances[0] == 0
    for b in balances[1:]:
        closed = closed & (b == 0)
    at_end = tr.Select(tr.indices, make_length() - 1, EQ)
    closed_at_end = tr.Aggregate(at_end, closed).named("closed_at_end")
    return (closed_at_end & (~went_negative)).named("shuffle_dyck")


def make_hist():
    return tr.SelectorWidth(tr.Select(tr.tokens, tr.tokens, EQ)).named("hist")


def make_sort_unique(vals, keys):
    rank = tr.SelectorWidth(tr.Select(keys, keys, LT)).named("rank")
    return tr.Aggregate(tr.Select(rank, tr.indices, EQ), vals).named("sort")


def make_sort(vals, keys, *, max_seq_len, min_key):
    unique_keys = tr.SequenceMap(lambda k, i: k + min_key * i / max_seq_len, keys, tr.indices)
    return make_sort_unique(vals, unique_keys)


def make_sort_freq(max_seq_len):
    negated = -1 * make_hist()
    return make_sort(tr.tokens, negated, max_seq_len=max_seq_len, min_key=1).named("sort_freq")


def shift_by(offset, sop):
    back = tr.Select(tr.indices, tr.indices, lambda k, q: q == k + offset)
    return tr.Aggregate(back, sop, default=None).named(f"shift_by({offset})")


def detect_pattern(sop, pattern):
    found = []
    for distance, element in enumerate(reversed(pattern)):
        here = sop == element
        found.append(here if distance == 0 else shift_by(distance, here))
    result = found.pop()
    while found:
        result = result & found.pop()
    return result.named(f"detect_pattern({pattern})")


def make_count_less_freq(n):
    hist = make_hist()
    return tr.SelectorWidth(tr.Select(hist, hist, lambda k, q: k <= n)).named("count_less_freq")


def make_count(sop, token):
    return tr.SelectorWidth(tr.Select(sop, sop, lambda k, q: k == token)).named(f"count_{token}")


def make_nary_sequencemap(f, *sops):
    packed, *rest = sops
    for sop in rest:
        packed = tr.SequenceMap(lambda acc, v: (*acc, v) if isinstance(acc, tuple) else (acc, v), packed, sop)
    return tr.Map(lambda args: f(*args), packed)


# ---- the library on examples ------------------------------------------------------------

def test_make_length():
    assert same(make_length()("abcdefg"), [7] * 7)
    assert same(make_length()([5]), [1])


def test_make_reverse():
    assert same(make_reverse(tr.tokens)("Hello"), ["o", "l", "l", "e", "H"])
    # Tracr's aggregate turns a selected int into a float
    assert same(make_reverse(tr.tokens)([1, 2, 3]), [3.0, 2.0, 1.0])


def test_make_frac_prevs():
    assert same(make_frac_prevs(tr.tokens == "l")("hello"), [0.0, 0.0, 1 / 3, 0.5, 0.4])


def test_make_pair_balance():
    out = make_pair_balance(tr.tokens, "(", ")")("a()b(c))")
    # opens/(i+1) - closes/(i+1): 0, 1/2, 0, 0, 2/5-1/5, 2/6-1/6, 0, 2/8-3/8
    assert out == pytest.approx([0, 1 / 2, 0, 0, 1 / 5, 1 / 6, 0, -1 / 8])
    assert all(type(v) is float for v in out)
    assert tr.is_numerical(make_pair_balance(tr.tokens, "(", ")"))


def test_make_shuffle_dyck():
    dyck2 = make_shuffle_dyck(["()", "{}"])
    assert same(dyck2("({)}"), [True] * 4)       # interleaved pairs are fine
    # never negative but not closed at the end: 0.0 (the float from the aggregate) & True
    dyck1 = make_shuffle_dyck(["()"])
    assert same(dyck1("(("), [0.0, 0.0])
    # closed at the end but negative on the way: 1.0 & False
    assert same(dyck1(")("), [False, False])
    assert same(dyck2("(){)}"), [0.0] * 5)
    assert same(dyck1("(())"), [True] * 4)


def test_make_hist():
    assert same(make_hist()("abac"), [2, 1, 2, 1])
    assert same(make_hist()("hello"), [1, 1, 2, 2, 1])


def test_make_sort_unique_and_sort():
    assert same(make_sort_unique(tr.tokens, tr.tokens)("dbca"), ["a", "b", "c", "d"])
    assert same(make_sort_unique(tr.tokens, tr.tokens)([2, 4, 3, 1]), [1.0, 2.0, 3.0, 4.0])
    sort = make_sort(tr.tokens, tr.tokens, max_seq_len=5, min_key=1)
    # keys 2.0, 4.2, 1.4, 2.6
    assert same(sort([2, 4, 1, 2]), [1.0, 2.0, 2.0, 4.0])
    assert same(sort([2, 4, 3, 1]), [1.0, 2.0, 3.0, 4.0])


def test_make_sort_freq():
    # hist [2, 1, 2, 1] -> keys -2.0, -0.8, -1.6, -0.4
    assert same(make_sort_freq(5)([2, 4, 2, 1]), [2.0, 2.0, 4.0, 1.0])
    assert same(make_sort_freq(5)(["a", "b", "b", "c"]), ["b", "b", "a", "c"])


def test_shift_by():
    assert same(shift_by(1, tr.tokens)("abc"), [None, "a", "b"])
    assert same(shift_by(2, tr.tokens)([1, 2, 3]), [None, None, 1.0])
    assert shift_by(1, tr.tokens).name == "shift_by(1)"


def test_detect_pattern():
    detector = detect_pattern(tr.tokens, "abc")
    # shifted detectors are aggregates of bools (floats 1.0 / 0.0), combined with `and`
    assert same(detector("abcabc"), [None, None, True, 0.0, 0.0, True])
    assert same(detector("aabcc"), [None, None, 0.0, True, 0.0])
    assert detector.name == "detect_pattern(abc)"


def test_make_count_less_freq_and_count():
    assert same(make_count_less_freq(2)(["a", "a", "a", "b", "b", "c"]), [3] * 6)
    assert same(make_count_less_freq(2)(["a", "a", "c", "b", "b", "c"]), [6] * 6)
    assert same(make_count_less_freq(1)(["a", "a", "a", "b", "b", "c"]), [1] * 6)
    assert same(make_count(tr.tokens, "a")(["a", "a", "a", "b", "b", "c"]), [3] * 6)
    assert same(make_count(tr.tokens, "a")(["c", "a", "b", "c"]), [1] * 4)


def test_make_nary_sequencemap():
    combined = make_nary_sequencemap(lambda x, y, z: x + y * z, tr.tokens, tr.indices, tr.length)
    assert same(combined([1, 2, 3]), [1, 5, 9])
    words = make_nary_sequencemap(lambda a, b, c: f"{a}{b}{c}", tr.tokens, tr.indices,
                                  tr.Map(lambda s: s.upper(), tr.tokens))
    assert same(words("ab"), ["a0A", "b1B"])


# ---- Tracr's evaluation rules -----------------------------------------------------------

def test_none_propagates_through_maps_and_sequence_maps():
    shifted = shift_by(1, tr.tokens)
    assert same(tr.Map(lambda x: x + 1, shifted)([1, 2]), [None, 2.0])
    assert same(tr.SequenceMap(lambda x, y: x + y, shifted, tr.tokens)([1, 2]), [None, 3.0])
    assert same((shifted == 1)([1, 2]), [None, True])


def test_comparison_on_none_raises():
    shifted = shift_by(1, tr.tokens)
    with pytest.raises(rasp.RaspRuntimeError) as info:
        tr.Select(shifted, tr.tokens, EQ)([1, 2])
    assert "key is None" in str(info.value)
    with pytest.raises(rasp.RaspRuntimeError) as info:
        tr.Select(tr.tokens, shifted, LT)([1, 2])
    assert "query is None" in str(info.value)
    with pytest.raises(ValueError):
        EQ(None, 1)
    with pytest.raises(ValueError):
        TRUE(1, None)
    assert EQ(1, 1) is True and LT(2, 1) is False and TRUE(1, 2) is True and FALSE(1, 1) is False


def test_lambda_predicates_see_none():
    shifted = shift_by(1, tr.tokens)
    sel = tr.Select(shifted, tr.tokens, lambda k, q: k is None)
    assert sel([1, 2]) == [[True, False], [True, False]]


def test_aggregate_rules():
    everything = tr.Select(tr.indices, tr.indices, TRUE)
    assert same(tr.Aggregate(everything, tr.tokens)([1, 2]), [1.5, 1.5])
    assert same(tr.Aggregate(everything, tr.tokens)([4]), [4.0])                   # int -> float
    assert same(tr.Aggregate(everything, tr.tokens == 1)([1, 2]), [0.5, 0.5])      # bools too
    assert same(tr.Aggregate(everything, tr.Map(lambda x: x / 2, tr.tokens))([3]), [1.5])
    assert same(tr.Aggregate(everything, tr.tokens)("z"), ["z"])                   # one string
    nothing = tr.Select(tr.indices, tr.indices, FALSE)
    assert same(tr.Aggregate(nothing, tr.tokens)([1, 2]), [None, None])           # default None
    assert same(tr.Aggregate(nothing, tr.tokens, default=7)([1, 2]), [7, 7])
    with pytest.raises(rasp.RaspRuntimeError) as info:
        tr.Aggregate(everything, tr.tokens)("ab")                                  # two strings
    assert "Unsupported type for aggregation" in str(info.value)
    # two floats: tracr-pypi averages them (GitHub's Tracr raises; we give the mean)
    assert same(tr.Aggregate(everything, tr.Map(lambda x: x / 2, tr.tokens))([1, 2]), [0.75, 0.75])
    # a float first, then an int: the mean too
    halves_or_ints = tr.SequenceMap(lambda x, i: x / 2 if i == 0 else x, tr.tokens, tr.indices)
    assert same(tr.Aggregate(everything, halves_or_ints)([1, 2]), [1.25, 1.25])
    with pytest.raises(rasp.RaspRuntimeError):
        tr.Aggregate(everything, tr.SequenceMap(lambda x, i: "s" if i == 0 else x, tr.tokens,
                                                tr.indices))([1, 2])                 # a number and a string


def test_selectors_evaluate_to_lists_of_lists_of_bool():
    sel = tr.Select(tr.tokens, tr.tokens, LT)
    value = tr.evaluate(sel, [2, 1, 3])
    assert value == [[False, True, False], [False, False, False], [True, True, False]]
    assert all(type(v) is bool for row in value for v in row)
    # the same node through the IR interpreter gives 0/1
    assert rasp.evaluate(sel, [2, 1, 3]) == [[0, 1, 0], [0, 0, 0], [1, 1, 0]]


def test_operators_build_maps_with_python_semantics():
    x = tr.tokens
    assert same((x + 1)([1, 2]), [2, 3])
    assert same((1 - x)([1, 2]), [0, -1])
    assert same((x * x)([2, 3]), [4, 9])
    assert same((x / 2)([1, 4]), [0.5, 2.0])
    assert same((3 / x)([1, 2]), [3.0, 1.5])
    assert same((x > 1)([1, 2]), [False, True])
    assert same((x != 1)([1, 2]), [False, True])
    assert same((~(x == 1))([1, 2]), [False, True])
    assert same(((x > 0) & (x < 2))([0, 1, 2]), [False, True, False])
    assert same((x | 0)([0, 5]), [0, 5])      # Python `or`: returns the operand
    assert same(tr.sop_not(x)([0, 1]), [True, False])
    assert same(tr.Full(3)("abc"), [3, 3, 3])
    assert same(tr.ConstantSOp([1, 2])("ab"), [1, 2])
    assert same(tr.LinearSequenceMap(x, tr.indices, 2, -1)([5, 5]), [10, 9])


def test_constant_selector():
    sel = tr.ConstantSelector([[True, False], [True, True]])
    assert tr.evaluate(sel, "ab") == [[True, False], [True, True]]
    assert same(tr.Aggregate(sel, tr.tokens == "a")("ab"), [1.0, 0.5])


# ---- simplifications --------------------------------------------------------------------

def test_map_of_a_map_is_simplified():
    inner = tr.Map(lambda x: x * 2, tr.tokens)
    outer = tr.Map(lambda x: x + 1, inner)
    assert outer.inner is tr.tokens
    assert len(outer.children) == 1 and outer.children[0] is tr.tokens
    assert same(outer([1, 2]), [3, 5])
    kept = tr.Map(lambda x: x + 1, inner, simplify=False)
    assert kept.inner is inner
    assert same(kept([1, 2]), [3, 5])


def test_selector_and_or_not_simplify_to_one_select():
    eq = tr.Select(tr.tokens, tr.tokens, EQ)
    lt = tr.Select(tr.tokens, tr.tokens, LT)
    both = eq & lt
    either = lt | eq
    assert isinstance(both, tr.Select) and not isinstance(both, tr.SelectorAnd)
    assert isinstance(either, tr.Select)
    assert both([1, 2]) == [[False, False], [False, False]]
    assert either([2, 1, 2]) == [[True, True, True], [False, True, False], [True, True, True]]
    negated = ~eq
    assert isinstance(negated, tr.Select)
    assert negated([1, 2, 1]) == [[False, True, False], [True, False, True], [False, True, False]]
    assert isinstance(tr.selector_not(eq, simplify=False), tr.SelectorNot)
    assert isinstance(tr.selector_and(eq, lt, simplify=False), tr.SelectorAnd)
    assert isinstance(tr.selector_or(eq, lt, simplify=False), tr.SelectorOr)
    assert tr.selector_and(eq, lt, simplify=False)([1, 2]) == [[False, False], [False, False]]


def test_selector_and_with_different_keys_is_not_simplified():
    a = tr.Select(tr.indices, tr.tokens, EQ)
    b = tr.Select(tr.tokens, tr.tokens, EQ)
    both = a & b
    assert isinstance(both, tr.SelectorAnd)
    # query i: key j with j == tokens[i] and tokens[j] == tokens[i]; tokens [1, 1, 0]
    assert both([1, 1, 0]) == [[False, True, False], [False, True, False], [False, False, False]]


def test_full_keys_are_baked_into_the_simplified_predicate():
    first_query = tr.Select(tr.Full(1), tr.indices, GT)     # 1 > query: only query 0
    upto = tr.Select(tr.indices, tr.indices, LEQ)
    both = first_query & upto
    assert isinstance(both, tr.Select) and both.keys is tr.indices
    assert both("abc") == [[True, False, False], [False, False, False], [False, False, False]]


# ---- annotations and names --------------------------------------------------------------

def test_default_names_and_labels():
    m = tr.Map(lambda x: x, tr.tokens)
    assert m.name == "map"
    assert m.label == f"map_{m.unique_id}"
    other = tr.Map(lambda x: x, tr.indices)
    assert other.label != m.label
    cases = [
        (tr.SequenceMap(lambda x, y: x, tr.tokens, tr.indices), "sequence_map"),
        (tr.LinearSequenceMap(tr.tokens, tr.indices, 1, 1), "linear_sequence_map"),
        (tr.Full(0), "full"), (tr.ConstantSOp([1]), "constant_sop"),
        (tr.Select(tr.tokens, tr.tokens, EQ), "select"),
        (tr.SelectorWidth(tr.Select(tr.tokens, tr.tokens, EQ)), "selector_width"),
        (tr.Aggregate(tr.Select(tr.tokens, tr.tokens, EQ), tr.tokens), "aggregate"),
        (tr.SelectorAnd(tr.Select(tr.tokens, tr.tokens, EQ), tr.Select(tr.indices, tr.tokens, EQ)), "selector_and"),
        (tr.SelectorOr(tr.Select(tr.tokens, tr.tokens, EQ), tr.Select(tr.indices, tr.tokens, EQ)), "selector_or"),
        (tr.SelectorNot(tr.Select(tr.tokens, tr.tokens, EQ)), "selector_not"),
        (tr.ConstantSelector([[True]]), "constant_selector"),
    ]
    for expr, name in cases:
        assert expr.name == name, (expr, name)
        assert tr.default_name(expr) == name
    assert (tr.tokens.label, tr.indices.label, tr.length.label) == ("tokens", "indices", "length")
    assert (repr(tr.tokens), repr(tr.indices), repr(tr.length)) == ("tokens", "indices", "length")


def test_named_and_annotate():
    m = tr.Map(lambda x: x + 1, tr.tokens)
    assert m.named("plus_one") is m
    assert m.name == "plus_one" and m.label == f"plus_one_{m.unique_id}"
    tr.annotate(m, colour="blue")
    assert m.annotations["colour"] == "blue" and m.name == "plus_one"
    assert m.annotated(size=3) is m and m.annotations["size"] == 3
    with pytest.raises(KeyError):
        m.annotations["no_such_key"]


def test_encodings():
    m = tr.Map(lambda x: x + 1, tr.tokens)
    assert m.annotations["encoding"] == tr.Encoding.CATEGORICAL
    assert tr.is_categorical(m) and not tr.is_numerical(m)
    assert tr.numerical(m) is m
    assert tr.get_encoding(m) == tr.Encoding.NUMERICAL and tr.is_numerical(m)
    assert tr.categorical(m) is m and tr.is_categorical(m)
    assert tr.Encoding.NUMERICAL.value == "numerical"
    assert tr.numerical(m.named("n")).name == "n" and tr.is_numerical(m)   # naming keeps the encoding
    with pytest.raises(TypeError):
        tr.Select(tr.tokens, tr.tokens, EQ).annotations["encoding"]


def test_custom_default_annotators(monkeypatch):
    monkeypatch.setitem(tr.DEFAULT_ANNOTATORS, "colour", lambda expr: f"colour of {expr.name}")
    m = tr.Map(lambda x: x, tr.tokens).named("m")
    assert m.annotations["colour"] == "colour of m"


# ---- drop-in import ---------------------------------------------------------------------

def test_drop_in_import_with_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "tracr.rasp.rasp", tr)
    assert importlib.import_module("tracr.rasp.rasp") is tr
    # `from tracr.rasp import rasp` also needs the parent packages to exist
    tracr_pkg = types.ModuleType("tracr")
    rasp_pkg = types.ModuleType("tracr.rasp")
    rasp_pkg.rasp = tr
    tracr_pkg.rasp = rasp_pkg
    monkeypatch.setitem(sys.modules, "tracr", tracr_pkg)
    monkeypatch.setitem(sys.modules, "tracr.rasp", rasp_pkg)
    module = importlib.import_module("tracr.rasp").rasp
    assert module is tr
    hist = module.SelectorWidth(module.Select(module.tokens, module.tokens, module.Comparison.EQ))
    assert hist("abac") == [2, 1, 2, 1]
    # the objects are ordinary IR nodes for our interpreter (and compiler)
    assert isinstance(hist, rasp.SOp) and rasp.evaluate(hist, "aa") == [2, 2]


def test_public_names_of_tracr_rasp_exist():
    for name in ["SOp", "Selector", "RASPExpr", "Map", "SequenceMap", "LinearSequenceMap", "Full",
                 "ConstantSOp", "Select", "ConstantSelector", "SelectorWidth", "SelectorAnd",
                 "SelectorOr", "SelectorNot", "Aggregate", "Comparison", "Encoding", "numerical",
                 "categorical", "get_encoding", "is_numerical", "is_categorical", "annotate",
                 "selector_and", "selector_or", "selector_not", "sop_not", "tokens", "indices",
                 "length", "evaluate", "DEFAULT_ANNOTATORS", "default_name", "DefaultRASPEvaluator",
                 "TokensType", "IndicesType", "LengthType"]:
        assert hasattr(tr, name), name


def test_list_valued_maps_do_not_crash_the_interpreter():
    # regression: unhashable values (lists) made the batched interpreter raise TypeError
    wrapped = tr.Map(lambda x: [x], tr.tokens)
    unwrapped = tr.Map(lambda v: v[0] * 10, wrapped, simplify=False)
    assert same(unwrapped([1, 2, 1]), [10, 20, 10])
    assert tr.Select(wrapped, wrapped, EQ)([1, 2, 1]) == [[True, False, True], [False, True, False],
                                                          [True, False, True]]
    appended = tr.SequenceMap(lambda a, b: a + [b], wrapped, tr.indices)
    assert same(appended([7, 8]), [[7, 0], [8, 1]])


def test_evaluation_errors_are_value_errors_as_in_tracr():
    from rasp import tracr
    import rasp
    with pytest.raises(ValueError):
        tracr.evaluate(tracr.Aggregate(tracr.Select(tracr.tokens, tracr.tokens, tracr.Comparison.TRUE),
                                       tracr.tokens), ["a", "a"])
    assert issubclass(rasp.RaspRuntimeError, rasp.RaspError)


def test_tracr_evaluate_takes_numpy_inputs():
    import numpy as np
    from rasp import tracr
    mean = tracr.numerical(tracr.Aggregate(tracr.Select(tracr.indices, tracr.indices, tracr.Comparison.LEQ),
                                           tracr.numerical(tracr.Map(lambda x: x, tracr.tokens)), default=0))
    assert tracr.evaluate(mean, np.array([0, 1, 2], dtype=np.int32)) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("fn, whole", [
    (lambda k, q: k == q - 1, True),
    (lambda k, q: (k + q) % 3, True),              # truthiness of an int
    (lambda k, q: k == q or k == 0, False),        # `or` on arrays raises
    (lambda k, q: k % q == 0, False),              # q = 0 raises: no match there
    (lambda k, q: k == len(str(q)), False),        # one string for the whole array
    (lambda k, q: True, False),                    # not a table
    (lambda k, q: k == max(q, 1), False),          # max() on arrays raises
    (lambda k, q: k + 0 * q == len(q), False),     # a full table, but len(int) raises
    # branches on the type: the array call gives k <= q, single calls k == q, which the
    # check of two spots per row finds apart
    (lambda k, q: k == q if isinstance(q, int) else k <= q, False),
])
def test_a_lambda_predicate_table_matches_its_pairs(fn, whole):
    # the compiler tabulates a Tracr lambda by one call on object arrays where that gives
    # a full table agreeing with single calls; anything else goes pair by pair
    import numpy as np
    from rasp import ir
    pred = ir.Predicate(fn, "f", comparison=None, none_policy="call")
    keys, queries = [0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 5, 9]
    assert pred.matrix(keys, queries).tolist() == [[_holds(fn, k, q) for k in keys] for q in queries]
    as_arrays = pred._called_on_arrays(np.array(keys, dtype=object), np.array(queries, dtype=object))
    assert (as_arrays is not None) == whole


def _holds(fn, k, q) -> bool:
    try:
        return bool(fn(k, q))
    except Exception:
        return False
