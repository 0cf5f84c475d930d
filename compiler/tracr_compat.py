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

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch

from rasp.tracr import causal as causal_program

from .assemble import BOS_ID, PAD_ID
from .errors import CompileError
from .runtime import CompiledModel

COMPILER_BOS = "compiler_bos"
COMPILER_PAD = "compiler_pad"


@dataclass(frozen=True)
class TracrStyleConfig:
    """Tracr's `TransformerConfig` fields, for this model: no LayerNorm, ReLU MLPs, no
    dropout. Layers may differ here in head count and width: the largest is given."""

    num_heads: int
    num_layers: int
    key_size: int
    mlp_hidden_size: int
    dropout_rate: float = 0.0
    activation_function: Callable = torch.relu
    layer_norm: bool = False
    causal: bool = False


class TracrStyleEncoder:
    """Tracr's `CategoricalEncoder` surface (`encoding_map`, `encode`, `decode`, BOS and PAD),
    or its `NumericalEncoder` (the identity) where `encoding_map` is None."""

    def __init__(self, encoding_map: Optional[dict], bos_token: Optional[str] = None,
                 pad_token: Optional[str] = None, max_seq_len: Optional[int] = None) -> None:
        self.encoding_map = encoding_map
        self.enforce_bos = bos_token is not None
        self._bos, self._pad, self._max_seq_len = bos_token, pad_token, max_seq_len

    def encode(self, inputs: Sequence[Any]) -> list:
        if self.encoding_map is None:
            return list(inputs)
        if self.enforce_bos and (not inputs or inputs[0] != self._bos):
            raise ValueError(f"the first input token must be the BOS token {self._bos!r}")
        missing = [x for x in inputs if x not in self.encoding_map]
        if missing:
            raise ValueError(f"inputs {set(missing)} are not in the encoding {list(self.encoding_map)}")
        if self._max_seq_len is not None and len(inputs) > self._max_seq_len:
            raise ValueError(f"inputs={list(inputs)} are longer than the maximum sequence length {self._max_seq_len}")
        return [self.encoding_map[x] for x in inputs]

    def decode(self, encodings: Sequence[Any]) -> list:
        if self.encoding_map is None:
            return list(encodings)
        by_id = {i: v for v, i in self.encoding_map.items()}
        return [by_id[i] for i in encodings]

    @property
    def vocab_size(self) -> Optional[int]:
        return None if self.encoding_map is None else len(self.encoding_map)

    @property
    def bos_token(self) -> Optional[str]:
        return self._bos

    @property
    def pad_token(self) -> Optional[str]:
        return self._pad

    @property
    def bos_encoding(self) -> Optional[int]:
        return None if self._bos is None or self.encoding_map is None else self.encoding_map[self._bos]

    @property
    def pad_encoding(self) -> Optional[int]:
        return None if self._pad is None or self.encoding_map is None else self.encoding_map[self._pad]


@dataclass
class TracrStyleOutput:
    """What Tracr's `AssembledTransformerModel.apply` returns. `decoded` is computed at once;
    the activations (numpy, [1, positions, ...], BOS first, zero rows at padding) on first
    access, from one more run with the activation cache."""

    decoded: list            # the BOS token, then the program's value at each position
    _model: Any = field(default=None, repr=False, compare=False)
    _body: list = field(default_factory=list, repr=False, compare=False)
    _n_pad: int = field(default=0, repr=False, compare=False)

    @cached_property
    def _cache(self) -> dict:
        from .inspect import run_with_cache
        _, cache, _ = run_with_cache(self._model.model, [self._body])
        return {name: _padded(t, self._n_pad) for name, t in cache.items()}

    def _layers(self) -> range:
        return range(self._model.model.num_layers)

    @property
    def input_embeddings(self) -> np.ndarray:
        return self._cache["blocks.0.hook_resid_pre"] if self._model.model.num_layers else \
            self._cache["hook_resid_final"]

    @property
    def residuals(self) -> list:
        """The residual stream after each attention and each MLP sublayer, in order."""
        return [self._cache[f"blocks.{l}.{h}"] for l in self._layers() for h in ("hook_resid_mid", "hook_resid_post")]

    @property
    def layer_outputs(self) -> list:
        """What each attention and MLP sublayer adds to the residual stream."""
        before = [self.input_embeddings, *self.residuals[:-1]]
        return [after - prev for prev, after in zip(before, self.residuals)]

    @property
    def attn_logits(self) -> list:
        """Per layer, the attention scores [1, heads, query, key] (no heads: an MLP-only layer)."""
        out = []
        for l in self._layers():
            scores = self._cache.get(f"blocks.{l}.attn.hook_attn_scores")
            t = self.input_embeddings.shape[1]
            out.append(scores if scores is not None else np.zeros((1, 0, t, t), dtype=np.float32))
        return out

    @property
    def transformer_output(self) -> np.ndarray:
        return self._cache["hook_resid_final"]

    @property
    def unembedded(self) -> np.ndarray:
        """[1, positions]: each position's output encoding (its index in the output encoder's
        `encoding_map`, or the number for a numerical output); -1 (NaN) where there is none."""
        enc = self._model.output_encoder
        if enc.encoding_map is None:
            return np.array([[np.nan if v is None or i == 0 else float(v)
                              for i, v in enumerate(self.decoded)]])
        return np.array([[-1 if i == 0 or v is None else enc.encoding_map[v] for i, v in enumerate(self.decoded)]])


def _padded(t: torch.Tensor, n_pad: int) -> np.ndarray:
    """A cached activation as numpy, with zero rows for `n_pad` padding positions (queries,
    and keys of attention scores)."""
    a = t.detach().float().cpu().numpy()
    if n_pad and a.ndim == 4:        # [batch, heads, query, key]
        return np.pad(a, ((0, 0), (0, 0), (0, n_pad), (0, n_pad)))
    if n_pad and a.ndim == 3:        # [batch, position, features]
        return np.pad(a, ((0, 0), (0, n_pad), (0, 0)))
    return a


@dataclass
class TracrStyleModel:
    """A compiled model answering Tracr's `apply`; `model` is the torch model itself."""

    model: CompiledModel
    compiler_bos: str
    compiler_pad: str
    causal: bool = False

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
        return TracrStyleOutput([self.compiler_bos, *decoded, *([None] * n_pad)], self, body, n_pad)

    @cached_property
    def model_config(self) -> TracrStyleConfig:
        shape = self.model.module.shape
        return TracrStyleConfig(num_heads=self.model.num_heads, num_layers=self.model.num_layers,
                                key_size=max(shape.d_head, default=0), mlp_hidden_size=self.model.d_mlp,
                                causal=self.causal)

    @cached_property
    def residual_labels(self) -> list[str]:
        """One name per residual dimension (d_model of them), as Tracr lists its basis."""
        return list(self.model.feature_labels)

    @property
    def params(self) -> dict[str, dict[str, np.ndarray]]:
        """The weights as Tracr's (Haiku's) nested dict, {module: {name: array}}, under this
        model's own module names (`blocks.0.attn`: W_Q, W_K, ...)."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, p in self.model.module.named_parameters():
            module, _, leaf = name.rpartition(".")
            out.setdefault(module or "model", {})[leaf] = p.detach().cpu().numpy()
        return out

    @cached_property
    def input_encoder(self) -> TracrStyleEncoder:
        ids = {self.compiler_pad: PAD_ID, self.compiler_bos: BOS_ID}
        ids.update({t: i + 2 for i, t in enumerate(self.model.vocab)})
        return TracrStyleEncoder(ids, self.compiler_bos, self.compiler_pad, self.model.max_seq_len + 1)

    @cached_property
    def output_encoder(self) -> TracrStyleEncoder:
        spec = self.model.output
        if spec.mode == "numeric":
            return TracrStyleEncoder(None)
        return TracrStyleEncoder({v: i for i, v in enumerate(v for v in spec.values if v is not None)})

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
    return TracrStyleModel(model, compiler_bos, compiler_pad, causal)
