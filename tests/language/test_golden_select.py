"""Golden tests for select, selector combinations, selector_width and aggregate.

Selector values are 0/1 matrices with one row per query: entry [q][k] is 1 iff
`keys[k] OP queries[q]`. All expected values are worked out by hand.
"""

from __future__ import annotations

import pytest

import rasp

from .helpers import check, run, same


# ---- select -----------------------------------------------------------------------------

@pytest.mark.parametrize("op, matrix", [
    ("==", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    ("!=", [[0, 1, 1], [1, 0, 1], [1, 1, 0]]),
    ("<", [[0, 0, 0], [1, 0, 0], [1, 1, 0]]),     # key < query: keys left of the query
    ("<=", [[1, 0, 0], [1, 1, 0], [1, 1, 1]]),
    (">", [[0, 1, 1], [0, 0, 1], [0, 0, 0]]),
    (">=", [[1, 1, 1], [0, 1, 1], [0, 0, 1]]),
])
def test_select_on_indices_with_every_comparison(op, matrix):
    check(f"select(indices, indices, {op});", "abc", matrix)


def test_select_keys_and_queries_play_different_roles():
    # keys = tokens_int = [2, 0, 1], queries = indices = [0, 1, 2]
    # query i selects key j iff tokens[j] < i
    check("select(tokens_int, indices, <);", [2, 0, 1], [[0, 0, 0], [0, 1, 0], [0, 1, 1]])
    # query i selects key j iff tokens[j] == i
    check("select(tokens_int, indices, ==);", [2, 0, 1], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    # swapped: query i selects key j iff j == tokens[i]
    check("select(indices, tokens_int, ==);", [2, 0, 1], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def test_select_with_atoms_and_strings():
    check("select(tokens, 'a', ==);", "aba", [[1, 0, 1], [1, 0, 1], [1, 0, 1]])
    check("select(1, 1, ==);", "ab", [[1, 1], [1, 1]])
    check("select(0, indices, <);", "abc", [[0, 0, 0], [1, 1, 1], [1, 1, 1]])
    check("select(tokens, tokens, <);", "bab", [[0, 1, 0], [0, 0, 0], [0, 1, 0]])


def test_select_on_empty_input():
    check("select(indices, indices, ==);", "", [])


# ---- selector and / or / not -------------------------------------------------------------

# On "aba": same = [[1,0,1],[0,1,0],[1,0,1]], upto = [[1,0,0],[1,1,0],[1,1,1]]
SELECTORS = "same = select(tokens, tokens, ==); upto = select(indices, indices, <=);\n"


@pytest.mark.parametrize("expr, matrix", [
    ("same and upto", [[1, 0, 0], [0, 1, 0], [1, 0, 1]]),
    ("same or upto", [[1, 0, 1], [1, 1, 0], [1, 1, 1]]),
    ("not same", [[0, 1, 0], [1, 0, 1], [0, 1, 0]]),
    ("not upto", [[0, 1, 1], [0, 0, 1], [0, 0, 0]]),
    # `not` binds tighter than `and`
    ("not same and upto", [[0, 0, 0], [1, 0, 0], [0, 1, 0]]),
    # and/or are one left-associative level: (upto or same) and (not upto)
    ("upto or same and not upto", [[0, 0, 1], [0, 0, 0], [0, 0, 0]]),
    ("upto or (same and not upto)", [[1, 0, 1], [1, 1, 0], [1, 1, 1]]),
    ("not not same", [[1, 0, 1], [0, 1, 0], [1, 0, 1]]),
])
def test_selector_combinations(expr, matrix):
    check(SELECTORS + expr + ";", "aba", matrix)


# ---- selector_width ---------------------------------------------------------------------

def test_selector_width_counts_selected_keys_per_query():
    check("selector_width(select(tokens, tokens, ==));", "aba", [2, 1, 2])
    check("selector_width(select(indices, indices, <));", "abcd", [0, 1, 2, 3])
    check("selector_width(select(tokens, 'z', ==));", "ab", [0, 0])
    check("selector_width(select(1, 1, ==));", "abc", [3, 3, 3])
    check("selector_width(select(tokens, tokens, ==) and select(indices, indices, <));", "aaba",
          [0, 1, 0, 2])
    check("selector_width(select(tokens, tokens, ==));", "", [])


# ---- aggregate --------------------------------------------------------------------------

def test_aggregate_one_selected_keeps_the_value_and_its_type():
    check("aggregate(select(indices, indices, ==), tokens_int);", [1, 2, 3], [1, 2, 3])
    check("aggregate(select(indices, indices, ==), tokens_float);", [1, 2], [1.0, 2.0])
    check("aggregate(select(indices, indices, ==), tokens_int == 2);", [1, 2], [False, True])
    # reverse
    check("aggregate(select(indices, length - indices - 1, ==), tokens);", "abc", ["c", "b", "a"])
    check("aggregate(select(indices, length - indices - 1, ==), tokens_int);", [7, 8, 9], [9, 8, 7])


def test_aggregate_several_numbers_is_a_float_mean():
    # prefix means of [1, 2, 6]: 1 (one value: stays int), (1+2)/2, (1+2+6)/3
    check("aggregate(select(indices, indices, <=), tokens_int);", [1, 2, 6], [1, 1.5, 3.0])
    check("aggregate(select(indices, indices, <=), tokens_int);", [2, 2], [2, 2.0])
    check("aggregate(select(1, 1, ==), tokens_int);", [0, 0, 1], [1 / 3, 1 / 3, 1 / 3])
    check("aggregate(select(1, 1, ==), tokens_asis);", [1, 2.5], [1.75, 1.75])
    check("aggregate(select(1, 1, ==), tokens_float);", [1, 2], [1.5, 1.5])


def test_aggregate_none_selected_gives_the_default():
    check("aggregate(select(indices, indices, <), tokens_int);", [4, 6], [0, 4])
    check("aggregate(select(indices, indices, <), tokens_int, 9);", [4, 6], [9, 4])
    check("aggregate(select(indices, indices, <), tokens_int, 'none');", [3, 4], ["none", 3])
    check("aggregate(select(indices, indices, <), tokens, '-');", "ab", ["-", "a"])
    check("aggregate(select(indices, indices, <), tokens_float, 0.5);", [3, 4], [0.5, 3.0])


@pytest.mark.parametrize("sop, expected", [
    ("tokens", [None, "a"]),              # strings -> None
    ("tokens + 'x'", [None, "ax"]),
    ("'pq'[indices]", [None, "p"]),
    ("tokens_int", [0, 1]),               # numbers -> 0
    ("tokens_float", [0, 1.0]),
    ("tokens == 'a'", [0, True]),         # bools -> 0
    ("indices", [0, 0]),
])
def test_aggregate_default_when_omitted(sop, expected):
    tokens = "ab" if "tokens_" not in sop else [1, 2]
    check(f"aggregate(select(indices, indices, <), {sop});", tokens, expected)


def test_aggregate_default_stays_none_for_strings_that_may_be_none():
    # prev = [None, 'a'] on "ab"; prev + '!' = [None, 'a!'] is still string-valued, so an
    # aggregate of it defaults to None (regression: it used to default to 0)
    src = """
    prev = aggregate(select(indices, indices - 1, ==), tokens);
    loud = prev + '!';
    again = aggregate(select(indices, indices - 1, ==), loud);
    both = tokens + prev;
    """
    check(src, "ab", [None, "a!"], "loud")
    check(src, "ab", [None, None], "again")
    check(src, "abc", [None, None, "a!"], "again")
    check(src + "both[7];", "ab", [None, None])


def test_aggregate_of_several_equal_non_numbers_is_that_value():
    check("aggregate(select(tokens, tokens, ==), tokens);", "aab", ["a", "a", "b"])
    check("aggregate(select(tokens, tokens, ==), tokens + '!');", "abab", ["a!", "b!", "a!", "b!"])
    check("aggregate(select(indices, indices, <=), tokens_int == 1);", [1, 1], [True, True])
    check("aggregate(select(1, 1, ==), tokens);", "zz", ["z", "z"])


def test_aggregate_of_several_different_non_numbers_is_an_error_naming_the_expression():
    with pytest.raises(rasp.RaspRuntimeError) as info:
        run("x = aggregate(select(1, 1, ==), tokens);", "ab", "x")
    message = str(info.value)
    assert "aggregate(select(1, 1, ==), tokens)" in message
    assert "<string>:1:5" in message
    with pytest.raises(rasp.RaspRuntimeError):
        run("aggregate(select(indices, indices, <=), tokens_int == 1);", [1, 0], "out")


def test_aggregate_of_atoms():
    check("aggregate(select(indices, 0, ==), 5);", "abc", [5, 5, 5])
    check("aggregate(select(indices, indices, <), 'x');", "ab", [None, "x"])
    check("aggregate(select(1, 1, ==), 2);", "abc", [2.0, 2.0, 2.0])


def test_aggregate_on_inputs_of_several_lengths_in_one_batch():
    prog = rasp.parse("m = aggregate(select(indices, indices, <=), tokens_int);")
    assert same(rasp.evaluate_batch(prog["m"], [[4], [1, 2], [2, 4, 6]]),
                [[4], [1, 1.5], [2, 3.0, 4.0]])


def test_selector_width_and_aggregate_compose():
    # histogram, then the largest count's token via a second aggregate
    src = """
    hist = selector_width(select(tokens, tokens, ==));
    firsts = aggregate(select(indices, 0, ==), hist);
    """
    check(src, "abaca", [3, 3, 3, 3, 3], "firsts")
    check(src, "abaca", [3, 1, 3, 1, 3], "hist")
