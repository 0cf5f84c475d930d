"""Source text and spans: every AST node and IR node points back to the text it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def read_source_file(path: "str | Path") -> str:
    """The text of a RASP file; a missing or non-UTF-8 file is a RaspValueError naming it."""
    from .errors import RaspValueError   # (errors imports this module)
    try:
        return Path(path).read_text(encoding="utf-8-sig")     # (a BOM some editors write is no text)
    except OSError as exc:
        raise RaspValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RaspValueError(f"cannot read {path}: not UTF-8 text (byte {exc.start})") from None


class Source:
    """The text of one RASP file (or REPL line), kept so that errors can quote it."""

    __slots__ = ("filename", "text", "_lines")

    def __init__(self, text: str, filename: str = "<string>") -> None:
        self.filename = filename
        self.text = text
        self._lines = text.split("\n")

    def line(self, number: int) -> str:
        """The 1-based line `number`, without its newline ('' when out of range)."""
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1].rstrip("\r")
        return ""

    def __repr__(self) -> str:
        return f"Source({self.filename!r})"


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source: 1-based lines and columns, end exclusive."""

    source: Source
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def filename(self) -> str:
        return self.source.filename

    @property
    def location(self) -> str:
        """`file:line:col`, the form editors and terminals make clickable."""
        return f"{self.source.filename}:{self.line}:{self.column}"

    @property
    def text(self) -> str:
        """The source text the span covers (joined lines for multi-line spans)."""
        if self.line == self.end_line:
            return self.source.line(self.line)[self.column - 1:self.end_column - 1]
        parts = [self.source.line(self.line)[self.column - 1:]]
        parts += [self.source.line(n) for n in range(self.line + 1, self.end_line)]
        parts.append(self.source.line(self.end_line)[:self.end_column - 1])
        return "\n".join(parts)

    def snippet(self) -> str:
        """The first source line of the span with a caret underline below it."""
        line = self.source.line(self.line)
        width = (self.end_column - self.column) if self.end_line == self.line else len(line) - self.column + 1
        width = max(1, width)
        prefix = "".join(ch if ch == "\t" else " " for ch in line[:self.column - 1])
        return f"    {line}\n    {prefix}^{'~' * (width - 1)}"

    def __repr__(self) -> str:
        return f"Span({self.location})"


def point_span(source: Source, line: int, column: int) -> Span:
    """A one-character span, for errors that have a position but no extent."""
    return Span(source, line, column, line, column + 1)
