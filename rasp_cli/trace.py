"""`rasp trace`: every named s-op's value at every position, by the reference interpreter.

The rows are the program's top-level names bound to s-ops, in source order (the order
of their last assignment), plus the output when it has no name of its own (`out`).
An s-op that fails to evaluate on this input gets a row with the error instead of values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import rasp
from rasp import ir
from rasp.errors import RaspError


@dataclass
class TraceRow:
    name: str
    node: ir.SOp
    values: Optional[list]          # None when evaluation failed
    error: Optional[str] = None
    line: Optional[int] = None
    location: str = ""
    source: str = ""
    is_output: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "values": self.values, "error": self.error, "line": self.line,
                "location": self.location, "source": self.source, "output": self.is_output}


@dataclass
class Trace:
    tokens: list
    output: str
    rows: list[TraceRow] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"input": self.tokens, "output": self.output, "rows": [r.to_json() for r in self.rows]}


def named_sops(program, output_name: str, output_node: ir.Node) -> list[tuple[str, ir.SOp]]:
    """(name, s-op) for every top-level s-op name, in source order, plus the output."""
    pairs = list(program.sops().items())
    if isinstance(output_node, ir.SOp) and not any(node is output_node for _, node in pairs):
        pairs.append((output_name, output_node))
    return pairs


def trace(program, tokens: list, output_name: str, output_node: ir.Node) -> Trace:
    pairs = named_sops(program, output_name, output_node)
    result = Trace(list(tokens), output_name)
    nodes = [node for _, node in pairs]
    try:
        values = rasp.evaluate_all(nodes, [tokens])
        got = {node.id: (values[node.id][0], None) for node in nodes}
    except RaspError:
        got = {}
        for node in nodes:
            try:
                got[node.id] = (rasp.evaluate(node, tokens), None)
            except RaspError as err:
                got[node.id] = (None, err.message)
    for name, node in pairs:
        value, error = got[node.id]
        span = node.origin.user_span() if node.origin is not None else None
        result.rows.append(TraceRow(name, node, value, error,
                                    span.line if span is not None else None,
                                    span.location if span is not None else "",
                                    _one_line(node.source_text or ""), node is output_node or name == output_name))
    return result


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def show_value(v: Any) -> str:
    """A compact display of one value (floats to 4 significant digits)."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v)}.0" if abs(v) < 1e6 else f"{v:.4g}"
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(show_value(x) for x in v) + ")"
    return str(v)


def print_trace(t: Trace, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"trace on {show_tokens(t.tokens)}", show_lines=False)
    table.add_column("line", justify="right", style="dim")
    table.add_column("s-op", style="bold")
    for i, tok in enumerate(t.tokens):
        table.add_column(f"{i}\n{show_value(tok)}", justify="center")
    for row in t.rows:
        name = f"[green]{row.name}[/green]" if row.is_output else row.name
        line = str(row.line) if row.line is not None else ""
        if row.values is None:
            cells = ["[red]error[/red]"] + [""] * (len(t.tokens) - 1)
            table.add_row(line, name, *cells[:len(t.tokens)])
        else:
            table.add_row(line, name, *[_escape(show_value(v)) for v in row.values])
    console.print(table)
    for row in t.rows:
        if row.values is None:
            console.print(f"[red]{_escape(row.name)}[/red]: {_escape(row.error or '')}")


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)


def show_tokens(tokens: list) -> str:
    if all(isinstance(x, str) and len(x) == 1 for x in tokens):
        return repr("".join(tokens))
    return repr(list(tokens))
