"""RASP: the language (grammar, parser, IR, reference interpreter, Python API).

    import rasp
    prog = rasp.load("programs/sort.rasp")      # or rasp.parse(text, filename=...)
    sop = prog["sort"]                          # prog["out"] is the program's result
    rasp.evaluate(sop, "bac")                   # -> ['a', 'b', 'c']
    rasp.evaluate_batch(sop, ["ba", "cab"])     # many inputs at once

`rasp.tracr` is a drop-in replacement for DeepMind Tracr's `tracr.rasp.rasp`;
`rasp.api` builds the same IR from Python with the text language's semantics.
This package imports neither `compiler` nor `torch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from . import ir
from .build import Program
from .build import load_program as _load_program
from .build import parse_program as _parse_program
from .errors import (RaspError, RaspInputError, RaspLimitError, RaspNameError, RaspRuntimeError,
                     RaspSyntaxError, RaspTypeError, RaspValueError)
from .interpreter import evaluate, evaluate_accepted, evaluate_all, evaluate_batch
from .ir import Aggregate, Map, Node, Select, Selector, SelectorWidth, SOp

__all__ = [
    "load", "parse", "evaluate", "evaluate_batch", "evaluate_all", "evaluate_accepted", "Program", "ir",
    "RaspError", "RaspSyntaxError", "RaspNameError", "RaspTypeError", "RaspValueError",
    "RaspLimitError", "RaspRuntimeError", "RaspInputError",
    "Node", "SOp", "Selector", "Map", "Select", "Aggregate", "SelectorWidth",
]


def load(path: Union[str, Path]) -> Program:
    """Read and run a `.rasp` file; returns the Program (index it by name)."""
    return _load_program(path)


def parse(text: str, filename: str = "<string>") -> Program:
    """Run RASP source text; `filename` is used in error messages and for `load`."""
    return _parse_program(text, filename)
