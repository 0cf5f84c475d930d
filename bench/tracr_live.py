"""Tracr's own warm compile time, measured here and now (`compare_tracr.py --tracr-live`).

The reference table's Tracr times were measured on another day on "a machine like this
one"; this machine's speed drifts by 20 % or more between days, and our compiles take
milliseconds, so a ratio against a copied number can move by that much. Timing Tracr in
the same minutes as our own compiles gives a ratio that does not depend on the day.
Tracr runs in a child process (rows as JSON on stdin, times as JSON on stdout), one per
pass over the table, so that JAX never shares a process with our compiles. Needs the `tracr`
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


def warm_compile_seconds_many(rows: list[tuple[str, list, int]], repeats: int = 5,
                              timeout: float = 1800.0) -> list[Optional[float]]:
    """Per (program name, vocab, max_seq_len): the best of `repeats` Tracr compiles after
    one warm-up (the reference table's settings: BOS "BOS", mlp_exactness 100), timed in
    one child process; None where Tracr has no such program or refuses it (all None if
    the child takes longer than `timeout` seconds)."""
    try:
        done = subprocess.run([sys.executable, __file__, str(repeats)], input=json.dumps(rows),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [None] * len(rows)
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if done.returncode == 0 and lines else [None] * len(rows)


def _time_here(name: str, vocab: list, max_seq_len: int, repeats: int) -> Optional[float]:
    from tracr.compiler import compiling
    build = _builders().get(name)
    if build is None:
        return None

    def once() -> float:
        program = build(max_seq_len)        # (a fresh program: Tracr annotates it in place)
        start = time.perf_counter()
        compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_seq_len,
                                        compiler_bos="BOS", mlp_exactness=100)
        return time.perf_counter() - start

    try:
        once()
        return min(once() for _ in range(repeats))
    except Exception:       # (Tracr's own refusals: unsupported programs or sizes)
        return None


if __name__ == "__main__":
    print(json.dumps([_time_here(name, vocab, n, int(sys.argv[1])) for name, vocab, n in json.loads(sys.stdin.read())]))
