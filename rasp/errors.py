"""Errors RASP users see: one clear message that names the place in their source."""

from __future__ import annotations

from typing import Optional

from .source import Span


class RaspError(Exception):
    """Base class of every error the language and compiler report to users.

    `span` (optional) points at the offending source text; `str(err)` is the
    full user-facing message, with location, source line and caret.
    """

    kind = "error"

    def __init__(self, message: str, span: Optional[Span] = None, notes: tuple[str, ...] = ()) -> None:
        self.message = message
        self.span = span
        self.notes = tuple(notes)
        super().__init__(self.render())

    def render(self) -> str:
        lines = []
        if self.span is not None:
            lines.append(f"{self.span.location}: {self.kind}: {self.message}")
            lines.append(self.span.snippet())
        else:
            lines.append(f"{self.kind}: {self.message}")
        lines.extend(self.notes)
        return "\n".join(lines)


class RaspSyntaxError(RaspError):
    """The text does not parse."""

    kind = "syntax error"


class RaspNameError(RaspError):
    """An unknown or reserved name."""

    kind = "name error"


class RaspTypeError(RaspError):
    """A value of the wrong kind (e.g. a selector where an s-op is needed, wrong arity)."""

    kind = "type error"


class RaspValueError(RaspError):
    """A value that is of the right kind but not acceptable (index out of range, ...)."""

    kind = "value error"


class RaspLimitError(RaspError):
    """A program that would not terminate in reasonable time or space."""

    kind = "limit exceeded"


class RaspRuntimeError(RaspError, ValueError):
    """Evaluating an s-op on a concrete input failed (e.g. averaging strings). Also a
    ValueError, which Tracr's evaluator raises for the same failures, so Tracr code that
    catches ValueError keeps working."""

    kind = "evaluation error"


class RaspInputError(RaspError):
    """An input that the program or model cannot accept (unknown token, too long)."""

    kind = "input error"


def describe_exception(exc: Exception) -> str:
    """An exception raised by Python arithmetic, as a user reads it (math.pow's overflow
    says "(34, 'Numerical result out of range')")."""
    if isinstance(exc, OverflowError):
        return "the result is too large for a float"
    return str(exc) or type(exc).__name__
