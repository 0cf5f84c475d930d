"""Our compiler on Tracr's own programs, beside Tracr's reference numbers.

    python bench/compare_tracr.py [--lengths 5,10,20,40,80] [--programs hist,sort] [--inputs 200] [--tracr-live]

For each program of ../shared/REFERENCE-NUMBERS.md (built with `rasp.tracr`, see
bench/tracr_programs.py) and each max_seq_len: layers, heads, d_model, d_mlp, params,
compile seconds (best of 5 after one warm-up compile), microseconds per sequence (CPU, batch 256) and the
share of random inputs whose whole output equals the reference interpreter, whether the
forward error bound proves the model exact (`model.exactness()`); then
Tracr's row where the reference table has one. With `--tracr-live` (needs the `tracr`
extra), Tracr's warm compile is also timed here, right after ours, on every row whose
reference has a Tracr compile time (see bench/tracr_live.py): the last two columns,
and our compile's ratio against it.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compiler  # noqa: E402
import rasp  # noqa: E402
import tracr_live  # noqa: E402
from tracr_programs import PROGRAMS  # noqa: E402

REFERENCE = Path(__file__).resolve().parent.parent.parent / "shared" / "REFERENCE-NUMBERS.md"


def reference_rows() -> dict[tuple[str, int], list[str]]:
    rows: dict[tuple[str, int], list[str]] = {}
    if not REFERENCE.exists():
        return rows
    for line in REFERENCE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and cells[1].isdigit():
            rows[(cells[0], int(cells[1]))] = cells
    return rows


def inputs_for(kind: str, vocab: list, n_max: int, count: int, seed: int = 0) -> list[list]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = 1 + (i * n_max) // count if count >= n_max else rng.randint(1, n_max)
        if kind == "distinct":
            out.append(rng.sample(vocab, min(n, len(vocab))))
        else:
            out.append([rng.choice(vocab) for _ in range(n)])
    return out


def time_per_sequence(model: compiler.CompiledModel, inputs: list[list], batch: int = 256) -> float:
    data = (inputs * (batch // max(1, len(inputs)) + 1))[:batch]
    ids, mask, _ = model.encode(data)
    with torch.no_grad():
        model.module(ids, mask)
        best = float("inf")
        for _ in range(20):
            start = time.perf_counter()
            model.module(ids, mask)
            best = min(best, time.perf_counter() - start)
    return best / batch * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="5,10,20,40,80")
    parser.add_argument("--programs", default=",".join(PROGRAMS))
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--tracr-live", action="store_true",
                        help="also time Tracr's warm compile on this machine, beside ours")
    args = parser.parse_args()
    if args.tracr_live and not tracr_live.available():
        parser.error("--tracr-live needs tracr-pypi (pip install -e '.[tracr]')")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ref = reference_rows()
    header = ("| program | n | layers | heads | d_model | d_mlp | params | compile s | µs/seq | exact % | proven |"
              " Tracr layers | Tracr d_model | Tracr params | Tracr exact % | Tracr compile s | Tracr µs/seq |" +
              (" Tracr compile s (here) | Tracr / ours (here) |" if args.tracr_live else ""))
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for name in args.programs.split(","):
        build, vocab_of, kind = PROGRAMS[name]
        for n in (int(x) for x in args.lengths.split(",")):
            sop = build(n)
            vocab = vocab_of(n)
            best = float("inf")
            model = None
            gc.collect()
            try:
                compiler.compile(sop, vocab=vocab, max_seq_len=n)   # warm-up (imports, caches)
                for _ in range(5):
                    model = compiler.compile(sop, vocab=vocab, max_seq_len=n)
                    best = min(best, model.info["compile_seconds"])
            except rasp.RaspError as err:
                print(f"| {name} | {n} | compile error: {err.message[:80]} |")
                continue
            inputs = inputs_for(kind, vocab, n, args.inputs)
            expected = rasp.evaluate_batch(sop, inputs)
            got = model.run_batch(inputs)
            exact = 100.0 * sum(compiler.same_output(e, g) for e, g in zip(expected, got)) / len(inputs)
            us = time_per_sequence(model, inputs)
            t = ref.get((name, n), [""] * 9)
            live = ""
            if args.tracr_live:
                theirs = tracr_live.warm_compile_seconds(name, vocab, n) if _has_time(t[7]) else None
                live = f" {theirs:.4f} | {theirs / best:.1f}x |" if theirs is not None else " | |"
            print(f"| {name} | {n} | {model.num_layers} | {model.num_heads} | {model.d_model} | {model.d_mlp} | "
                  f"{model.num_params} | {best:.4f} | {us:.2f} | {exact:.1f} | "
                  f"{'yes' if model.exactness()['proven_exact'] else 'no'} | {t[2]} | {t[4]} | {t[5]} | {t[6]} | "
                  f"{t[7]} | {t[8] if len(t) > 8 else ''} |" + live, flush=True)


def _has_time(cell: str) -> bool:
    """The reference has a Tracr compile time (rows without one did not compile in 120 s,
    or have no Tracr figure at all: not worth waiting for here)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    main()
