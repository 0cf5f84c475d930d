"""The Python API (`rasp.api`) and the evaluation entry points of `rasp`."""

from __future__ import annotations

import pytest

import rasp
from rasp import api as r

from .helpers import same

INPUTS = ["", "a", "abba", "hello", "cabbage", "zzz"]
INT_INPUTS = [[], [3], [1, 2], [5, 1, 4, 1], [0, -2, 7, 7, 3]]


def text_node(src: str, name: str = "out"):
    return rasp.parse(src)[name]


def assert_same_results(api_node, src: str, inputs) -> None:
    """The API node and the text program agree on every input, types included."""
    node = text_node(src)
    for tokens in inputs:
        a, t = rasp.evaluate(api_node, tokens), rasp.evaluate(node, tokens)
        assert same(a, t), f"{src!r} on {tokens!r}: api {a!r}, text {t!r}"


def test_histogram():
    hist = r.selector_width(r.select(r.tokens, r.tokens, "=="))
    assert same(r.evaluate(hist, "hello"), [1, 1, 2, 2, 1])
    assert_same_results(hist, "selector_width(select(tokens, tokens, ==));", INPUTS)


def test_reverse():
    rev = r.aggregate(r.select(r.indices, r.length - r.indices - 1, "=="), r.tokens)
    assert same(r.evaluate(rev, "abc"), ["c", "b", "a"])
    assert_same_results(rev, "aggregate(select(indices, length - indices - 1, ==), tokens);", INPUTS)


def test_stable_sort_with_selector_operators():
    k = r.tokens
    before = r.select(k, k, "<") | (r.select(k, k, "==") & r.select(r.indices, r.indices, "<"))
    srt = r.aggregate(r.select(r.selector_width(before), r.indices, "=="), r.tokens)
    assert same(r.evaluate(srt, "cabbage"), list("aabbceg"))
    assert_same_results(srt, "sort(tokens, tokens);", INPUTS)
    assert_same_results(~before, "not (select(tokens, tokens, <) or (select(tokens, tokens, ==) and "
                                 "select(indices, indices, <)));", INPUTS)


@pytest.mark.parametrize("build, src", [
    (lambda: r.tokens_int * 2 + 1, "tokens_int * 2 + 1;"),
    (lambda: 1 - r.tokens_int, "1 - tokens_int;"),
    (lambda: r.tokens_int / 2, "tokens_int / 2;"),
    (lambda: 10 / (r.tokens_int * 0 + 4), "10 / (tokens_int * 0 + 4);"),
    (lambda: r.tokens_int % 3, "tokens_int % 3;"),
    (lambda: 7 % (r.indices + 1), "7 % (indices + 1);"),
    (lambda: r.tokens_int ** 2, "tokens_int ^ 2;"),
    (lambda: 2 ** r.indices, "2 ^ indices;"),
    (lambda: -r.tokens_int, "-tokens_int;"),
    (lambda: r.tokens_int < r.indices, "tokens_int < indices;"),
    (lambda: r.tokens_int >= 1, "tokens_int >= 1;"),
    (lambda: r.tokens_int == 1, "tokens_int == 1;"),
    (lambda: r.tokens_int != r.indices, "tokens_int != indices;"),
    (lambda: (r.tokens_int > 0) & (r.indices > 0), "tokens_int > 0 and indices > 0;"),
    (lambda: (r.tokens_int > 0) | (r.indices > 2), "tokens_int > 0 or indices > 2;"),
    (lambda: ~(r.tokens_int > 0), "not (tokens_int > 0);"),
    (lambda: r.tokens_int & 1, "tokens_int and 1;"),
    (lambda: r.aggregate(r.select(r.indices, r.indices, "<="), r.tokens_int),
     "aggregate(select(indices, indices, <=), tokens_int);"),
    (lambda: r.aggregate(r.select(r.indices, r.indices, "<"), r.tokens_int, 9),
     "aggregate(select(indices, indices, <), tokens_int, 9);"),
    (lambda: r.aggregate(r.full_s, r.tokens_int), "aggregate(full_s, tokens_int);"),
    (lambda: r.selector_width(r.select(r.tokens_int, 1, "==")), "selector_width(select(tokens_int, 1, ==));"),
    (lambda: r.aggregate(r.select(r.indices, 0, "=="), 5), "aggregate(select(indices, 0, ==), 5);"),
])
def test_api_expressions_match_text_programs(build, src):
    assert_same_results(build(), src, INT_INPUTS)


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_select_comparisons_match_text(op):
    assert_same_results(r.select(r.tokens_int, r.indices, op), f"select(tokens_int, indices, {op});",
                        INT_INPUTS)


def test_aggregate_default_depends_on_the_value_type():
    earlier = r.select(r.indices, r.indices, "<")
    assert same(r.evaluate(r.aggregate(earlier, r.tokens), "ab"), [None, "a"])
    assert same(r.evaluate(r.aggregate(earlier, r.tokens_int), [4, 5]), [0, 4])
    assert same(r.evaluate(r.aggregate(earlier, r.tokens, "-"), "ab"), ["-", "a"])


def test_map_applies_python_functions():
    combined = r.map(lambda a, b: a * 10 + b, r.tokens_int, r.indices)
    assert same(r.evaluate(combined, [1, 2, 3]), [10, 21, 32])
    upper = r.map(str.upper, r.tokens, label="upper")
    assert same(r.evaluate(upper, "ab"), ["A", "B"])
    assert same(r.evaluate(r.aggregate(r.full_s, r.map(len, r.tokens)), ["a", "bb", "ccc"]), [2.0, 2.0, 2.0])


def test_constants_and_hints():
    c = r.constant(5)
    assert same(r.evaluate(c, "abc"), [5, 5, 5])
    n = r.numerical(r.tokens_int + 1)
    assert n.annotations["encoding"] == "numerical"
    assert r.categorical(n) is n and n.annotations["encoding"] == "categorical"


def test_select_rejects_unknown_comparisons():
    with pytest.raises(ValueError):
        r.select(r.tokens, r.tokens, "=<")
    with pytest.raises(ValueError):
        r.select(r.tokens, r.tokens, "TRUE")


# ---- evaluation entry points ------------------------------------------------------------

def test_evaluate_batch_equals_evaluate_one_by_one():
    prog = rasp.parse("""
        hist = selector_width(select(tokens, tokens, ==));
        srt = sort(tokens, tokens);
        frac = aggregate(select(indices, indices, <=), indicator(tokens == 'a'));
        prev = aggregate(select(indices, indices - 1, ==), tokens);
        sel = select(tokens, tokens, <);
    """)
    batch = INPUTS + ["a" * 7, "ba", "ab"]
    for name in ["hist", "srt", "frac", "prev", "sel"]:
        node = prog[name]
        singles = [rasp.evaluate(node, t) for t in batch]
        assert same(rasp.evaluate_batch(node, batch), singles), name
    # hand-checked values inside the batch
    assert rasp.evaluate_batch(prog["hist"], ["abba", "", "z"]) == [[2, 2, 2, 2], [], [1]]
    assert same(rasp.evaluate_batch(prog["frac"], ["ab", "aa"]), [[1, 0.5], [1, 1.0]])


def test_evaluate_batch_accepts_lists_and_strings_and_any_iterable():
    node = text_node("tokens_int + indices;")
    assert rasp.evaluate_batch(node, ([1, 1], "12", (3,))) == [[1, 2], [1, 3], [3]]
    assert rasp.evaluate_batch(node, []) == []


def test_evaluate_all_shares_one_pass():
    prog = rasp.parse("a = tokens_int + 1; b = a * 2; s = select(a, b, <);")
    nodes = [prog["a"], prog["b"], prog["s"]]
    out = rasp.evaluate_all(nodes, [[1, 2], [0]])
    assert set(out) == {n.id for n in nodes}
    assert out[prog["a"].id] == [[2, 3], [1]]
    assert out[prog["b"].id] == [[4, 6], [2]]
    # queries b = [4, 6], keys a = [2, 3]: every key is smaller than every query
    assert out[prog["s"].id] == [[[1, 1], [1, 1]], [[1]]]


def test_the_same_sop_evaluates_on_many_lengths():
    node = text_node("length - indices;")
    for n in range(0, 12):
        assert rasp.evaluate(node, "x" * n) == list(range(n, 0, -1))


def test_program_object(tmp_path):
    path = tmp_path / "p.rasp"
    path.write_text("# doc\nx = tokens == 'a';\ndef f(s) { return s; }\ny = f(x);\nn = 3;\n")
    prog = rasp.load(path)
    assert prog.names() == ["x", "f", "y", "n"]
    assert set(prog.sops()) == {"x", "y"}
    assert prog["y"] is prog["x"]
    assert prog.result_name == "n" and prog["out"] == 3
    assert "x" in prog and "zzz" not in prog and "indices" in prog
    assert rasp.evaluate(prog["x"], "ba") == [False, True]
    assert prog.filename == str(path)


def test_api_and_text_nodes_are_the_same_ir():
    text = text_node("select(tokens, tokens, ==);")
    api = r.select(r.tokens, r.tokens, "==")
    assert isinstance(text, rasp.Select) and isinstance(api, rasp.Select)
    assert isinstance(r.selector_width(api), rasp.SelectorWidth)
    assert isinstance(r.aggregate(api, r.tokens), rasp.Aggregate)
    assert isinstance(r.tokens + "x", rasp.Map)


def test_float_means_do_not_depend_on_input_length_or_batch():
    """A mean of non-integer values is summed left to right, as Python's sum() does: a
    matrix product's order changed with the input's length and the batch size, so one
    prefix gave 3.0 alone and 2.9999999999999996 inside a longer input."""
    prog = rasp.parse("m = aggregate(select(indices, indices, <=), tokens_float);\nm;", "<t>")
    x = [2.55, 2.55, 3.3, 3.3, 3.3, 3.3, 3.3, 3.3]
    alone = rasp.evaluate_accepted(prog["m"], [x[:5]])[1][0]
    longer = rasp.evaluate_accepted(prog["m"], [x])[1][0]
    batch = rasp.evaluate_accepted(prog["m"], [x] * 512)[1][-1]
    assert alone[4] == longer[4] == batch[4] == sum(x[:5]) / 5
    assert longer == [sum(x[:i + 1]) / (i + 1) for i in range(len(x))]


def test_numbers_among_other_values_are_averaged_query_by_query():
    """Each query averages when the values it selects are all numbers, and otherwise needs
    them equal: one input's strings must not change another's means, nor crash them."""
    prog = rasp.parse('v = {"0": 0, "1": 1, "2": 2, "+": "+"}[tokens];\n'
                      'm = aggregate(select(tokens, "+", !=), v, 0);\n'
                      'a = aggregate(select(1, 1, ==), v);', "<t>")
    assert same(rasp.evaluate(prog["m"], "0+1"), [0.5, 0.5, 0.5])
    assert same(rasp.evaluate(prog["a"], "++"), ["+", "+"])
    inputs = ["++", "01", "12+2", "1"]
    batch = rasp.evaluate_batch(prog["a"], inputs[:2]) + rasp.evaluate_batch(prog["m"], inputs[2:])
    assert same(batch, [["+", "+"], [0.5, 0.5], [5 / 3] * 4, [1]])
    with pytest.raises(rasp.RaspError, match=r"cannot average the values \(numbers among non-numbers\) \[0, '\+', 1\]"):
        rasp.evaluate(prog["a"], "0+1")


def test_integers_past_int64_flow_through_maps():
    """Python integers past int64 (2**64 here) stay exact through later maps (factorising
    them for a map's lookup table raised a raw OverflowError)."""
    prog = rasp.parse("big = tokens_int * 4611686018427387904 * 4;\nsmall = big % 7;\n"
                      "cmp = 10 ^ (tokens_int * 400) > 5;", "<t>")
    assert rasp.evaluate(prog["big"], [0, 1, 2]) == [0, 2 ** 64, 2 ** 65]
    assert rasp.evaluate(prog["small"], [0, 1, 2]) == [0, 2 ** 64 % 7, 2 ** 65 % 7]
    assert rasp.evaluate(prog["cmp"], [0, 1]) == [False, True]


@pytest.mark.parametrize("bad", [None, 5, 2.5])
def test_an_input_that_is_no_sequence_is_a_clean_error(bad):
    sop = rasp.parse("x = aggregate(select(indices, length - indices - 1, ==), tokens);")["x"]
    with pytest.raises(rasp.RaspInputError, match="must be a string or a sequence of tokens"):
        rasp.evaluate(sop, bad)


def test_numpy_inputs_are_their_python_values():
    import numpy as np
    sop = rasp.parse("x = selector_width(select(tokens, tokens, ==));")["x"]
    assert rasp.evaluate(sop, np.array(["a", "b", "a"])) == [2, 1, 2]
    assert rasp.evaluate(sop, np.array([3, 4, 4])) == [1, 2, 2]


def test_tracr_constant_shorter_than_the_input_is_a_clean_error():
    from rasp import tracr
    short = tracr.ConstantSOp([5, 6], check_length=False)
    with pytest.raises(rasp.RaspRuntimeError, match="shorter than the input"):
        tracr.evaluate(short, [1, 2, 3])
    assert tracr.evaluate(tracr.ConstantSOp([5, 6, 7], check_length=False), [1, 2]) == [5, 6]
    square = tracr.ConstantSelector([[1, 0], [0, 1]], check_length=False)
    with pytest.raises(rasp.RaspRuntimeError, match="smaller than the input"):
        tracr.evaluate(tracr.SelectorWidth(square), [1, 2, 3])


def test_command_line_sequences_are_json_token_lists_or_characters():
    """`[[]]` is four bracket tokens (a Dyck input), not a list holding an empty list."""
    from rasp.header import parse_sequence
    assert parse_sequence("[1, 2]") == [1, 2] and parse_sequence('["a", "bc"]') == ["a", "bc"]
    assert parse_sequence("[[]]") == list("[[]]") and parse_sequence("[]") == ["[", "]"]
    assert parse_sequence("[null, 1]") == list("[null, 1]") and parse_sequence("abc") == ["a", "b", "c"]


@pytest.mark.parametrize("build, message", [
    (lambda: r.aggregate(r.tokens, r.tokens), "aggregate's first argument must be a selector"),
    (lambda: r.selector_width(r.tokens), "selector_width's argument must be a selector"),
    (lambda: r.aggregate(r.select(r.tokens, r.tokens, "=="), r.select(r.tokens, r.tokens, "==")),
     "aggregate's second argument must be an s-op or an atom, got the selector"),
    (lambda: r.select(r.select(r.tokens, r.tokens, "=="), r.tokens, "=="), "select's keys must be an s-op"),
    (lambda: r.select(r.tokens, [1, 2], "=="), "select's queries must be an s-op or an atom"),
    (lambda: r.aggregate(r.select(r.tokens, r.tokens, "=="), r.tokens, [1]), "default must be an atom"),
    (lambda: r.map(lambda x: x), "map needs at least one s-op"),
    (lambda: r.map(r.tokens, r.tokens), "map's first argument must be a Python function"),
    (lambda: r.tokens & r.select(r.tokens, r.tokens, "=="), "not the selector"),
    (lambda: r.select(r.tokens, r.tokens, "==") & r.tokens, "not the selector"),
])
def test_api_arguments_of_the_wrong_kind_are_refused_when_built(build, message):
    """A selector where an s-op belongs (or the reverse) was taken as a constant or read
    as one: a raw numpy error at evaluation, a KeyError when compiling, or a model whose
    outputs were Select objects. The text language refuses these when it builds."""
    with pytest.raises(TypeError, match=message):
        build()


def test_api_atoms_still_become_constants():
    assert r.evaluate(r.map(lambda x: x + 1, 5), "ab") == [6, 6]
    pairs = r.map(lambda t: (t,), r.tokens)        # (tuples are values too: of joint s-ops)
    assert r.evaluate(r.selector_width(r.select(pairs, ("a",), "==")), "ab") == [1, 1]
    assert r.evaluate(r.selector_width(r.select(r.tokens, "a", "==")), "aba") == [2, 2, 2]


def test_a_file_with_a_byte_order_mark_and_windows_line_ends_loads(tmp_path):
    path = tmp_path / "bom.rasp"
    path.write_bytes('\ufeffx = tokens;\r\ny = x == "a";\r\n'.encode("utf-8"))
    assert rasp.evaluate(rasp.load(path)["y"], "ab") == [True, False]
