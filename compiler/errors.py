"""Compile errors: always name the RASP expression and its source line."""

from __future__ import annotations

from typing import Optional

from rasp import ir
from rasp.errors import RaspError


class CompileError(RaspError):
    """The compiler cannot build an exact model for this program (and says why)."""

    kind = "compile error"

    def __init__(self, message: str, node: Optional[ir.Node] = None, notes: tuple[str, ...] = (),
                 span=None) -> None:
        if span is None and node is not None and node.origin is not None:
            span = node.origin.user_span()
        if node is not None:
            message = f"in {expression_label(node)}: {message}"
        self.node = node
        super().__init__(message, span, notes)


def expression_label(node: ir.Node) -> str:
    """How errors name an expression: its source text, with the name it was assigned to."""
    text = node.source_text
    if text and node.has_user_name and node.name != text:
        return f"{node.name} = `{text}`"
    return f"`{text or node.name}`"


class ReadoutError(CompileError):
    """The output's error bound reaches its decoding margin (the pipeline may retry with
    the output computed by one MLP, which resets the errors of its parts)."""


class TableRefused(CompileError):
    """No MLP table computes this map exactly in float32. The pipeline retries with the
    maps that read it computed by MLPs of their own where they had been folded into its
    table (`w % 2` asked of `w`'s table: a sawtooth over every value of `w`)."""


class SquareUnfit(CompileError):
    """An MLP could not tabulate an s-op together with the squared code an equality head
    reads it by (-(q - k)^2 scores): its large values round past their margin in float32.
    The pipeline retries with that s-op's equality heads in the table form (one-hot)."""

    def __init__(self, message: str, node: ir.Node) -> None:
        super().__init__(message, node)
        self.sop_id = node.id
