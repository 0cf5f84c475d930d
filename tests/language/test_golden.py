"""Golden tests for the elementwise part of the language.

Every expected value is worked out by hand from the semantics (DESIGN §1) and written
literally; `check` compares values *and* types (an int must stay an int).
"""

from __future__ import annotations

import pytest

import rasp

from .helpers import check, same, value


# ---- the built-in s-ops -----------------------------------------------------------------

def test_tokens_is_tokens_str():
    check("tokens;", [1, "a", 2.5], ["1", "a", "2.5"])
    check("tokens_str;", [1, "a", 2.5], ["1", "a", "2.5"])
    check("tokens;", "hey", ["h", "e", "y"])
    prog = rasp.parse("a = tokens; b = tokens_str;")
    assert prog["a"] is prog["b"]


def test_typed_tokens():
    check("tokens_int;", ["1", "20", "-3"], [1, 20, -3])
    check("tokens_int;", [4, 5], [4, 5])
    check("tokens_float;", [1, "2", 2.5], [1.0, 2.0, 2.5])
    check("tokens_bool;", [1, 0, "", "x", True, False], [True, False, False, True, True, False])
    check("tokens_asis;", [1, "a", 2.5, True], [1, "a", 2.5, True])


def test_indices_and_length():
    check("indices;", "abcd", [0, 1, 2, 3])
    check("length;", "abcd", [4, 4, 4, 4])
    check("length;", "z", [1])
    check("indices;", "", [])
    check("length - indices;", "abc", [3, 2, 1])


# ---- arithmetic -------------------------------------------------------------------------

@pytest.mark.parametrize("src, tokens, expected", [
    ("tokens_int + 1;", [1, 2, 3], [2, 3, 4]),
    ("1 + tokens_int;", [1, 2, 3], [2, 3, 4]),
    ("tokens_int - indices;", [5, 5, 5], [5, 4, 3]),
    ("10 - tokens_int;", [1, 2], [9, 8]),
    ("tokens_int * 2;", [1, -2], [2, -4]),
    ("tokens_int * 2.5;", [1, 2], [2.5, 5.0]),
    ("tokens_int + 0.5;", [1], [1.5]),
    # int / int is a float, as in Python 3
    ("tokens_int / 2;", [1, 2, 4], [0.5, 1.0, 2.0]),
    ("tokens_int / tokens_int;", [1, 2], [1.0, 1.0]),
    ("6 / tokens_int;", [3, 4], [2.0, 1.5]),
    # % follows Python's sign rules (result has the divisor's sign)
    ("tokens_int % 3;", [-1, 2, -4, 7], [2, 2, 2, 1]),
    ("tokens_int % -3;", [1, -1, 3], [-2, -1, 0]),
    ("tokens_float % 1;", [2.5, -0.25], [0.5, 0.75]),
    # ^ is power
    ("tokens_int ^ 2;", [1, 2, -3], [1, 4, 9]),
    ("2 ^ tokens_int;", [0, 1, 3], [1, 2, 8]),
    ("tokens_int ^ -1;", [1, 2, 4], [1.0, 0.5, 0.25]),
    ("tokens_float ^ 0.5;", [4, 9], [2.0, 3.0]),
    ("-tokens_int;", [1, -2], [-1, 2]),
    ("+tokens_int;", [1, -2], [1, -2]),
    ("-tokens_int ^ 2;", [3], [9]),          # (-x)^2
    ("-tokens_int % 3;", [1, 2, 4], [2, 1, 2]),  # (-x) % 3
    # strings concatenate
    ("tokens + '!';", "ab", ["a!", "b!"]),
    ("'<' + tokens;", "ab", ["<a", "<b"]),
    ("tokens + tokens;", "ab", ["aa", "bb"]),
])
def test_arithmetic(src, tokens, expected):
    check(src, tokens, expected)


def test_big_int_arithmetic_is_exact_like_python():
    # regression: int64 products wrapped around (2^32 * 2^32 gave 0)
    check("tokens_int * tokens_int;", [2 ** 32, 3], [18446744073709551616, 9])
    check("tokens_int * 4294967296;", [2 ** 32], [18446744073709551616])
    check("tokens_int * tokens_int * tokens_int;", [2 ** 21], [9223372036854775808])
    check("tokens_int + tokens_int;", [2 ** 62, 1], [9223372036854775808, 2])
    # int / int is rounded once, as in Python: (2^53 + 1) / 3 = 3002399751580331 exactly
    check("tokens_int / 3;", [2 ** 53 + 1], [3002399751580331.0])


@pytest.mark.parametrize("src, expected", [
    ("5 / 2;", 2.5), ("4 / 2;", 2.0), ("7 % -3;", -2), ("-7 % 3;", 2), ("2 ^ 10;", 1024),
    ("2 ^ -1;", 0.5), ("1 + 2 * 3;", 7), ("'ab' + 'c';", "abc"), ("'ab' * 2;", "abab"),
    ("[1, 2] + [3];", [1, 2, 3]), ("[0] * 3;", [0, 0, 0]), ("-(3 - 5);", 2),
])
def test_arithmetic_on_atoms_is_python(src, expected):
    assert same(value(src), expected)


# ---- comparisons and logic --------------------------------------------------------------

@pytest.mark.parametrize("op, expected", [
    ("<", [True, False, False]), ("<=", [True, True, False]), (">", [False, False, True]),
    (">=", [False, True, True]), ("==", [False, True, False]), ("!=", [True, False, True]),
])
def test_comparisons_with_an_atom(op, expected):
    check(f"tokens_int {op} 2;", [1, 2, 3], expected)


def test_comparisons_between_sops_and_strings():
    check("tokens == 'a';", "aba", [True, False, True])
    check("tokens_int == indices;", [0, 2, 2], [True, False, True])
    check("tokens < 'b';", "abc", [True, False, False])
    check("'b' <= tokens;", "abc", [False, True, True])
    # a string never equals a number
    check("tokens == 1;", "1a", [False, False])
    check("tokens != 1;", "1a", [True, True])


def test_and_or_not_on_sops_give_bools():
    check("tokens_int and indices;", [0, 1, 2], [False, True, True])
    check("tokens_int or 0;", [0, 1, 2], [False, True, True])
    check("not tokens_int;", [0, 1, 2], [True, False, False])
    check("tokens == 'a' or tokens == 'b';", "abc", [True, True, False])
    check("tokens != 'a' and indices > 0;", "abab", [False, True, False, True])
    check("not (tokens == 'a');", "ab", [False, True])
    check("not tokens;", ["", "x"], [True, False])


@pytest.mark.parametrize("src, expected", [
    ("'a' and 0;", 0), ("0 or 'b';", "b"), ("'' or 0;", 0), ("3 and 4;", 4), ("not 0;", True),
    ("True and False;", False), ("1 == 1.0;", True), ("'a' < 'b';", True), ("2 != 2;", False),
])
def test_and_or_on_atoms_are_pythons(src, expected):
    assert same(value(src), expected)


# ---- round and indicator ----------------------------------------------------------------

def test_round_is_bankers_rounding_to_int():
    check("round(tokens_float);", [0.5, 1.5, 2.5, -0.5, -1.5, 2.6, -2.6, 3.0],
          [0, 2, 2, 0, -2, 3, -3, 3])
    check("round(tokens_float / 2);", [1, 3, 5, 7], [0, 2, 2, 4])
    check("round(tokens_int);", [3, -4], [3, -4])
    assert same(value("round(2.5);"), 2)
    assert same(value("round(3.5);"), 4)
    assert same(value("round(-0.4);"), 0)


def test_indicator():
    check("indicator(tokens == 'a');", "abca", [1, 0, 0, 1])
    check("indicator(tokens_int);", [0, 5, -1], [0, 1, 1])
    check("indicator(tokens);", ["", "a"], [0, 1])
    assert same(value("indicator(True);"), 1)
    assert same(value("indicator(0);"), 0)


# ---- conditionals -----------------------------------------------------------------------

def test_conditional_with_sop_condition_and_sop_branches():
    check("tokens_int if indices < 2 else indices;", [7, 8, 9], [7, 8, 2])


def test_conditional_with_sop_condition_and_mixed_branches():
    check("tokens if tokens != 'b' else '_';", "abc", ["a", "_", "c"])
    check("0 if indices == 0 else tokens_int;", [5, 6, 7], [0, 6, 7])
    check("'y' if tokens_int > 1 else 'n';", [1, 2], ["n", "y"])
    check("1 if tokens == 'a' else 0;", "abca", [1, 0, 0, 1])
    check("tokens_int if indices < 2 else 'x';", [1, 2, 3], [1, 2, "x"])


def test_conditional_chain_is_left_associative_on_sops():
    # ((t if i < 2 else -1) if i > 0 else 99); a right-associative parse would give [1, 2, -1]
    check("tokens_int if indices < 2 else -1 if indices > 0 else 99;", [1, 2, 3], [99, 2, -1])


def test_conditional_with_atom_condition_picks_a_branch_at_definition_time():
    check("tokens if 1 else 0;", "ab", ["a", "b"])
    check("tokens if 0 else indices;", "ab", [0, 1])
    assert same(value("1 if 2 > 1 else 0;"), 1)
    assert same(value("'yes' if '' else 'no';"), "no")
    # the other branch is not evaluated, so recursion terminates
    assert same(value("def fact(n) { return 1 if n == 0 else n * fact(n - 1); }\nfact(5);"), 120)
    assert same(value("1 if True else undefined_name;"), 1)


# ---- indexing ---------------------------------------------------------------------------

def test_sop_indexed_by_an_int_broadcasts_that_position():
    check("tokens_int[1];", [5, 6, 7], [6, 6, 6])
    check("tokens[0];", "xyz", ["x", "x", "x"])
    check("tokens_int[-1];", [5, 6, 7], [7, 7, 7])
    check("tokens_int[-3];", [5, 6, 7], [5, 5, 5])
    check("indices[-1];", "abcd", [3, 3, 3, 3])
    # the same s-op on inputs of different lengths
    prog = rasp.parse("last = tokens[-1];")
    assert rasp.evaluate_batch(prog["last"], ["ab", "xyz"]) == [["b", "b"], ["z", "z", "z"]]


def test_sop_index_out_of_range_gives_the_default():
    check("tokens_int[3];", [5, 6, 7], [0, 0, 0])
    check("tokens_int[-4];", [5, 6, 7], [0, 0, 0])
    check("tokens[5];", "abc", [None, None, None])
    check("tokens[-4];", "abc", [None, None, None])


def test_containers_indexed_by_an_sop_are_elementwise_lookups():
    check("[10, 20, 30][indices];", "abc", [10, 20, 30])
    check("[10, 20, 30][tokens_int];", [2, 0, -1], [30, 10, 30])
    check("'xyz'[indices];", "abc", ["x", "y", "z"])
    check("'abc'[tokens_int];", [2, 2, 0], ["c", "c", "a"])
    check("{'a': 1, 'b': 2}[tokens];", "abba", [1, 2, 2, 1])
    check("{0: 'zero', 1: 'one'}[tokens_int];", [1, 0], ["one", "zero"])


def test_indexing_atoms():
    assert same(value("[1, 2, 3][-1];"), 3)
    assert same(value("'hello'[1];"), "e")
    assert same(value("{'k': 5}['k'];"), 5)
    assert same(value("[[1, 2], [3, 4]][1][0];"), 3)


# ---- membership -------------------------------------------------------------------------

def test_sop_in_list_is_elementwise_membership():
    check("tokens in ['a', 'c'];", "abc", [True, False, True])
    check("tokens_int in [1, 3];", [1, 2, 3], [True, False, True])
    check("tokens in [];", "ab", [False, False])


def test_atom_in_sop_means_occurs_anywhere():
    check("'a' in tokens;", "bca", [True, True, True])
    check("'a' in tokens;", "bcd", [False, False, False])
    check("3 in tokens_int;", [1, 2, 3], [True, True, True])
    check("4 in tokens_int;", [1, 2, 3], [False, False, False])
    check("'a' in tokens;", "", [])


@pytest.mark.parametrize("src, expected", [
    ("'b' in 'abc';", True), ("'z' in 'abc';", False), ("2 in [1, 2];", True),
    ("4 in [1, 2];", False), ("2 in {2: 3};", True), ("3 in {2: 3};", False),
])
def test_atom_in_container(src, expected):
    assert same(value(src), expected)


# ---- encoding hints ---------------------------------------------------------------------

def test_numerical_and_categorical_hints_keep_values_and_set_annotations():
    prog = rasp.parse("a = numerical(tokens_int + 1); b = categorical(tokens == 'x'); c = tokens_int * 2;")
    assert rasp.evaluate(prog["a"], [1, 2]) == [2, 3]
    assert rasp.evaluate(prog["b"], "xy") == [True, False]
    assert prog["a"].annotations["encoding"] == "numerical"
    assert prog["b"].annotations["encoding"] == "categorical"
    assert prog["c"].annotations["encoding"] == "categorical"   # the default


def test_assigned_sops_are_named_after_their_variable():
    prog = rasp.parse("is_a = tokens == 'a';\nwidth = selector_width(select(tokens, tokens, ==));")
    assert prog["is_a"].name == "is_a"
    assert prog["width"].name == "width"
    assert prog["tokens"].name == "tokens"
    assert prog["indices"].name == "indices"


def test_evaluate_batch_groups_mixed_lengths_and_keeps_order():
    prog = rasp.parse("x = tokens_int * indices;")
    batch = [[1, 1, 1], [2], [3, 3], [], [4, 4, 4]]
    assert rasp.evaluate_batch(prog["x"], batch) == [[0, 1, 2], [0], [0, 3], [], [0, 4, 8]]
