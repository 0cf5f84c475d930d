"""Tracr's compile entry point, on this compiler: `compile_rasp_to_model`.

A harness written for DeepMind's Tracr,

    from tracr.compiler import compiling
    model = compiling.compile_rasp_to_model(program, vocab={1, 2, 3}, max_seq_len=5,
                                            compiler_bos="BOS")
    model.apply(["BOS", 3, 1, 2]).decoded      # ["BOS", ...]

runs here with `from compiler import tracr_compat as compiling`: same signature, same
`apply(...).decoded` (position 0 holds the BOS token). The program may be built with
tracr-pypi's own `tracr.rasp.rasp` or with `rasp.tracr`. Why a module of its own: the
benchmark suites built on Tracr (its lib.py and test cases, InterpBench, TracrBench)
call this function, and `causal=True` needs a rewrite of the program that
`compiler.compile` has no reason to know about.

Where it differs from Tracr: `mlp_exactness` is accepted and ignored (every MLP here is
exact); numerical outputs come back snapped to the value the program computes, not as
raw floats; `causal=True` is compiled as the program Tracr's causal model computes
(`rasp.tracr.causal`: every aggregate's and width's selector also requires key index <=
query index, and `length`, which Tracr cannot compile, is the length so far), not with an
attention mask, so the model's outputs are Tracr's causal ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from rasp.tracr import causal as causal_program

from .errors import CompileError
from .runtime import CompiledModel

COMPILER_BOS = "compiler_bos"
COMPILER_PAD = "compiler_pad"


@dataclass
class TracrStyleOutput:
    """What Tracr's `AssembledTransformerModel.apply` returns that a harness reads."""

    decoded: list            # the BOS token, then the program's value at each position


@dataclass
class TracrStyleModel:
    """A compiled model answering Tracr's `apply`; `model` is the torch model itself."""

    model: CompiledModel
    compiler_bos: str
    compiler_pad: str

    def apply(self, tokens: Sequence[Any]) -> TracrStyleOutput:
        """Run on `[compiler_bos, *input]` (trailing `compiler_pad` tokens allowed, decoded
        as None: a padded position holds no value)."""
        tokens = list(tokens)
        if not tokens or tokens[0] != self.compiler_bos:
            raise ValueError(f"the first input token must be the BOS token {self.compiler_bos!r}, "
                             f"got {tokens[:1]}")
        body = tokens[1:]
        n_pad = 0
        while n_pad < len(body) and body[len(body) - 1 - n_pad] == self.compiler_pad:
            n_pad += 1
        body = body[:len(body) - n_pad]
        if self.compiler_pad in body:
            raise ValueError(f"the padding token {self.compiler_pad!r} may only follow the input")
        decoded = self.model(body) if body else []
        return TracrStyleOutput(decoded=[self.compiler_bos, *decoded, *([None] * n_pad)])

    def __getattr__(self, name: str) -> Any:
        # sizes, run_batch, save, exactness...: the compiled model's own
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)


def compile_rasp_to_model(program: Any, vocab: Iterable[Any], max_seq_len: int, causal: bool = False,
                          compiler_bos: str = COMPILER_BOS, compiler_pad: str = COMPILER_PAD,
                          mlp_exactness: int = 100, device: Any = "cpu") -> TracrStyleModel:
    """Compile a Tracr RASP program (Tracr's signature; see the module docstring)."""
    from . import compile as compile_sop
    vocab = set(vocab)
    for token, role in ((compiler_bos, "BOS"), (compiler_pad, "PAD")):
        if token in vocab:
            raise ValueError(f"Compiler {role} token must not be present in the vocab. "
                             f"Found '{token}' in {vocab}")
    if causal:
        try:
            program = causal_program(program)
        except TypeError:           # (a node of the text language or rasp.api, or not a program)
            raise CompileError("causal=True takes a program built with the Tracr API (tracr.rasp.rasp or "
                               "rasp.tracr); for another program, `and` each select with "
                               "`select(indices, indices, <=)`, which is what causal means") from None
    model = compile_sop(program, vocab=vocab, max_seq_len=max_seq_len, device=device)
    return TracrStyleModel(model, compiler_bos, compiler_pad)
