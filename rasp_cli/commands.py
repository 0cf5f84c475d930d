"""Commands beyond `eval`: the program library, the compiler and the inspection tools."""

from __future__ import annotations

import click

from .common import PROGRAMS_DIR, handle_errors
from .main import cli


@cli.command("list")
@handle_errors
def list_cmd() -> None:
    """List the library programs with their one-line descriptions."""
    from rasp.header import read_header_file

    paths = sorted(PROGRAMS_DIR.glob("*.rasp"))
    width = max((len(p.stem) for p in paths), default=0)
    for path in paths:
        header = read_header_file(path)
        click.echo(f"{path.stem:<{width}}  {header.description}")


def _compile_loaded(loaded, vocab_text, max_len):
    import compiler

    return compiler.compile(loaded.node, vocab=loaded.vocab(vocab_text), max_seq_len=loaded.max_len(max_len))


@cli.command("run")
@click.argument("file")
@click.option("--name", help="The s-op to compile (default: out, the last expression).")
@click.option("--input", "input_text", help="The input: a JSON list or a string.")
@click.option("--vocab", "vocab_text", help="The vocabulary: a JSON list or a string of characters.")
@click.option("--max-len", "max_len", type=int, help="The longest input the model accepts.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def run_cmd(file, name, input_text, vocab_text, max_len, as_json):
    """Compile a program to a transformer and run the transformer on an input."""
    import compiler
    import rasp
    from .common import emit_json, show_sequence, tokens_for

    loaded = load_sop(file, name)
    tokens = loaded.input_or_default(input_text)
    model = _compile_loaded(loaded, vocab_text, max_len)
    tokens = tokens_for(tokens, model.vocab)
    output = model(tokens)      # (checks the tokens and the length first)
    # an input the program itself rejects (a mean of different strings...) has no right
    # output: say so instead of printing what the model computes; and the model must
    # agree with the interpreter on every other input (a disagreement is a compiler bug)
    expected = rasp.evaluate(loaded.node, tokens)
    if not compiler.same_output(expected, output):
        raise rasp.RaspError(f"internal error: the compiled model gives {output!r} where the interpreter "
                             f"gives {expected!r}; please report this program")
    if as_json:
        emit_json({"output": output, **_size_fields(model)})
    else:
        click.echo(show_sequence(output))


def load_sop(file: str, name):
    """The program and its chosen s-op; a selector is a usage error (it has no output to compile)."""
    from rasp import ir
    from .common import LoadedProgram

    loaded = LoadedProgram(file, name)
    if not isinstance(loaded.node, ir.SOp):
        raise click.UsageError(f"{loaded.name!r} is a selector; only s-ops can be compiled or traced")
    return loaded


def _size_fields(model) -> dict:
    return {"layers": model.num_layers, "heads": model.num_heads, "d_model": model.d_model,
            "d_mlp": model.d_mlp, "params": model.num_params}


@cli.command("compile")
@click.argument("file")
@click.option("--name", help="The s-op to compile (default: out, the last expression).")
@click.option("--vocab", "vocab_text", help="The vocabulary: a JSON list or a string of characters.")
@click.option("--max-len", "max_len", type=int, help="The longest input the model accepts.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), help="Save the model (safetensors).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def compile_cmd(file, name, vocab_text, max_len, out_path, as_json):
    """Compile a program into a transformer; print its size, optionally save it."""
    from .common import emit_json

    loaded = load_sop(file, name)
    with _progress(f"compiling {loaded.path.name}", enabled=not as_json):
        model = _compile_loaded(loaded, vocab_text, max_len)
    if out_path:
        model.save(out_path)
    exactness = model.exactness()
    fields = {**_size_fields(model), "compile_seconds": round(model.info["compile_seconds"], 6),
              **{k: v for k, v in exactness.items() if k != "unproven_because"}}
    if as_json:
        emit_json(fields)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.path.name}: {loaded.name}", show_header=True)
    table.add_column("layer")
    table.add_column("heads")
    table.add_column("MLP units")
    table.add_column("blocks")
    for i, blocks in enumerate(model.info["blocks"]):
        table.add_row(str(i), str(model.heads_per_layer[i]), str(model.module.shape.d_mlp[i]), "; ".join(blocks))
    console = Console()
    console.print(table)
    console.print(f"layers {model.num_layers}  heads {model.num_heads}  d_model {model.d_model}  "
                  f"d_mlp {model.d_mlp}  params {model.num_params}  compile {fields['compile_seconds']:.4f}s")
    if exactness["proven_exact"]:
        console.print(f"proven exact: output error at most {exactness['output_error_bound']:.3g}, "
                      f"decoding margin {exactness['output_margin']:.3g}")
    else:
        console.print(f"not proven exact by the forward error bound ({exactness['unproven_because']}); "
                      "checked by the compiler's table and readout checks")
    if out_path:
        console.print(f"saved to {out_path}")


class _progress:
    """A spinner on stderr while a long compile runs (silent when not a terminal)."""

    def __init__(self, text: str, enabled: bool = True) -> None:
        self.text, self.enabled, self.status = text, enabled, None

    def __enter__(self):
        import sys
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            self.status = Console(stderr=True).status(self.text)
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)
        return False
