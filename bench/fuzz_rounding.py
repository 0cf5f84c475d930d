"""Fuzz the compiler where float64 rounding decides: maps of prefix and suffix means.

    python bench/fuzz_rounding.py [--programs 200] [--seed 0] [--lengths 6,8,10,12]

bench/fuzz.py stays below max_seq_len 8, where `(indices + 1) * mean` rarely lands beside a
round number (25 * 3 * (7/25) is not 21). These programs compare and select such maps at
the lengths where it does, and each model is checked on inputs that take every count of
two tokens (shuffled). A clear CompileError is allowed, a wrong model is not: the first
runs found two (an int-listed value whose merged variants were never checked).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_check import Drawn, run  # noqa: E402

SELECTORS = ["select(indices, indices, <=)", "select(indices, indices, >=)", "select(indices, indices, <)",
             "select(tokens, tokens, ==)"]
FACTORS = ["indices + 1", "length", "indices", "length - indices", "3", "7"]
CONSTANTS = [0, 1, 2, 3, 0.5, 1.5]


def random_source(rng: random.Random) -> str:
    """Two means of token indicators, a map of them (and of a position factor), then a
    comparison, rounding or select that may fall on a rounding variant."""
    a, b = rng.sample(["a", "b", "c"], 2)
    k, c = rng.choice(FACTORS), rng.choice(CONSTANTS)
    x = rng.choice([f"{k} * ma - {k} * mb", f"{k} * (ma + mb)", f"ma * {k} + mb * 2", f"(ma - mb) * {k}",
                    f"{k} * ma", "ma / (mb + 1)", "ma + mb + ma", f'{k} * ma - {k} * mb + indicator(tokens == "a")',
                    f"(ma - mb) * {k} + 1"])
    use = rng.choice([f"x == {c}", f"x > {c}", f"x >= {c}", "x % 2", "round(x) % 3", "x < 0",
                      "selector_width(select(x, x, ==))", "selector_width(select(x, x, <))",
                      f'aggregate(select(x, {c}, ==), tokens, "-")', f"(x * 2) == {c}",
                      # (selects over rounding variants compare exact copies: compiler.rewrite)
                      "selector_width(select(x, x, <=))", "selector_width(select(x, indices, ==))",
                      "selector_width(select(x, x, ==) and select(indices, indices, <=))",
                      "aggregate(select(x, x, ==), indices, 0)", "selector_width(select(x, x, !=))",
                      f'aggregate(select(x, x, >) and select(tokens, "{a}", ==), tokens, "-")'])
    return (f'ma = aggregate({rng.choice(SELECTORS)}, indicator(tokens == "{a}"), 0);\n'
            f'mb = aggregate({rng.choice(SELECTORS)}, indicator(tokens == "{b}"), 0);\n'
            f"x = {x};\n{use};\n")


def count_inputs(rng: random.Random, max_len: int, per_length: int) -> list[list]:
    """Inputs of every length whose counts of "a" and "b" are drawn at random (the means
    then take values that uniform draws rarely reach)."""
    out = []
    for n in range(1, max_len + 1):
        for _ in range(per_length):
            ka = rng.randint(0, n)
            kb = rng.randint(0, n - ka)
            text = ["a"] * ka + ["b"] * kb + ["c"] * (n - ka - kb)
            rng.shuffle(text)
            out.append(text)
    return out


def draw(rng: random.Random, lengths: list[int]) -> Drawn:
    source = random_source(rng)
    max_len = rng.choice(lengths)
    return source, "out", list("abc"), max_len, lambda: count_inputs(rng, max_len, 12)


if __name__ == "__main__":
    sys.exit(run(__doc__, 200, "6,8,10,12", draw))
