"""Fuzz the compiler: random RASP programs, compiled vs interpreted.

    python bench/fuzz.py [--programs 1000] [--max-len 5] [--seed 0] [--steps 6]

For each random program (rasp/randprog.py) the compiled model must agree with the
reference interpreter on every input of every length up to --max-len (exhaustively;
inputs on which the interpreter itself raises are skipped). Prints a summary and the
source of every program that fails (compile errors are counted separately: a clear
CompileError is allowed, a wrong model is not).
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compiler  # noqa: E402
import rasp  # noqa: E402
from rasp.randprog import VOCAB, random_program  # noqa: E402


def all_inputs(vocab: list, max_len: int) -> list[list]:
    return [list(t) for n in range(1, max_len + 1) for t in itertools.product(vocab, repeat=n)]


def check_program(source: str, max_len: int, inputs: list[list]) -> tuple[str, str]:
    """('ok' | 'compile_error' | 'wrong' | 'crash' | 'eval_error', detail)."""
    prog = rasp.parse(source)
    sop = prog["out"]
    good, expected = rasp.evaluate_accepted(sop, inputs)
    if not good:
        return "eval_error", ""
    try:
        model = compiler.compile(sop, vocab=VOCAB, max_seq_len=max_len)
    except compiler.CompileError as err:
        return "compile_error", err.message
    except Exception:  # noqa: BLE001 - any other exception is a compiler bug
        return "crash", traceback.format_exc(limit=4)
    got = model.run_batch(good)
    for x, e, g in zip(good, expected, got):
        if not compiler.same_output(e, g):
            return "wrong", f"input {x}: expected {e}, got {g}"
    return "ok", ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--max-len", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    inputs = all_inputs(VOCAB, args.max_len)
    counts: Counter = Counter()
    errors: Counter = Counter()
    start = time.time()
    for i in range(args.programs):
        source = random_program(random.Random(args.seed * 1_000_003 + i), steps=args.steps)
        status, detail = check_program(source, args.max_len, inputs)
        counts[status] += 1
        if status == "compile_error":
            errors[detail.split(":")[-1].strip()[:90]] += 1
        if status in ("wrong", "crash"):
            print(f"=== program {i}: {status}\n{source}{detail}\n", flush=True)
    print(f"{args.programs} programs in {time.time() - start:.0f}s: {dict(counts)}")
    for msg, n in errors.most_common(10):
        print(f"  compile error x{n}: {msg}")
    sys.exit(1 if counts["wrong"] or counts["crash"] else 0)


if __name__ == "__main__":
    main()
