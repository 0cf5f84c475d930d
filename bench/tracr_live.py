"""Tracr's own warm compile time, measured here and now (`compare_tracr.py --tracr-live`).

The reference table's Tracr times were measured on another day on "a machine like this
one"; this machine's speed drifts by 20 % or more between days, and our compiles take
milliseconds, so a ratio against a copied number can move by that much. Timing Tracr a
few seconds after our own compile gives a ratio that does not depend on the day. Tracr
runs in a child process (`python bench/tracr_live.py NAME N VOCAB_JSON`): with JAX
loaded, our own compiles in the same process measured 15-20 % slower. Needs the `tracr`
extra (tracr-pypi and JAX); the programs are built by tracr-pypi's own
`compiler/lib.py`, as in the reference table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Callable, Optional


def _builders() -> dict[str, Callable[[int], object]]:
    from tracr.compiler import lib
    from tracr.rasp import rasp as tr
    return {
        "length": lambda n: lib.make_length(),
        "reverse": lambda n: lib.make_reverse(tr.tokens),
        "hist": lambda n: lib.make_hist(),
        "sort_unique": lambda n: lib.make_sort_unique(tr.tokens, tr.tokens),
        "sort": lambda n: lib.make_sort(tr.tokens, tr.tokens, max_seq_len=n, min_key=1),
        "sort_freq": lambda n: lib.make_sort_freq(n),
        "frac_prevs": lambda n: lib.make_frac_prevs(tr.tokens == "a"),
        "shift_by_1": lambda n: lib.shift_by(1, tr.tokens),
        "pair_balance": lambda n: lib.make_pair_balance(tr.tokens, "(", ")"),
        "shuffle_dyck2": lambda n: lib.make_shuffle_dyck(["()", "{}"]),
        "detect_pattern_abc": lambda n: lib.detect_pattern(tr.tokens, "abc"),
        "count_less_freq_2": lambda n: lib.make_count_less_freq(2),
        "count_a": lambda n: lib.make_count(tr.tokens, "a"),
    }


def available() -> bool:
    try:
        import tracr.compiler.compiling  # noqa: F401
    except ImportError:
        return False
    return True


def warm_compile_seconds(name: str, vocab: list, max_seq_len: int, repeats: int = 5,
                         timeout: float = 300.0) -> Optional[float]:
    """Best of `repeats` Tracr compiles after one warm-up (the reference table's settings:
    BOS "BOS", mlp_exactness 100), timed in a child process; None where Tracr has no such
    program, refuses it, or takes longer than `timeout` seconds in all."""
    try:
        done = subprocess.run([sys.executable, __file__, name, str(max_seq_len), json.dumps(vocab), str(repeats)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    lines = done.stdout.split()
    return float(lines[-1]) if done.returncode == 0 and lines else None


def _time_here(name: str, vocab: list, max_seq_len: int, repeats: int) -> float:
    from tracr.compiler import compiling
    build = _builders()[name]

    def once() -> float:
        program = build(max_seq_len)        # (a fresh program: Tracr annotates it in place)
        start = time.perf_counter()
        compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_seq_len,
                                        compiler_bos="BOS", mlp_exactness=100)
        return time.perf_counter() - start

    once()
    return min(once() for _ in range(repeats))


if __name__ == "__main__":
    print(_time_here(sys.argv[1], json.loads(sys.argv[3]), int(sys.argv[2]), int(sys.argv[4])))
