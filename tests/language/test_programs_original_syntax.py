"""Whole programs written in the original RASP REPL's syntax, with hand-computed outputs.

Each program is our own; it only uses constructs of the original language (no
single quotes, no `!=` in expressions, no encoding hints) and is evaluated on several
inputs. Expected outputs are worked out by hand and written literally.
"""

from __future__ import annotations

import pytest

import rasp

from .helpers import same

HISTOGRAM = """
# how many times each token occurs in the whole input
hist = selector_width(select(tokens, tokens, ==));
"""

DOUBLE_HISTOGRAM = """
same_tok = select(tokens, tokens, ==);
hist = selector_width(same_tok);
def has_earlier_copy() {
    earlier = same_tok and select(indices, indices, <);
    return selector_width(earlier) > 0;
}
first_copy = not has_earlier_copy();
# for each position: how many distinct tokens occur as often as this one
dhist = selector_width(select(hist, hist, ==) and select(first_copy, True, ==));
"""

SORT_UNIQUE = """
def sort_unique(vals, keys) {
    smaller = select(keys, keys, <);
    target = selector_width(smaller);
    return aggregate(select(target, indices, ==), vals);
}
sorted = sort_unique(tokens, tokens);
"""

STABLE_SORT = """
def stable_sort(vals, keys) {
    before = select(keys, keys, <) or (select(keys, keys, ==) and select(indices, indices, <));
    return aggregate(select(selector_width(before), indices, ==), vals);
}
sorted_tokens = stable_sort(tokens, tokens);
order = stable_sort(indices, tokens);
"""

REVERSE = """
opp = length - indices - 1;
flip = select(indices, opp, ==);
reverse = aggregate(flip, tokens);
"""

DYCK1 = """
def dyck1() {
    prefix = select(indices, indices, <=);
    opens = round((indices + 1) * aggregate(prefix, indicator(tokens == "(")));
    closes = round((indices + 1) * aggregate(prefix, indicator(tokens == ")")));
    bal = opens - closes;
    bad = aggregate(prefix, indicator(bal < 0)) > 0;
    return "F" if bad else
            ("T" if bal == 0 else "P");
}
dyck1_ptf = dyck1();
"""

DYCK2 = """
def balanced_ptf(pairs) {
    open_chars = [p[0] for p in pairs];
    close_chars = [p[1] for p in pairs];
    is_open = indicator(tokens in open_chars);
    is_close = indicator(tokens in close_chars);
    prefix = select(indices, indices, <=);
    depth = round((indices + 1) * aggregate(prefix, is_open))
          - round((indices + 1) * aggregate(prefix, is_close));
    level = depth + is_close;     # an opener and its closer share a level
    nth = selector_width(select(level, level, ==) and prefix);
    partner = select(is_open, 1, ==) and select(level, level, ==) and select(nth, nth - 1, ==);
    opener = aggregate(partner, tokens, "?");
    ok_pair = opener + tokens in pairs;
    problem = (is_close == 1 and not ok_pair) or depth < 0;
    seen_problem = aggregate(prefix, indicator(problem)) > 0;
    return "F" if seen_problem else ("T" if depth == 0 else "P");
}
dyck2_ptf = balanced_ptf(["()", "{}"]);
"""

MOST_FREQUENT = """
hist = selector_width(select(tokens, tokens, ==));
# j is ahead of i if it is more frequent, or as frequent and earlier
ahead = select(hist, hist, >) or (select(hist, hist, ==) and select(indices, indices, <));
rank = selector_width(ahead);
most_frequent = aggregate(select(rank, 0, ==), tokens);
by_frequency = aggregate(select(rank, indices, ==), tokens);
"""

LENGTH_TRICK = """
frac_first = aggregate(select(1, 1, ==), indicator(indices == 0));
my_length = round(1 / frac_first);
"""

SHIFT_AND_PATTERN = """
def shift_right(seq, k, fill) {
    return aggregate(select(indices, indices - k, ==), seq, fill);
}
prev_tok = shift_right(tokens, 1, "^");
def detect(pattern) {
    n = len(pattern);
    found = tokens == pattern[n - 1];
    for i in range(1, n) {
        found = found and shift_right(tokens, i, "") == pattern[n - 1 - i];
    }
    return found;
}
abc_ends = detect("abc");
"""

RUNNING_COUNT = """
running = selector_width(select(tokens, tokens, ==) and select(indices, indices, <=));
"""

PALINDROME = """
rev = aggregate(select(indices, length - indices - 1, ==), tokens);
mismatch = aggregate(select(1, 1, ==), indicator(not (rev == tokens))) > 0;
pal = "yes" if not mismatch else "no";
"""

FRAC_PREVS = """
def frac_prevs(bools) {
    return aggregate(select(indices, indices, <=), indicator(bools));
}
frac_x = frac_prevs(tokens == "x");
"""

DISTINCT = """
earlier_same = select(tokens, tokens, ==) and select(indices, indices, <);
is_first = selector_width(earlier_same) == 0;
n_distinct = selector_width(select(is_first, True, ==));
first_pos = aggregate(select(tokens, tokens, ==) and select(is_first, True, ==), indices);
"""

CAESAR = """
rot = {"a": "b", "b": "c", "c": "a"};
rotated = rot[tokens];
twice = rot[rot[tokens]];
"""

DIGIT_SUM = """
total = round(aggregate(select(1, 1, ==), tokens_int) * length);
running_max = tokens_int;
for k in range(1, 4) {
    prev = aggregate(select(indices, indices - k, ==), tokens_int, 0);
    running_max = prev if prev > running_max else running_max;
}
"""

MAJORITY = """
n_a = count(tokens, "a");
n_b = count(tokens, "b");
winner = "a" if n_a > n_b else ("b" if n_b > n_a else "tie");
"""

MIN_INDEX_OF = """
# position of the first "z", or -1 if there is none
def first_index(tok) {
    is_tok = tokens == tok;
    first = is_tok and selector_width(select(is_tok, True, ==) and select(indices, indices, <)) == 0;
    return aggregate(select(first, True, ==), indices, -1);
}
z_at = first_index("z");
"""


def S(text: str) -> list:
    """The characters of `text` (expected string outputs are written as strings)."""
    return list(text)


CASES = [
    # (program, name, input, expected)
    (HISTOGRAM, "hist", "hello", [1, 1, 2, 2, 1]),
    (HISTOGRAM, "hist", "aaa", [3, 3, 3]),
    (HISTOGRAM, "hist", "abcab", [2, 2, 1, 2, 2]),
    (DOUBLE_HISTOGRAM, "dhist", "aaabbccdef", [1, 1, 1, 2, 2, 2, 2, 3, 3, 3]),
    (DOUBLE_HISTOGRAM, "dhist", "hello", [3, 3, 1, 1, 3]),
    (DOUBLE_HISTOGRAM, "dhist", "abab", [2, 2, 2, 2]),
    (SORT_UNIQUE, "sorted", "dbca", S("abcd")),
    (SORT_UNIQUE, "sorted", "hello", ["e", "h", "l", None, "o"]),   # duplicate keys collide
    (STABLE_SORT, "sorted_tokens", "hello", S("ehllo")),
    (STABLE_SORT, "order", "banana", [1, 3, 5, 0, 2, 4]),
    (STABLE_SORT, "sorted_tokens", "cba", S("abc")),
    (REVERSE, "reverse", "hello", S("olleh")),
    (REVERSE, "reverse", "ab", S("ba")),
    (REVERSE, "reverse", "x", S("x")),
    (DYCK1, "dyck1_ptf", "(())", S("PPPT")),
    (DYCK1, "dyck1_ptf", "())(", S("PTFF")),
    (DYCK1, "dyck1_ptf", ")(", S("FF")),
    (DYCK1, "dyck1_ptf", "()()", S("PTPT")),
    (DYCK2, "dyck2_ptf", "({})", S("PPPT")),
    (DYCK2, "dyck2_ptf", "({)}", S("PPFF")),
    (DYCK2, "dyck2_ptf", "(){}", S("PTPT")),
    (DYCK2, "dyck2_ptf", "}{", S("FF")),
    (DYCK2, "dyck2_ptf", "{(})", S("PPFF")),
    (DYCK2, "dyck2_ptf", "((", S("PP")),
    (MOST_FREQUENT, "most_frequent", "abbcbc", S("bbbbbb")),
    (MOST_FREQUENT, "most_frequent", "aabb", S("aaaa")),
    (MOST_FREQUENT, "by_frequency", "abbcbc", S("bbbcca")),
    (LENGTH_TRICK, "my_length", "abcd", [4, 4, 4, 4]),
    (LENGTH_TRICK, "my_length", "a", [1]),
    (LENGTH_TRICK, "my_length", "abcdefg", [7] * 7),
    (SHIFT_AND_PATTERN, "prev_tok", "abc", S("^ab")),
    (SHIFT_AND_PATTERN, "abc_ends", "abcabc", [False, False, True, False, False, True]),
    (SHIFT_AND_PATTERN, "abc_ends", "aabcc", [False, False, False, True, False]),
    (SHIFT_AND_PATTERN, "abc_ends", "ab", [False, False]),
    (RUNNING_COUNT, "running", "abaab", [1, 1, 2, 3, 2]),
    (PALINDROME, "pal", "abba", ["yes"] * 4),
    (PALINDROME, "pal", "abc", ["no"] * 3),
    (PALINDROME, "pal", "a", ["yes"]),
    (FRAC_PREVS, "frac_x", "xaxx", [1, 0.5, 2 / 3, 0.75]),
    (FRAC_PREVS, "frac_x", "ax", [0, 0.5]),
    (DISTINCT, "n_distinct", "hello", [4, 4, 4, 4, 4]),
    (DISTINCT, "first_pos", "abab", [0, 1, 0, 1]),
    (CAESAR, "rotated", "abc", S("bca")),
    (CAESAR, "twice", "abc", S("cab")),
    (DIGIT_SUM, "total", [1, 2, 3], [6, 6, 6]),
    (DIGIT_SUM, "running_max", [3, 1, 4, 1, 5], [3, 3, 4, 4, 5]),
    (MAJORITY, "winner", "aab", ["a"] * 3),
    (MAJORITY, "winner", "abb", ["b"] * 3),
    (MAJORITY, "winner", "abc", ["tie"] * 3),
    (MIN_INDEX_OF, "z_at", "abzcz", [2] * 5),
    (MIN_INDEX_OF, "z_at", "abc", [-1] * 3),
]


@pytest.mark.parametrize("program, name, tokens, expected", CASES,
                         ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_program(program, name, tokens, expected):
    prog = rasp.parse(program, filename=f"{name}.rasp")
    actual = rasp.evaluate(prog[name], tokens)
    assert same(actual, expected), f"{name} on {tokens!r}: got {actual!r}"


PROGRAMS = [HISTOGRAM, DOUBLE_HISTOGRAM, SORT_UNIQUE, STABLE_SORT, REVERSE, DYCK1, DYCK2,
            MOST_FREQUENT, LENGTH_TRICK, SHIFT_AND_PATTERN, RUNNING_COUNT, PALINDROME,
            FRAC_PREVS, DISTINCT, CAESAR, DIGIT_SUM, MAJORITY, MIN_INDEX_OF]


def test_there_are_at_least_fifteen_programs():
    assert len(PROGRAMS) >= 15


def test_programs_use_only_original_syntax():
    for text in PROGRAMS:
        assert "'" not in text and "!=" not in text
        assert "numerical" not in text and "categorical" not in text


@pytest.mark.parametrize("program, name", [(c[0], c[1]) for c in CASES[::3]])
def test_batched_evaluation_matches_single_inputs(program, name):
    node = rasp.parse(program)[name]
    inputs = [c[2] for c in CASES if c[0] is program]
    expected = [rasp.evaluate(node, t) for t in inputs]
    assert rasp.evaluate_batch(node, inputs) == expected


def test_benchmark_dyck2_program_file():
    # bench/dyck2.rasp (used by bench/interpreter.py) is the same Dyck-2 PTF as above
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "bench" / "dyck2.rasp"
    node = rasp.load(path)["dyck2_ptf"]
    assert rasp.evaluate_batch(node, ["({})", "({)}", "(){}", "}{", "(("]) == [
        S("PPPT"), S("PPFF"), S("PTPT"), S("FF"), S("PP")]
