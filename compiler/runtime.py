"""Stage 7: run a compiled transformer on real inputs (encode, batch, decode) and save it.

`CompiledModel` wraps the torch module with everything needed to use it: the
vocabulary (token ids), the output decoding and the residual layout (feature names,
for inspection). Inputs are checked first: an unknown token or a too-long input is a
clear `RaspInputError`, not a wrong answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from rasp.errors import RaspInputError
from rasp.values import token_list

from .assemble import BOS_ID, PAD_ID
from .model import ModelShape, Transformer

Input = Union[str, Sequence[Any]]


# ---- value encoding for metadata (JSON keeps types: tuples, None, bools) ---------------

def encode_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return {"tuple": [encode_value(x) for x in v]}
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return {"float": repr(v)}
    return v


def decode_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "tuple" in v:
            return tuple(decode_value(x) for x in v["tuple"])
        if "float" in v:
            return float(v["float"])
    return v


@dataclass
class OutputSpec:
    """How logits become output values."""

    mode: str                      # "onehot": argmax; "code": round to an index; "numeric": snap to `values`
    values: list                   # the possible output values (numeric: sorted by value)
    none_flag: bool = False        # numeric mode: logit 1 says "None"
    # per position, whether every value it can hold is a float (a list over lengths i+1..N
    # where that depends on the length), or None if nowhere: the value list keeps the int
    # 1 for 1 and 1.0, and a mean of several keys is the float 1.0 (one key: the int)
    floats_at: Optional[list] = None
    # [logit column, scale] where an output mean's BOS weight times the scale is 1/w for w
    # selected keys (compiler.lower.Readout.several): a mean of several keys is a float
    several: Optional[list] = None

    def decode(self, logits: np.ndarray) -> list:
        """logits: [positions, d_out] (the positions of one input) -> list of values."""
        return self._typed(self._values(logits), logits)

    def _typed(self, out: list, logits: np.ndarray) -> list:
        if self.floats_at is None and self.several is None:
            return out
        n = len(out)
        # (w = 1 gives 1, w = 2 gives 1/2, each within a factor e^(2 s) < e^0.3 where the
        # compiler keeps the column; none selected: BOS's whole weight times the scale)
        several = logits[:, self.several[0]] * self.several[1] < 0.5 ** 0.5 if self.several is not None else None
        typed = []
        for i, v in enumerate(out):
            flag = self.floats_at[i] if self.floats_at is not None and i < len(self.floats_at) else False
            if isinstance(flag, list):
                flag = flag[n - i - 1]
            if several is not None and several[i]:
                flag = True
            typed.append(float(v) if flag and type(v) is int else v)
        return typed

    def _values(self, logits: np.ndarray) -> list:
        if self.mode == "onehot":
            idx = np.argmax(logits, axis=-1)
            return [self.values[i] for i in idx]
        if self.mode == "code":
            idx = np.clip(np.rint(logits[:, 0]).astype(np.int64), 0, len(self.values) - 1)
            return [self.values[i] for i in idx]
        nums = np.array([float(v) for v in self.values])
        order = np.argsort(nums, kind="stable")
        sorted_nums = nums[order]
        x = logits[:, 0].astype(np.float64)
        pos = np.clip(np.searchsorted(sorted_nums, x), 1, max(1, len(sorted_nums) - 1)) if len(nums) > 1 else \
            np.zeros(len(x), dtype=np.int64)
        if len(nums) > 1:
            left = sorted_nums[pos - 1]
            right = sorted_nums[pos]
            pos = np.where(np.abs(x - left) <= np.abs(x - right), pos - 1, pos)
        out = [self.values[order[p]] for p in pos] if len(nums) else [None] * len(x)
        if self.none_flag:
            none = logits[:, 1] > 0.5
            out = [None if n else v for v, n in zip(out, none)]
        return out


class TokenEncoder:
    """Token ids as every model here numbers them: PAD 0, BOS 1, the vocabulary from 2.

    Checks inputs first: an unknown token or a too-long input is a clear RaspInputError.
    """

    def __init__(self, vocab: Sequence[Any], max_seq_len: int) -> None:
        self.vocab = list(vocab)
        self.max_seq_len = max_seq_len
        self._ids = {(type(t), t): i + 2 for i, t in enumerate(self.vocab)}

    def encode(self, batch: Sequence[Input], width: Optional[int] = None
               ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """ids [batch, width or 1 + longest], mask (True at BOS and tokens), lengths."""
        seqs = [token_list(x) for x in batch]
        lengths = [len(s) for s in seqs]
        T = width if width is not None else 1 + max(lengths, default=0)
        ids = np.full((len(seqs), T), PAD_ID, dtype=np.int64)
        ids[:, 0] = BOS_ID
        for b, seq in enumerate(seqs):
            if len(seq) > self.max_seq_len:
                raise RaspInputError(f"input {b} has length {len(seq)}, longer than the model's max_seq_len "
                                     f"{self.max_seq_len}")
            for i, tok in enumerate(seq):
                try:
                    tid = self._ids.get((type(tok), tok))
                except TypeError:        # an unhashable token (a list...): not in the vocabulary
                    tid = None
                if tid is None:
                    raise RaspInputError(f"token {tok!r} (position {i} of input {b}) is not in the vocabulary "
                                         f"{self.vocab!r}")
                ids[b, i + 1] = tid
        return torch.from_numpy(ids), torch.from_numpy(ids != PAD_ID), lengths


@dataclass
class CompiledModel:
    """A compiled RASP program: the transformer plus its input/output conventions."""

    module: Transformer
    vocab: list
    max_seq_len: int
    output: OutputSpec
    feature_labels: list[str]
    info: dict = field(default_factory=dict)      # sizes, compile time, per-layer blocks
    program: Any = None                           # the compile-time objects (for inspection)

    def __post_init__(self) -> None:
        self._encoder = TokenEncoder(self.vocab, self.max_seq_len)
        self.module.eval()

    # ---- sizes (a layer = attention + MLP, as in Tracr and the RASP paper)
    @property
    def num_layers(self) -> int:
        return self.module.shape.n_layers

    @property
    def heads_per_layer(self) -> list[int]:
        return list(self.module.shape.n_heads)

    @property
    def num_heads(self) -> int:
        return max(self.module.shape.n_heads, default=0)

    @property
    def d_model(self) -> int:
        return self.module.shape.d_model

    @property
    def d_mlp(self) -> int:
        return max(self.module.shape.d_mlp, default=0)

    @property
    def num_params(self) -> int:
        return self.module.num_params()

    @property
    def device(self) -> torch.device:
        return self.module.W_E.device

    def to(self, device: Union[str, torch.device]) -> "CompiledModel":
        try:
            if torch.device(device) != self.device:
                self.module.to(device)
        except (RuntimeError, AssertionError) as err:   # no such device, or torch built without it
            raise RaspInputError(f"cannot run on device {str(device)!r}: {err}") from None
        return self

    def sizes(self) -> dict:
        return {"layers": self.num_layers, "heads": self.num_heads, "heads_per_layer": self.heads_per_layer,
                "d_model": self.d_model, "d_mlp": self.d_mlp, "params": self.num_params}

    # ---- encoding
    def encode(self, batch: Sequence[Input]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Token ids [batch, 1 + longest], padding mask, and each input's length."""
        ids, mask, lengths = self._encoder.encode(batch)
        return ids.to(self.device), mask.to(self.device), lengths

    # ---- running
    @torch.no_grad()
    def logits(self, batch: Sequence[Input]) -> tuple[np.ndarray, list[int]]:
        ids, mask, lengths = self.encode(batch)
        out = self.module(ids, mask)
        if out.device.type == "meta":
            raise RaspInputError("the model is on the meta device, which computes shapes but holds no "
                                 "values (compile with device=\"cpu\" or \"cuda\" to run it)")
        return out.float().cpu().numpy(), lengths

    def run_batch(self, batch: Sequence[Input], batch_size: int = 1024) -> list[list]:
        """Outputs for many inputs (batched on the model's device)."""
        batch = list(batch)
        results: list[list] = []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start:start + batch_size]
            logits, lengths = self.logits(chunk)
            for b, n in enumerate(lengths):
                results.append(self.output.decode(logits[b, 1:n + 1]))
        return results

    def __call__(self, tokens: Input) -> list:
        return self.run_batch([tokens])[0]

    # ---- persistence
    def program_fingerprint(self) -> Optional[str]:
        """compiler.graph.fingerprint of the compiled program (computed when first asked:
        only saving needs it), or the saved one for a loaded model."""
        if "program_fingerprint" not in self.info and self.program is not None:
            from .graph import fingerprint
            self.info["program_fingerprint"] = fingerprint(self.program.sop)
        return self.info.get("program_fingerprint")

    def exactness(self) -> dict:
        """The forward error bound's verdict (compiler.bounds): proven_exact,
        output_error_bound, output_margin, unproven_because. Computed when first asked,
        saved with the model."""
        if "proven_exact" not in self.info and self.program is not None:
            from .lower import certify
            self.info.update(certify(self.program.lowered))
        keys = ("proven_exact", "output_error_bound", "output_margin", "unproven_because")
        return {k: self.info.get(k) for k in keys}

    def metadata(self) -> dict:
        self.program_fingerprint()
        self.exactness()
        return {
            "format": "rasp-compiled/1",
            "shape": self.module.shape.to_dict(),
            "vocab": [encode_value(v) for v in self.vocab],
            "max_seq_len": self.max_seq_len,
            "output": {"mode": self.output.mode, "values": [encode_value(v) for v in self.output.values],
                       "none_flag": self.output.none_flag, "floats_at": self.output.floats_at,
                       "several": self.output.several},
            "features": self.feature_labels,
            "info": self.info,
        }

    def save(self, path: Union[str, Path]) -> None:
        """Weights and everything needed to decode, in one safetensors file."""
        from safetensors.torch import save_file
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        if not Path(path).parent.is_dir():
            raise RaspInputError(f"cannot save to {path}: the directory {Path(path).parent} does not exist")
        try:
            save_file(tensors, str(path), metadata={"rasp": json.dumps(self.metadata())})
        except Exception as err:  # safetensors raises its own error type for I/O failures
            raise RaspInputError(f"cannot save to {path}: {err}") from None
        readable_by_all(path)


def readable_by_all(path: Union[str, Path]) -> None:
    """Give a saved file the permissions the umask allows (safetensors writes 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def safetensors_metadata(path: Union[str, Path]) -> dict:
    """The metadata of a saved model file; a missing file or one that is not safetensors is
    a RaspInputError (safetensors raises its own error types)."""
    from safetensors import safe_open
    if not Path(path).is_file():
        raise RaspInputError(f"cannot load {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as err:
        raise RaspInputError(f"{path} is not a RASP model (not a safetensors file: {err})") from None


def load(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> CompiledModel:
    """Load a model saved with `CompiledModel.save`."""
    from safetensors.torch import load_file
    meta = safetensors_metadata(path)
    if "rasp" not in meta:
        if "rasp_learned" in meta:
            raise RaspInputError(f"{path} is a learned model: load it with compiler.learn.load_learned")
        raise RaspInputError(f"{path} is not a compiled RASP model (no metadata)")
    info = json.loads(meta["rasp"])
    shape = ModelShape(**info["shape"])
    module = Transformer(shape)
    module.load_state_dict(load_file(str(path)))
    out = info["output"]
    spec = OutputSpec(out["mode"], [decode_value(v) for v in out["values"]], out.get("none_flag", False),
                      out.get("floats_at"), out.get("several"))
    model = CompiledModel(module, [decode_value(v) for v in info["vocab"]], info["max_seq_len"], spec,
                          info["features"], info.get("info", {}))
    return model.to(device)
from .export import export_onnx as _export_onnx; CompiledModel.export_onnx = _export_onnx  # noqa: E402
