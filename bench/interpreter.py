"""Benchmark of the reference interpreter: microseconds per input, by batch size.

    python bench/interpreter.py            # full table (about a minute)
    python bench/interpreter.py --quick    # smaller batches, for a smoke test

Programs: histogram, the prelude's `sort`, and Dyck-2 (the RASP paper's dyckk_ptf
with pairs ["()", "{}"], our own code in bench/dyck2.rasp), at input lengths 10 and
100, on random inputs over a small vocabulary. Each cell is the best of a few runs of
`rasp.evaluate_batch` (the program is built once, outside the timing).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import rasp  # noqa: E402
import rasp.interpreter  # noqa: E402

PROGRAMS = {
    "histogram": ("hist = selector_width(select(tokens, tokens, ==));", "hist", "abcde"),
    "sort": ("sorted = sort(tokens, tokens);", "sorted", "abcde"),
    "dyck2": (None, "dyck2_ptf", "(){}"),
}


def build(name: str):
    text, out, vocab = PROGRAMS[name]
    prog = rasp.load(HERE / "dyck2.rasp") if text is None else rasp.parse(text, f"<{name}>")
    return prog[out], vocab


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def repeats_for(batch: int, length: int) -> int:
    cells = batch * length * length
    return 5 if cells <= 1_000_000 else (3 if cells <= 10_000_000 else 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batches of 1 and 100 only")
    args = parser.parse_args()
    batches = [1, 100] if args.quick else [1, 100, 10_000]
    lengths = [10, 100]
    rng = random.Random(0)

    print("# RASP interpreter: microseconds per input (best of a few runs)\n")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}\n")
    header = ("| program | length | " + " | ".join(f"batch {b}" for b in batches) +
              f" | batch {batches[-1]}, arrays |")
    print(header)
    print("|" + "---|" * (3 + len(batches)))
    total_start = time.perf_counter()
    for name in PROGRAMS:
        node, vocab = build(name)
        for n in lengths:
            cells = []
            for b in batches:
                inputs = ["".join(rng.choice(vocab) for _ in range(n)) for _ in range(b)]
                rasp.evaluate_batch(node, inputs[:1])       # warm-up
                seconds = best_time(lambda: rasp.evaluate_batch(node, inputs), repeats_for(b, n))
                cells.append(f"{seconds / b * 1e6:,.1f}")
            # the same work without turning the results into Python lists (numpy arrays)
            interp = rasp.interpreter.Interpreter([node])
            seconds = best_time(lambda: interp.run_arrays(inputs), repeats_for(b, n))
            cells.append(f"{seconds / b * 1e6:,.2f}")
            print(f"| {name} | {n} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n(total benchmark time {time.perf_counter() - total_start:.0f} s)")
    print("\nThe last column times the interpreter proper (results as numpy arrays); the others "
          "include building Python lists of the outputs (`rasp.evaluate_batch`).")
    print("\nFor comparison: the original RASP REPL (tech-srl/RASP, pure Python, one input at a "
          "time) takes roughly 0.05-3.5 ms per input at length 10, i.e. 50-3,500 us.")


if __name__ == "__main__":
    main()
