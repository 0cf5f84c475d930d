"""Golden tests for the program library (programs/*.rasp).

Every expected output below was worked out by hand from the program's description and
the language semantics (DESIGN.md section 1), never by running our code. Comments show
the intermediate values where they help to check the arithmetic.
"""

from __future__ import annotations

import pytest

import compiler
import rasp
from rasp.header import parse_sequence

from .conftest import PROGRAM_NAMES, header, program_sop


def S(text: str) -> list:
    """The characters of `text` (string outputs are written as strings)."""
    return list(text)


T, F = True, False

CASES: dict[str, list[tuple]] = {
    "shift_right": [
        ("abcd", S("_abc")),
        ("a", S("_")),
        ("aab", S("_aa")),
        ("dcba", S("_dcb")),
    ],
    "shift_by_2": [
        ("abcd", S("__ab")),
        ("a", S("_")),
        ("ab", S("__")),
        ("dcbad", S("__dcb")),
    ],
    "reverse": [
        ("hello", S("olleh")),
        ("ab", S("ba")),
        ("x", S("x")),
    ],
    "length": [
        ("abcab", [5, 5, 5, 5, 5]),
        ("a", [1]),
        ("ddd", [3, 3, 3]),
    ],
    "hist": [
        ("abcbcb", [1, 3, 2, 3, 2, 3]),
        ("aaaa", [4, 4, 4, 4]),
        ("edcba", [1, 1, 1, 1, 1]),
        ("abab", [2, 2, 2, 2]),
    ],
    "double_hist": [
        ("aabcd", [1, 1, 3, 3, 3]),      # hist 2,2,1,1,1: one token twice, three once
        ("abab", [2, 2, 2, 2]),          # a and b both twice
        ("aaabbc", [1, 1, 1, 1, 1, 1]),  # frequencies 3, 2, 1: all different
        ("abcd", [4, 4, 4, 4]),
        ("a", [1]),
    ],
    "sort": [
        ("cabbad", S("aabbcd")),
        ("edcba", S("abcde")),
        ("abca", S("aabc")),
        ("b", S("b")),
    ],
    "sort_numbers": [
        ([3, 1, 4, 1, 0], [0, 1, 1, 3, 4]),
        ([2, 2, 2], [2, 2, 2]),
        ([4, 0], [0, 4]),
    ],
    "sort_unique": [
        ("dbca", S("abcd")),
        ("hgfe", S("efgh")),
        ("bab", S("ab_")),   # targets 1,0,1: both b's land on 1, nothing lands on 2
        ("cc", S("c_")),
    ],
    "sort_freq": [
        ("abbcbc", S("bbbcca")),   # hist 1,3,3,2,3,2
        ("abab", S("abab")),       # all equally frequent: input order
        ("cba", S("cba")),
        ("abcc", S("ccab")),
        ("dcdd", S("dddc")),
    ],
    "most_freq": [
        ("abbcbc", S("bbbbbb")),
        ("aabb", S("aaaa")),       # tie: a's first copy comes first
        ("cab", S("ccc")),
        ("abcc", S("cccc")),
    ],
    "majority": [
        ("abaca", S("aaaaa")),     # 3 of 5
        ("abab", S("____")),       # 2 of 4 is not more than half
        ("bbc", S("bbb")),
        ("c", S("c")),
        ("abc", S("___")),
    ],
    "count_a": [
        ("abacab", [3, 3, 3, 3, 3, 3]),
        ("bcd", [0, 0, 0]),
        ("a", [1]),
    ],
    "frac_prevs": [
        ("abaa", [1, 0.5, 2 / 3, 0.75]),
        ("bab", [0, 0.5, 1 / 3]),
        ("b", [0]),
    ],
    "pair_balance": [
        ("(()a)", [1, 1, 1 / 3, 0.25, 0]),   # running sums 1,2,1,1,0 over 1..5 positions
        (")(", [-1, 0]),
        ("ab", [0, 0]),
        ("((", [1, 1]),
    ],
    "dyck1": [
        ("(()))", S("PPPTF")),
        ("()()", S("PTPT")),
        (")(", S("FF")),
        ("((", S("PP")),
        ("(()", S("PPP")),
    ],
    "dyck2": [
        ("({}){)}", S("PPPTPFF")),
        ("({)}", S("PPFF")),
        ("(){}", S("PTPT")),
        ("}{", S("FF")),
        ("{(})", S("PPFF")),
    ],
    "shuffle_dyck2": [
        ("({)}", [T, T, T, T]),
        ("({})", [T, T, T, T]),
        ("(){", [F, F, F]),
        (")(", [F, F]),
        ("{}", [T, T]),
        ("(", [F]),
    ],
    "detect_pattern": [
        ("aabcabc", [F, F, F, T, F, F, T]),
        ("abc", [F, F, T]),
        ("cba", [F, F, F]),
        ("ab", [F, F]),
    ],
    "seq_max": [
        ([3, 1, 4, 1, 5], [5, 5, 5, 5, 5]),
        ([0, 0], [0, 0]),
        ([7], [7]),
        ([2, 6, 6, 1], [6, 6, 6, 6]),
    ],
    "seq_min": [
        ([3, 1, 4, 1, 5], [1, 1, 1, 1, 1]),
        ([7, 7], [7, 7]),
        ([0], [0]),
        ([5, 2, 6], [2, 2, 2]),
    ],
    "prefix_sum": [
        ([1, 2, 3, 0, 2], [1, 3, 6, 6, 8]),
        ([3, 3, 3], [3, 6, 9]),
        ([0], [0]),
    ],
    "running_mean": [
        ([4, 2, 0, 2], [4, 3, 2, 2]),
        ([1, 2], [1, 1.5]),
        ([3], [3]),
        ([0, 1, 1], [0, 0.5, 2 / 3]),
    ],
    "parity": [
        ("1101", [1, 0, 0, 1]),
        ("000", [0, 0, 0]),
        ("111", [1, 0, 1]),
        ("1", [1]),
    ],
    "palindrome": [
        ("abba", [T, T, T, T]),
        ("aba", [T, T, T]),
        ("ab", [F, F]),
        ("a", [T]),
        ("aab", [F, F, F]),
    ],
    "first_occurrence": [
        ("abab", [T, T, F, F]),
        ("aaa", [T, F, F]),
        ("dcba", [T, T, T, T]),
    ],
    "last_occurrence": [
        ("abab", [F, F, T, T]),
        ("aaa", [F, F, T]),
        ("abca", [F, T, T, T]),
    ],
    "unique_mask": [
        ("abcbd", [T, F, T, F, T]),
        ("aa", [F, F]),
        ("e", [T]),
    ],
    "compare_halves": [
        ("ab|ab", [T] * 5),
        ("aba|abb", [F] * 7),
        ("|", [T]),              # two empty halves
        ("a|a", [T] * 3),
        ("ab|a", [F] * 4),       # unequal halves: the "|" is not in the middle
        ("a||a", [F] * 4),
        ("ab", [F] * 2),         # no "|"
    ],
    "addition": [
        ("57+68", S("__125")),       # 57 + 68 = 125
        ("457+168", S("___0625")),   # 625: no final carry
        ("999+001", S("___1000")),   # a carry rippling through three 9-columns
        ("5+5", S("_10")),
        ("12+345", S("__0357")),     # shorter A, right-aligned
        ("0+0", S("_00")),
    ],
    "count_less_freq": [
        ("aaabbc", [3, 3, 3, 3, 3, 3]),   # b, b, c occur at most twice
        ("abcde", [5, 5, 5, 5, 5]),
        ("aaa", [0, 0, 0]),
        ("aabbb", [2, 2, 2, 2, 2]),
    ],
    "index_of": [
        ("abcbc", [2, 2, 2, 2, 2]),
        ("ab", [-1, -1]),
        ("c", [0]),
        ("aac", [2, 2, 2]),
    ],
    "n_distinct": [
        ("hello", [4, 4, 4, 4, 4]),
        ("ooo", [1, 1, 1]),
        ("hel", [3, 3, 3]),
    ],
    "running_max": [
        ([1, 0, 3, 2, 1], [1, 1, 3, 3, 3]),
        ([0, 0], [0, 0]),
        ([2, 1, 3], [2, 2, 3]),
        ([3], [3]),
    ],
    "induction": [
        ("abcab", S("___bc")),
        ("aaa", S("_aa")),
        ("abab", S("__ba")),
        ("acbcab", S("___bcc")),   # c at 3 <- b after c at 1; a at 4 <- c; b at 5 <- c after b at 2
    ],
}


def same(actual: list, expected: list) -> bool:
    """Equal outputs: bools and strings exactly, numbers with compiler.same_output's float tolerance."""
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected):
        if isinstance(e, (bool, str)) or e is None:
            if type(a) is not type(e) or a != e:
                return False
        elif isinstance(a, bool) or not isinstance(a, (int, float)) or not compiler.same_value(a, e):
            return False
    return True


GOLDEN = [(name, tokens, expected) for name, cases in CASES.items() for tokens, expected in cases]


def test_every_program_has_golden_cases():
    assert set(CASES) == set(PROGRAM_NAMES)
    assert all(len(cases) >= 2 for cases in CASES.values())


def test_library_is_big_enough():
    assert len(PROGRAM_NAMES) >= 30


@pytest.mark.parametrize("name, tokens, expected", GOLDEN, ids=[f"{g[0]}-{g[1]}" for g in GOLDEN])
def test_golden(name, tokens, expected):
    actual = rasp.evaluate(program_sop(name), tokens)
    assert same(actual, expected), f"{name} on {tokens!r}: got {actual!r}, expected {expected!r}"


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_batched_evaluation_agrees(name):
    inputs = [tokens for tokens, _ in CASES[name]]
    assert all(same(a, e) for a, (_, e) in zip(rasp.evaluate_batch(program_sop(name), inputs), CASES[name]))


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_header(name):
    h = header(name)
    assert h.description and h.description[0].isupper(), "one-line description"
    assert h.vocab, "vocab"
    assert len(set(map(repr, h.vocab))) == len(h.vocab), "vocab without repeats"
    assert h.max_len is not None and 1 <= h.max_len <= 16, "max-len"
    assert h.input, "default input"
    assert all(t in h.vocab for t in h.input), "the default input uses the vocabulary"
    assert len(h.input) <= h.max_len, "the default input fits max-len"
    assert h.output, "output name"
    if "paper-layers" in h.fields:
        assert h.get("paper-layers").isdigit()
    # the s-op named by `output` exists and runs on the default input
    assert len(rasp.evaluate(program_sop(name), h.input)) == len(h.input)


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_header_example_matches_interpreter(name):
    example = header(name).get("example")
    assert example and "->" in example, "an `# example: INPUT -> OUTPUT` line"
    lhs, rhs = (part.strip() for part in example.split("->"))
    actual = rasp.evaluate(program_sop(name), parse_sequence(lhs))
    assert same(actual, parse_sequence(rhs)), f"{example!r}: the interpreter gives {actual!r}"


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_header_is_followed_by_an_explanation(name):
    from .conftest import program_path
    lines = program_path(name).read_text().splitlines()
    comment_lines = [line for line in lines if line.startswith("#")]
    # header (description + fields) plus at least two lines explaining the idea
    assert len(comment_lines) >= len(header(name).fields) + 3
