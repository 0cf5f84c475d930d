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
