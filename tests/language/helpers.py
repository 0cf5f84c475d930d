"""Small helpers shared by the language tests.

`same` compares values *and their Python types* recursively, so a test that expects
the int 1 fails on 1.0 or True (Python's `==` would accept all three).
"""

from __future__ import annotations

from typing import Any

import rasp


def run(src: str, tokens: Any, name: str = "out") -> Any:
    """Parse `src`, take `name` (default: the program's `out`) and evaluate it on `tokens`."""
    return rasp.evaluate(rasp.parse(src)[name], tokens)


def value(src: str, name: str = "out") -> Any:
    """The definition-time value bound to `name` (numbers, lists, IR nodes, ...)."""
    return rasp.parse(src)[name]


def same(actual: Any, expected: Any) -> bool:
    """Equal values with equal types at every level (1, 1.0 and True all differ)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, (list, tuple)):
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], expected[k]) for k in expected)
    return actual == expected


def check(src: str, tokens: Any, expected: Any, name: str = "out") -> None:
    """Assert that evaluating `src` on `tokens` gives exactly `expected` (types included)."""
    actual = run(src, tokens, name)
    assert same(actual, expected), f"{src!r} on {tokens!r}: got {actual!r}, expected {expected!r}"
