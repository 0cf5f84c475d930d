"""Shared helpers for the inspection tests: library programs, compiled once per session."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest

import rasp
from rasp.errors import RaspError
from rasp.header import load_with_header

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS_DIR = ROOT / "programs"
PROGRAM_NAMES = sorted(p.stem for p in PROGRAMS_DIR.glob("*.rasp"))


def program_path(name: str) -> Path:
    return PROGRAMS_DIR / f"{name}.rasp"


@functools.lru_cache(maxsize=None)
def load(name: str):
    """(program, header, output s-op) of a library program."""
    return load_with_header(program_path(name))


_MODELS: dict = {}


def compiled(name: str):
    """The program compiled at its header's vocab and max-len (once per test session;
    a compile error is cached and raised again, not retried)."""
    import compiler
    if name not in _MODELS:
        prog, header, sop = load(name)
        try:
            _MODELS[name] = compiler.compile(sop, vocab=header.vocab, max_seq_len=header.max_len)
        except Exception as err:
            _MODELS[name] = err
    result = _MODELS[name]
    if isinstance(result, Exception):
        raise result
    return result


def _balanced(pairs: list[str], n: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    stack: list[str] = []
    while len(out) < n:
        if stack and (rng.random() < 0.5 or len(stack) >= n - len(out)):
            out.append(stack.pop())
        else:
            pair = rng.choice(pairs)
            out.append(pair[0])
            stack.append(pair[1])
    return out


def _special(name: str, max_len: int, rng: random.Random):
    """A well-formed input for programs whose interesting inputs are rare at random."""
    n = rng.randint(1, max_len)
    if name == "dyck1":
        return _balanced(["()"], n, rng)
    if name in ("dyck2", "shuffle_dyck2"):
        return _balanced(["()", "{}"], n, rng)
    if name == "addition":
        len_b = rng.randint(1, max(1, (max_len - 1) // 2))
        len_a = rng.randint(1, min(len_b, max_len - 1 - len_b))
        return [rng.choice("0123456789") for _ in range(len_a)] + ["+"] + \
               [rng.choice("0123456789") for _ in range(len_b)]
    if name == "compare_halves":
        k = rng.randint(0, (max_len - 1) // 2)
        u = [rng.choice("ab") for _ in range(k)]
        return u + ["|"] + list(u)
    return None


def random_inputs(name: str, count: int, seed: str = "") -> list[list]:
    """`count` inputs the interpreter accepts (random tokens and lengths, some well-formed)."""
    prog, header, sop = load(name)
    rng = random.Random(f"{name}-{seed}")
    out: list[list] = []
    tries = 0
    while len(out) < count and tries < 50 * count:
        tries += 1
        tokens = _special(name, header.max_len, rng) if tries % 2 else None
        if tokens is None:
            tokens = [rng.choice(header.vocab) for _ in range(rng.randint(1, header.max_len))]
        try:
            rasp.evaluate(sop, tokens)
        except RaspError:
            continue
        out.append(tokens)
    return out


def run_cli(*args: str):
    """Run the `rasp` command in-process (click's CliRunner); returns the click Result."""
    from click.testing import CliRunner

    import rasp_cli.commands  # noqa: F401  (registers the commands, as main() does)
    import rasp_cli.inspect_cmds  # noqa: F401
    import rasp_cli.learn_cmds  # noqa: F401
    from rasp_cli.main import cli
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(autouse=False)
def one_thread():
    """Run torch on one thread: these models are tiny, and intra-op threads only add overhead
    (about half the runtime of these tests on two cores)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
