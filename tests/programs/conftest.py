"""Shared helpers for the program-library tests (programs/*.rasp)."""

from __future__ import annotations

from pathlib import Path

from rasp.header import Header, load_with_header, read_header_file

PROGRAMS_DIR = Path(__file__).resolve().parents[2] / "programs"
PROGRAM_NAMES = sorted(p.stem for p in PROGRAMS_DIR.glob("*.rasp"))


def program_path(name: str) -> Path:
    return PROGRAMS_DIR / f"{name}.rasp"


def header(name: str) -> Header:
    return read_header_file(program_path(name))


def program_sop(name: str):
    """The s-op the command line would use: the header's `output`, else `out`/the last assignment."""
    return load_with_header(program_path(name))[2]
