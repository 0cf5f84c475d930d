"""Fuzz the compiler's widths over selects whose keys hold different computed values.

    python bench/fuzz_widths.py [--programs 150] [--seed 0] [--lengths 5,6,8,10,12,16]

`selector_width(select(key, key, <))` over a computed key (a count, a mean, `hist - 50 *
seen`) needs its selected keys to weigh alike. Such widths may take their score features
from ordinary tables where that saves the layer of snap heads and the lowering's error
estimate finds no problem (`Compilation._widths_without_snap_heads`); these programs
exercise that choice, as selector_width or the RASP paper's BOS-mean form, read as a
number, a copy's position or a test. Each model is checked on every input of the short
lengths and on skewed random ones (one token frequent). A clear CompileError is allowed,
a wrong model is not.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import compiler  # noqa: E402
from fuzz_check import Drawn, run  # noqa: E402

BASE = """hist = selector_width(select(tokens, tokens, ==));
seen = selector_width(select(tokens, tokens, ==) and select(indices, indices, <)) > 0;
frac = numerical(aggregate(select(indices, indices, <=), indicator(tokens == "a")));
cnt_a = selector_width(select(tokens, "a", ==));
"""
KEYS = ["hist", "-hist", "hist - indicator(seen) * 50", 'hist * 2 + indicator(tokens == "b")', "frac",
        "hist + indices", "cnt_a - hist", "-hist + indices / 100", "hist if seen else 0", "frac * 3 - hist"]
COMPARISONS = ["<", "<=", ">", ">=", "!=", "=="]
READS = ["w", "aggregate(select(w, indices, ==), tokens)", "w > 2", "w + hist",
         'aggregate(select(w, indices - 1, ==), tokens, "-")']


def random_source(rng: random.Random) -> str:
    sel = f"select(key, key, {rng.choice(COMPARISONS)})"
    extra = rng.random()
    if extra < 0.3:
        sel = f"{sel} or (select(key, key, ==) and select(indices, indices, <))"
    elif extra < 0.5:
        sel = f"{sel} and select(tokens, tokens, !=)"
    elif extra < 0.6:
        sel = f"{sel} and select(indices, indices, <=)"
    width = f"selector_width({sel})" if rng.random() < 0.5 else \
        f"1 / aggregate(({sel}) or select(indices, 0, ==), indicator(indices == 0)) - 1"
    return BASE + f"key = {rng.choice(KEYS)};\nw = {width};\nres = {rng.choice(READS)};\n"


def test_inputs(rng: random.Random, vocab: list, max_len: int) -> list[list]:
    short = 6 if len(vocab) <= 3 else 5
    out = [list(p) for n in range(1, min(max_len, short) + 1) for p in itertools.product(vocab, repeat=n)]
    for n in range(1, max_len + 1):
        for _ in range(15):
            weights = [rng.random() ** 3 for _ in vocab]
            out.append(rng.choices(vocab, weights=weights, k=n))
    return out


def draw(rng: random.Random, lengths: list[int]) -> Drawn:
    source = random_source(rng)
    max_len, vocab = rng.choice(lengths), list(rng.choice(["abc", "abcd"]))
    return source, "res", vocab, max_len, lambda: test_inputs(rng, vocab, max_len)


def note(model: compiler.CompiledModel, counts: Counter) -> None:
    counts["without snap heads"] += model.program.unsnapped_widths


if __name__ == "__main__":
    sys.exit(run(__doc__, 150, "5,6,8,10,12,16", draw, note))
