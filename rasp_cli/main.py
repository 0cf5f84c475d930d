"""The `rasp` command: evaluate, compile and inspect RASP programs.

    rasp eval    FILE [--name NAME] --input INPUT [--json]
    rasp run     FILE [--name NAME] --input INPUT --vocab VOCAB --max-len N [--json]
    rasp compile FILE [--name NAME] --vocab VOCAB --max-len N [-o OUT] [--json]
    rasp list

FILE may also be the name of a library program (`rasp eval reverse --input abc`).
Heavy modules (torch, the compiler) are imported only by the commands that need them.
"""

from __future__ import annotations

from typing import Optional

import click

from .common import LoadedProgram, emit_json, handle_errors, show_sequence


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rasp-compiler", prog_name="rasp")
def cli() -> None:
    """Compile RASP programs into exact transformers, and run and inspect them."""


@cli.command("eval")
@click.argument("file")
@click.option("--name", help="The s-op to evaluate (default: out, the last expression).")
@click.option("--input", "input_text", help='The input: a JSON list (\'[1,2]\') or a string ("hello").')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def eval_cmd(file: str, name: Optional[str], input_text: Optional[str], as_json: bool) -> None:
    """Evaluate a program with the reference interpreter."""
    import rasp

    loaded = LoadedProgram(file, name)
    tokens = loaded.input_or_default(input_text)
    output = rasp.evaluate(loaded.node, tokens)
    if as_json:
        emit_json({"output": output})
    else:
        click.echo(show_sequence(output))


def main() -> None:
    from . import commands  # noqa: F401  (registers the compiler and inspection commands)
    from . import inspect_cmds  # noqa: F401
    from . import learn_cmds  # noqa: F401
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
