"""Golden tests for every function of the prelude (rasp/prelude.rasp), worked out by hand."""

from __future__ import annotations

import pytest

import rasp

from .helpers import check

PRELUDE_NAMES = ["full_s", "has_focus", "count", "contains", "max", "min", "average",
                 "load_from_location", "shift", "mark_first_instance", "mark_last_instance",
                 "select_from_first", "select_from_last", "sort", "select_next_identical"]


def test_every_prelude_name_is_predefined():
    prog = rasp.parse("x = 1;")
    for name in PRELUDE_NAMES:
        assert name in prog, name
    # prelude names are not reported as the program's own definitions
    assert prog.names() == ["x"]


def test_full_s_selects_everything():
    check("full_s;", "abc", [[1, 1, 1], [1, 1, 1], [1, 1, 1]])
    check("selector_width(full_s);", "abcd", [4, 4, 4, 4])


def test_has_focus():
    check("has_focus(select(tokens, 'a', ==));", "bab", [True, True, True])
    check("has_focus(select(tokens, 'a', ==));", "bbb", [False, False, False])
    check("has_focus(select(indices, indices, <));", "abc", [False, True, True])
    check("has_focus(select(tokens, tokens, ==) and select(indices, indices, <));", "abab",
          [False, False, True, True])


def test_count():
    check("count(tokens, 'a');", "abaa", [3, 3, 3, 3])
    check("count(tokens, 'a');", "bbb", [0, 0, 0])
    check("count(tokens_int, 2);", [2, 1, 2], [2, 2, 2])


def test_contains():
    check("contains(tokens, 'a');", "bca", [True, True, True])
    check("contains(tokens, 'a');", "bcd", [False, False, False])
    check("contains(tokens_int, 0);", [3, 0], [True, True])


def test_max_and_min_are_elementwise():
    # tokens [3, 0, 1, 5], indices [0, 1, 2, 3]
    check("max(tokens_int, indices);", [3, 0, 1, 5], [3, 1, 2, 5])
    check("min(tokens_int, indices);", [3, 0, 1, 5], [0, 0, 1, 3])
    check("max(tokens_int, 2);", [1, 3], [2, 3])
    check("min(tokens_int, 2);", [1, 3], [1, 2])
    check("max(tokens, 'b');", "acb", ["b", "c", "b"])


def test_average():
    check("average(tokens_int);", [1, 2, 6], [3.0, 3.0, 3.0])
    check("average(tokens_int);", [1, 2], [1.5, 1.5])
    check("average(tokens_int);", [4], [4])          # one value: unchanged, still an int
    check("average(indicator(tokens == 'a'));", "aabb", [0.5, 0.5, 0.5, 0.5])


def test_load_from_location():
    check("load_from_location(tokens, 2);", "abcd", ["c", "c", "c", "c"])
    check("load_from_location(tokens, length - 1);", "abc", ["c", "c", "c"])
    check("load_from_location(tokens, 7);", "ab", [None, None])
    check("load_from_location(tokens_int, 7);", [1, 2], [0, 0])
    # position i reads position tokens[i]: [2, 0, 1] -> [t[2], t[0], t[1]]
    check("load_from_location(tokens_int, tokens_int);", [2, 0, 1], [1, 2, 0])


def test_shift():
    check("shift(tokens, 1, '_');", "abcd", ["_", "a", "b", "c"])
    check("shift(tokens, 2, '_');", "abcd", ["_", "_", "a", "b"])
    check("shift(tokens, 0, '_');", "abc", ["a", "b", "c"])
    check("shift(tokens_int, -1, 0);", [1, 2, 3], [2, 3, 0])
    check("shift(tokens, 5, '_');", "abc", ["_", "_", "_"])


def test_mark_first_and_last_instance():
    check("mark_first_instance(tokens, 'b');", "abab", [False, True, False, False])
    check("mark_last_instance(tokens, 'b');", "abab", [False, False, False, True])
    check("mark_first_instance(tokens, 'b');", "bbb", [True, False, False])
    check("mark_last_instance(tokens, 'b');", "bbb", [False, False, True])
    check("mark_first_instance(tokens, 'b');", "aaa", [False, False, False])
    check("mark_last_instance(tokens, 'b');", "aaa", [False, False, False])


def test_select_from_first_and_last():
    check("select_from_first(tokens, 'b');", "abab",
          [[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]])
    check("select_from_last(tokens, 'b');", "abab",
          [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]])
    check("aggregate(select_from_first(tokens, 'b'), indices);", "abab", [1, 1, 1, 1])
    check("aggregate(select_from_last(tokens, 'b'), indices);", "abab", [3, 3, 3, 3])
    check("aggregate(select_from_first(tokens, 'b'), indices);", "aaa", [0, 0, 0])


@pytest.mark.parametrize("src, tokens, expected", [
    ("sort(tokens, tokens);", "cabab", ["a", "a", "b", "b", "c"]),
    # stable: equal keys keep their input order (a at 1, 3; b at 2, 4; c at 0)
    ("sort(indices, tokens);", "cabab", [1, 3, 2, 4, 0]),
    ("sort(indices, tokens_int);", [5, 2, 5, 1], [3, 1, 0, 2]),
    ("sort(tokens_int, -tokens_int);", [3, 1, 2], [3, 2, 1]),
    ("sort(tokens, indices);", "xyz", ["x", "y", "z"]),
    ("sort(tokens, -indices);", "xyz", ["z", "y", "x"]),
    ("sort(tokens, tokens);", "bbbb", ["b", "b", "b", "b"]),
    ("sort(tokens, tokens);", "", []),
])
def test_sort(src, tokens, expected):
    check(src, tokens, expected)


def test_select_next_identical():
    # occurrence numbers of "abab": [0, 0, 1, 1]; each position selects the next same token
    check("select_next_identical(tokens);", "abab",
          [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    check("select_next_identical(tokens);", "aaa", [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    check("aggregate(select_next_identical(tokens), indices, -1);", "abcab", [3, 4, -1, -1, -1])


def test_prelude_names_can_be_shadowed_by_the_program():
    check("def max(a, b) { return a + b; }\nmax(tokens_int, 1);", [1, 2], [2, 3])
    check("full_s = select(indices, indices, ==);\nselector_width(full_s);", "abc", [1, 1, 1])
    # ... without changing the prelude for other programs
    check("selector_width(full_s);", "abc", [3, 3, 3])
