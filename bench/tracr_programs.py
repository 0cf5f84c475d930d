"""Tracr's compiler/lib.py programs, written against `rasp.tracr` (our drop-in module).

Written from Tracr's documented behaviour (not copied), with the same structure, so
that sizes and exactness can be compared with ../shared/REFERENCE-NUMBERS.md.
"""

from __future__ import annotations

from typing import Callable

from rasp import tracr as rasp


def make_length() -> rasp.SOp:
    every = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("all_true_selector")
    return rasp.SelectorWidth(every).named("length")


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    opp = (make_length() - rasp.indices).named("opp_idx")
    opp = (opp - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opp, rasp.Comparison.EQ).named("reverse_selector")
    return rasp.Aggregate(flip, sop).named("reverse")


def make_hist() -> rasp.SOp:
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same).named("hist")


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    target = rasp.SelectorWidth(smaller).named("target_pos")
    move = rasp.Select(target, rasp.indices, rasp.Comparison.EQ)
    return rasp.Aggregate(move, vals).named("sort")


def make_sort(vals: rasp.SOp, keys: rasp.SOp, *, max_seq_len: int, min_key: float) -> rasp.SOp:
    unique = rasp.SequenceMap(lambda x, i: x + min_key * i / max_seq_len, keys, rasp.indices)
    return make_sort_unique(vals, unique)


def make_sort_freq(max_seq_len: int) -> rasp.SOp:
    hist = -1 * make_hist().named("hist")
    return make_sort(rasp.tokens, hist, max_seq_len=max_seq_len, min_key=1).named("sort_freq")


def make_frac_prevs(bools: rasp.SOp) -> rasp.SOp:
    bools = rasp.numerical(bools)
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    return rasp.numerical(rasp.Aggregate(prevs, bools, default=0)).named("frac_prevs")


def make_pair_balance(sop: rasp.SOp, open_token: str, close_token: str) -> rasp.SOp:
    opens = rasp.numerical(make_frac_prevs(rasp.numerical(sop == open_token)))
    closes = rasp.numerical(make_frac_prevs(rasp.numerical(sop == close_token)))
    return rasp.numerical(rasp.LinearSequenceMap(opens, closes, 1, -1)).named("pair_balance")


def make_shuffle_dyck(pairs: list[str]) -> rasp.SOp:
    balances = [make_pair_balance(rasp.tokens, p[0], p[1]).named(f"balance_{p}") for p in pairs]
    any_negative = balances[0] < 0
    for b in balances[1:]:
        any_negative = any_negative | (b < 0)
    any_negative = rasp.numerical(rasp.Map(lambda x: x, any_negative)).named("any_negative")
    select_all = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    has_neg = rasp.numerical(rasp.Aggregate(select_all, any_negative, default=0)).named("has_neg")
    all_zero = balances[0] == 0
    for b in balances[1:]:
        all_zero = all_zero & (b == 0)
    select_last = rasp.Select(rasp.indices, make_length() - 1, rasp.Comparison.EQ)
    last_zero = rasp.Aggregate(select_last, all_zero).named("last_zero")
    not_has_neg = (~has_neg).named("not_has_neg")
    return (last_zero & not_has_neg).named("shuffle_dyck")


def shift_by(offset: int, sop: rasp.SOp) -> rasp.SOp:
    moved = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + offset)
    return rasp.Aggregate(moved, sop, default=None).named(f"shift_by({offset})")


def detect_pattern(sop: rasp.SOp, pattern) -> rasp.SOp:
    detectors = []
    for i, element in enumerate(reversed(pattern)):
        detector = sop == element
        if i != 0:
            detector = shift_by(i, detector)
        detectors.append(detector)
    found = detectors.pop()
    while detectors:
        found = found & detectors.pop()
    return found.named(f"detect_pattern({pattern})")


def make_count_less_freq(n: int) -> rasp.SOp:
    hist = make_hist()
    less = rasp.Select(hist, hist, lambda x, y: x <= n).named("select_less")
    return rasp.SelectorWidth(less).named("count_less_freq")


def make_count(sop: rasp.SOp, token) -> rasp.SOp:
    return rasp.SelectorWidth(rasp.Select(sop, sop, lambda k, q: k == token)).named(f"count_{token}")


# name -> (builder(max_seq_len), vocab(max_seq_len), input generator kind)
PROGRAMS: dict[str, tuple[Callable[[int], rasp.SOp], Callable[[int], list], str]] = {
    "length": (lambda n: make_length(), lambda n: list("abcde"), "any"),
    "reverse": (lambda n: make_reverse(rasp.tokens), lambda n: list("abcde"), "any"),
    "hist": (lambda n: make_hist(), lambda n: list("abcde"), "any"),
    "sort_unique": (lambda n: make_sort_unique(rasp.tokens, rasp.tokens), lambda n: list(range(n)), "distinct"),
    "sort": (lambda n: make_sort(rasp.tokens, rasp.tokens, max_seq_len=n, min_key=1), lambda n: list(range(5)), "any"),
    "sort_freq": (lambda n: make_sort_freq(n), lambda n: list("abcde"), "any"),
    "frac_prevs": (lambda n: make_frac_prevs(rasp.tokens == "a"), lambda n: list("abcde"), "any"),
    "shift_by_1": (lambda n: shift_by(1, rasp.tokens), lambda n: list("abcde"), "any"),
    "pair_balance": (lambda n: make_pair_balance(rasp.tokens, "(", ")"), lambda n: list("()abc"), "any"),
    "shuffle_dyck2": (lambda n: make_shuffle_dyck(["()", "{}"]), lambda n: list("(){}"), "any"),
    "detect_pattern_abc": (lambda n: detect_pattern(rasp.tokens, "abc"), lambda n: list("abcde"), "any"),
    "count_less_freq_2": (lambda n: make_count_less_freq(2), lambda n: list("abcde"), "any"),
    "count_a": (lambda n: make_count(rasp.tokens, "a"), lambda n: list("abcde"), "any"),
}
