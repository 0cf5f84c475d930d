"""What the targeted fuzzers (fuzz_rounding.py, fuzz_widths.py) share: their command line,
and compiling one drawn program and checking it against the interpreter."""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compiler  # noqa: E402
import rasp  # noqa: E402


# (source, the s-op's name in it, vocabulary, max_seq_len, the inputs to check on)
Drawn = tuple[str, str, list, int, Callable[[], list[list]]]


def run(doc: str, programs: int, lengths: str, draw: Callable[[random.Random, list[int]], Drawn],
        note: Optional[Callable[[compiler.CompiledModel, Counter], None]] = None) -> int:
    """The fuzzer's main: `--programs` programs drawn by `draw`, each checked; `note` may
    count more about each model. Exit status 1 if any model was wrong."""
    args = arguments(doc, programs, lengths)
    rng = random.Random(args.seed)
    counts: Counter = Counter()
    for _ in range(args.programs):
        source, name, vocab, max_len, inputs = draw(rng, args.lengths)
        model = check(source, rasp.parse(source)[name], vocab, max_len, inputs, counts)
        if model is not None and note is not None:
            note(model, counts)
    print(f"{args.programs} programs: {dict(counts)}")
    return 1 if counts["wrong"] else 0


def arguments(doc: str, programs: int, lengths: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--programs", type=int, default=programs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lengths", default=lengths, help="max_seq_len values to draw from")
    args = parser.parse_args()
    args.lengths = [int(n) for n in args.lengths.split(",")]
    return args


def check(source: str, sop: rasp.SOp, vocab: list, max_len: int, inputs: Callable[[], list[list]],
          counts: Counter) -> Optional[compiler.CompiledModel]:
    """Compile `sop` and compare the model with the interpreter on `inputs()`; count the
    result ("refused", "ok" or "wrong") and print a wrong model's program. The model, or
    None where the compiler refused it (a clear CompileError is allowed)."""
    try:
        model = compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
    except compiler.CompileError:
        counts["refused"] += 1
        return None
    good, expected = rasp.evaluate_accepted(sop, inputs())
    got = model.run_batch(good) if good else []
    bad = [(x, e, g) for x, e, g in zip(good, expected, got) if not compiler.same_output(e, g)]
    if bad:
        counts["wrong"] += 1
        print(f"WRONG at max_seq_len {max_len} ({len(bad)} of {len(good)} inputs), e.g. {bad[0]}:\n{source}")
    else:
        counts["ok"] += 1
    return model
