"""Header comments of `.rasp` files: a description and defaults for the command line.

The header is the block of `#` comment lines at the top of a file:

    # Reverse the input.
    # example: hello -> olleh
    # input: hello
    # vocab: abcdefgh
    # max-len: 16
    # output: reverse

The first line that is not `key: value` is the one-line description. Known keys:
`vocab` and `input` (a JSON list, else a string taken as its characters), `max-len`
(an integer), `output` (the name `rasp run`/`eval` use when `--name` is omitted).
Other `key: value` lines are kept in `Header.fields`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import ir
from .build import Program, load_program
from .source import read_source_file

_FIELD = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$")


def parse_sequence(text: str) -> list:
    """A JSON list of tokens (`[1,2,3]`, `["a","b"]`), else the characters of the string:
    `[[]]` or `[]` are four and two bracket tokens (a Dyck input), not a nested or an
    empty list, which no vocabulary holds."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and value and \
                all(isinstance(v, (str, int, float)) and v == v for v in value):
            return value
    return list(text)


@dataclass
class Header:
    description: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def vocab(self) -> Optional[list]:
        return parse_sequence(self.fields["vocab"]) if "vocab" in self.fields else None

    @property
    def max_len(self) -> Optional[int]:
        value = self.fields.get("max-len") or self.fields.get("max_len")
        return int(value) if value is not None and value.strip().isdigit() else None

    @property
    def input(self) -> Optional[list]:
        return parse_sequence(self.fields["input"]) if "input" in self.fields else None

    @property
    def output(self) -> Optional[str]:
        return self.fields.get("output")

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def read_header(text: str) -> Header:
    """The header of RASP source `text` (empty if the file starts with code)."""
    header = Header()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if header.description or header.fields:
                break
            continue
        if not stripped.startswith("#"):
            break
        match = _FIELD.match(stripped)
        if match and match.group(1).lower() in _KNOWN or (match and header.description):
            header.fields[match.group(1).lower()] = match.group(2)
        elif not header.description:
            header.description = stripped.lstrip("#").strip()
    return header


_KNOWN = {"vocab", "max-len", "max_len", "input", "output", "example", "paper-layers", "tracr"}


def read_header_file(path: str | Path) -> Header:
    return read_header(read_source_file(path))


def load_with_header(path: str | Path) -> tuple[Program, Header, ir.SOp]:
    """A `.rasp` file run, its header, and the s-op that `rasp run` and `rasp compile` use
    without `--name`: the header's `output`, else the program's result (`out` or the last
    assignment). The library's tests and benchmarks compile what the command line would."""
    header = read_header_file(path)
    program = load_program(path)
    return program, header, program[header.output or program.result_name]
