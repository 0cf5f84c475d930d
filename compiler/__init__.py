"""Compile RASP s-ops into exact PyTorch transformers.

    import rasp, compiler
    prog = rasp.load("programs/sort.rasp")
    model = compiler.compile(prog["out"], vocab={"a", "b", "c"}, max_seq_len=16)
    model(["b", "a", "c"])             # -> ['a', 'b', 'c']
    model.num_layers, model.d_model    # sizes
    model.save("sort.safetensors"); compiler.load("sort.safetensors")

Pipeline (one module per stage): graph -> infer -> plan/lower -> schedule -> residual
-> assemble -> model, and runtime for encoding/decoding.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Union

import numpy as np

from rasp import ir
from rasp.interpreter import gc_paused

from .compare import same_output, same_value
from .errors import CompileError
from .runtime import CompiledModel, OutputSpec, load  # noqa: F401 (OutputSpec: public)

# Longest max_seq_len compile() accepts: reverse refuses from ~400 (float32), 1000 needs 1.2 GB.
MAX_SEQ_LEN = 1024

__all__ = ["compile", "load", "CompiledModel", "CompileError", "same_output", "same_value", "to_transformer_lens"]


def compile(sop: ir.SOp, vocab: Iterable[Any], max_seq_len: int,
            device: Union[str, Any] = "cpu") -> CompiledModel:  # noqa: A001 - the public name DESIGN fixes
    """Compile `sop` for inputs over `vocab` of length 1..max_seq_len.

    `sop` is a program of `rasp` (the text language's IR, `rasp.api`, `rasp.tracr`) or
    one built with an installed Tracr's own `tracr.rasp.rasp`.

    The result agrees with the reference interpreter on every such input; where the
    compiler cannot guarantee that it raises `CompileError` naming the expression.
    """
    from .pipeline import build, normalize_vocab, single_threaded_blas
    from rasp.tracr import from_tracr, is_tracr_expr
    start = time.perf_counter()
    if is_tracr_expr(sop):          # (built with an installed tracr-pypi's own rasp module)
        try:
            sop = from_tracr(sop)
        except TypeError as err:
            raise CompileError(str(err)) from None
    if not isinstance(sop, ir.SOp):
        raise CompileError(f"compile expects an s-op, got {type(sop).__name__}")
    if isinstance(max_seq_len, np.integer):      # (np.int64 from numpy code)
        max_seq_len = int(max_seq_len)
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise CompileError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    if max_seq_len > MAX_SEQ_LEN:
        raise CompileError(f"max_seq_len {max_seq_len} is above the supported {MAX_SEQ_LEN}: the compiler "
                           "analyses every length exactly (memory grows with max_seq_len cubed), and float32 "
                           "attention stops being exact far sooner for most programs")
    # numpy's overflow warnings (gaps between values near 1e308) would only precede the
    # compiler's own message about such values
    with np.errstate(over="ignore", invalid="ignore"):
        tokens = normalize_vocab(vocab)
        # a compile allocates many small objects (collections made it ~20 % slower) and
        # solves small least-squares problems (see single_threaded_blas)
        with gc_paused(), single_threaded_blas():
            try:
                model = build(sop, tokens, max_seq_len)
            except MemoryError:     # (outside the stages that name their node)
                from .infer import out_of_memory
                raise out_of_memory(None) from None
    model.info["compile_seconds"] = time.perf_counter() - start
    return model.to(device)


def to_transformer_lens(model: CompiledModel, device: Union[str, Any, None] = None):
    """The model as a `transformer_lens.HookedTransformer` with the same logits (see compiler.export)."""
    from .export import to_transformer_lens as export
    return export(model, device)
