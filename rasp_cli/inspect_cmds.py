"""Inspection commands: trace, layers, attn, draw, report and the REPL.

    rasp trace  FILE [--name N] --input INPUT [--json]        every named s-op at every position
    rasp layers FILE [--name N] --input INPUT [--json]        the s-ops decoded after every sublayer
    rasp attn   FILE --input INPUT -o DIR                     one PNG per attention head
    rasp draw   FILE -o OUT.svg|png                           the dataflow graph, by layer
    rasp report FILE --input INPUT -o report.html             all of the above in one page
    rasp repl                                                 the interactive RASP prompt

Commands that compile take `--vocab` and `--max-len` (default: the file's header).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .common import LoadedProgram, emit_json, handle_errors, tokens_for
from .main import cli

_name = click.option("--name", help="The s-op to inspect (default: the header's output, else out).")
_input = click.option("--input", "input_text", help="The input: a JSON list or a string (default: the header's).")
_vocab = click.option("--vocab", "vocab_text", help="The vocabulary: a JSON list or a string of characters.")
_max_len = click.option("--max-len", "max_len", type=int, help="The longest input the model accepts.")


def _sop_program(file: str, name: Optional[str]) -> LoadedProgram:
    from .commands import load_sop
    return load_sop(file, name)


def _compiled(loaded: LoadedProgram, vocab_text, max_len, quiet: bool = False):
    from .commands import _compile_loaded, _progress
    with _progress(f"compiling {loaded.path.name}", enabled=not quiet):
        return _compile_loaded(loaded, vocab_text, max_len)


def _check_input(model, tokens: list) -> None:
    """Reject an input the model cannot take before running anything."""
    model.encode([tokens])


def _compiled_with_input(file: str, name: Optional[str], input_text, vocab_text, max_len, quiet: bool = False):
    """(program, input tokens, compiled model), the input checked against the model."""
    loaded = _sop_program(file, name)
    tokens = loaded.input_or_default(input_text)
    model = _compiled(loaded, vocab_text, max_len, quiet=quiet)
    tokens = tokens_for(tokens, model.vocab)
    _check_input(model, tokens)
    return loaded, tokens, model


def display_names(loaded: LoadedProgram, model=None) -> dict:
    """Names to show for s-ops: the built-in inputs, the program's names, and the output."""
    from rasp import ir
    names: dict = {}
    if model is not None and model.program is not None:
        for node in model.program.graph.nodes():
            if isinstance(node, (ir.Tokens, ir.Indices, ir.Length)):
                names.setdefault(node.name, node)
    names.update(loaded.program.sops())
    if not any(node is loaded.node for node in names.values()):
        names[loaded.name] = loaded.node
    return names


# ---- trace -------------------------------------------------------------------------------

@cli.command("trace")
@click.argument("file")
@_name
@_input
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def trace_cmd(file, name, input_text, as_json):
    """Every named s-op's value at every position (reference interpreter)."""
    from .trace import print_trace, trace

    loaded = _sop_program(file, name)
    tokens = loaded.input_or_default(input_text)
    result = trace(loaded.program, tokens, loaded.name, loaded.node)
    if as_json:
        emit_json(result.to_json())
    else:
        print_trace(result)


# ---- per-layer decoding ------------------------------------------------------------------

@cli.command("layers")
@click.argument("file")
@_name
@_input
@_vocab
@_max_len
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def layers_cmd(file, name, input_text, vocab_text, max_len, as_json):
    """Compile, run, and decode the named s-ops from the residual stream after every sublayer."""
    from compiler import inspect

    from .trace import show_value

    loaded, tokens, model = _compiled_with_input(file, name, input_text, vocab_text, max_len, quiet=as_json)
    steps = inspect.decode_layers(model, tokens, display_names(loaded, model))
    if as_json:
        emit_json({"input": tokens, "output": model(tokens),
                   "sublayers": [{"label": s.label, "time": s.time, "hook": s.hook, "values": s.values,
                                  "new": s.new, "ambiguous": sorted(s.ambiguous),
                                  "candidates": {k: [list(c) for c in v] for k, v in s.candidates.items()}}
                                 for s in steps]})
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    console = Console()
    table = Table(title=f"{loaded.path.name}: residual stream decoded on {tokens!r}")
    table.add_column("after")
    table.add_column("s-op", style="bold")
    for i, tok in enumerate(tokens):
        table.add_column(f"{i}\n{escape(show_value(tok))}", justify="center")
    for s in steps:
        first = True
        for nm in s.new:
            if nm in s.ambiguous:
                cells = [inspect.describe_candidates(c, s.domains[nm], show_value) for c in s.candidates[nm]]
            else:
                cells = [show_value(v) for v in s.values[nm]]
            mark = "~" if nm in s.ambiguous else ""
            table.add_row(s.label if first else "", escape(nm + mark), *[escape(c) for c in cells])
            first = False
        if first:
            table.add_row(s.label, "[dim](nothing new)[/dim]", *[""] * len(tokens))
    console.print(table)
    if any(s.ambiguous for s in steps):
        console.print("~ the model stores only a function of this s-op that does not tell all its values apart; "
                      "shown: the values consistent with the stream (a|b: one of these, ≠a: any value but a)")


# ---- attention maps ----------------------------------------------------------------------

@cli.command("attn")
@click.argument("file")
@_name
@_input
@_vocab
@_max_len
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the PNGs (created if missing).")
@handle_errors
def attn_cmd(file, name, input_text, vocab_text, max_len, out_dir):
    """One attention-map PNG per head, on one input."""
    from compiler import plots

    loaded, tokens, model = _compiled_with_input(file, name, input_text, vocab_text, max_len)
    paths = plots.save_attention_maps(model, tokens, out_dir)
    if not paths:
        click.echo("the model has no attention heads")
    for p in paths:
        click.echo(str(p))


# ---- the dataflow graph ------------------------------------------------------------------

@cli.command("draw")
@click.argument("file")
@_name
@_vocab
@_max_len
@click.option("-o", "--output", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The picture to write: .svg, .png or .pdf.")
@handle_errors
def draw_cmd(file, name, vocab_text, max_len, out_path):
    """The program's dataflow graph, coloured by the layer and sublayer each node runs in."""
    from compiler import plots

    if Path(out_path).suffix.lower() not in (".svg", ".png", ".pdf"):
        raise click.UsageError(f"the output must end in .svg, .png or .pdf, got {out_path!r}")
    loaded = _sop_program(file, name)
    model = _compiled(loaded, vocab_text, max_len)
    plots.save_graph(model, out_path, title=f"{loaded.path.name}: {loaded.name} "
                                            f"({model.num_layers} layers, heads per layer {model.heads_per_layer})")
    click.echo(out_path)


# ---- the HTML report ---------------------------------------------------------------------

@cli.command("report")
@click.argument("file")
@_name
@_input
@_vocab
@_max_len
@click.option("-o", "--output", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@handle_errors
def report_cmd(file, name, input_text, vocab_text, max_len, out_path):
    """One self-contained HTML page: graph, layers, trace, residual decoding, attention maps."""
    from .report import build_report

    loaded, tokens, model = _compiled_with_input(file, name, input_text, vocab_text, max_len)
    html = build_report(loaded, model, tokens)
    Path(out_path).write_text(html, encoding="utf-8")
    click.echo(out_path)


# ---- the REPL ----------------------------------------------------------------------------

@cli.command("repl")
@click.option("--history", "history_path", type=click.Path(dir_okay=False),
              help="History file (default: ~/.rasp_history).")
@click.option("--example", "example", help="The starting example input (default: hello).")
@handle_errors
def repl_cmd(history_path, example):
    """The interactive RASP prompt: statements are evaluated on a running example."""
    from .repl import run_repl
    run_repl(history_path=history_path, example=example)
