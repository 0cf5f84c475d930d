"""Shared pieces of the `rasp` command line: loading programs, inputs, errors, output."""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

import rasp
from rasp.errors import RaspError
from rasp.header import Header, parse_sequence, read_header
from rasp.source import read_source_file

PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"


def fail(message: str) -> None:
    """Print one clear message to stderr and exit with status 1."""
    click.echo(message, err=True)
    sys.exit(1)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every expected error into a message and exit code 1 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RaspError as err:
            fail(str(err))
        except KeyboardInterrupt:
            fail("interrupted")
        except (OSError, ValueError) as err:
            fail(f"error: {err}")
    return wrapper


def resolve_program_path(path: str) -> Path:
    """`path` itself, else a library program by name (`sort` -> programs/sort.rasp)."""
    p = Path(path)
    if p.is_file():
        return p
    for candidate in (PROGRAMS_DIR / path, PROGRAMS_DIR / f"{path}.rasp"):
        if candidate.is_file():
            return candidate
    raise RaspError(f"no such file: {path}")


class LoadedProgram:
    """A program with its header and the s-op (or selector) the user asked for."""

    def __init__(self, path: str, name: Optional[str]) -> None:
        self.path = resolve_program_path(path)
        text = read_source_file(self.path)
        self.header: Header = read_header(text)
        self.program = rasp.parse(text, str(self.path))
        self.name = name or self.header.output or self._default_name()
        try:
            self.node = self.program[self.name]
        except KeyError:
            available = ", ".join(self.program.names()) or "(none)"
            raise RaspError(f"{self.path} defines no {self.name!r}; available names: {available}") from None
        if not isinstance(self.node, rasp.ir.Node):
            kind = type(self.node).__name__
            raise click.UsageError(f"{self.name!r} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not an s-op "
                                   f"or selector; choose one with --name")

    def _default_name(self) -> str:
        """`out` or the last assignment, unless that is no s-op (`n = 5;` at the end): then
        the last assigned s-op."""
        try:
            name = self.program.result_name
        except KeyError:
            raise RaspError(f"{self.path} defines nothing to evaluate (no assignment or expression)") from None
        if isinstance(self.program[name], rasp.ir.Node):
            return name
        sops = [n for n in self.program.names() if isinstance(self.program[n], rasp.ir.SOp)]
        return sops[-1] if sops else name

    def input_or_default(self, text: Optional[str]) -> list:
        if text is not None:
            return parse_sequence(text)
        if self.header.input is not None:
            return self.header.input
        example = self.program.example
        if example is not None:
            return list(example)
        raise RaspError("no --input given and the program has no `# input:` header or `set example`")

    def vocab(self, text: Optional[str]) -> list:
        if text is not None:
            return parse_sequence(text)
        if self.header.vocab is not None:
            return self.header.vocab
        raise RaspError("no --vocab given and the program has no `# vocab:` header line")

    def max_len(self, value: Optional[int]) -> int:
        if value is not None:
            return value
        if self.header.max_len is not None:
            return self.header.max_len
        raise RaspError("no --max-len given and the program has no `# max-len:` header line")


def tokens_for(tokens: list, vocab: list) -> list:
    """An input read from the command line, in the vocabulary's own types: `--input 0123`
    is read as characters, which an integer vocabulary [0, 1, 2, 3] lists as ints."""
    spelled = {}
    for t in vocab:
        spelled.setdefault(str(t), []).append(t)
    listed = {(type(t), t) for t in vocab}
    out = []
    for t in tokens:
        same = spelled.get(str(t), [])
        out.append(same[0] if (type(t), t) not in listed and len(same) == 1 else t)
    return out


def jsonable(value: Any) -> Any:
    """Values as JSON can carry them (tuples as lists, non-finite floats as strings)."""
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def show_sequence(values: list) -> str:
    return json.dumps(jsonable(values), ensure_ascii=False)


def emit_json(obj: dict) -> None:
    click.echo(json.dumps(jsonable_dict(obj), ensure_ascii=False))


def jsonable_dict(obj: dict) -> dict:
    return {k: jsonable(v) if not isinstance(v, dict) else jsonable_dict(v) for k, v in obj.items()}
