"""Train a transformer of the compiled model's class on a RASP program.

    import rasp, compiler
    from compiler import learn
    prog = rasp.load("programs/reverse.rasp")
    compiled = compiler.compile(prog["reverse"], vocab="abcdefghijklmnopqrstuvwxyz", max_seq_len=8)
    task = learn.Task.from_program(prog["reverse"], compiled.vocab, 8, compiled=compiled)
    model = learn.train(task, learn.shape_for(task, "budget", compiled), learn.TrainConfig(steps=3000))
    model.final["seq_acc"]          # held-out exact-sequence accuracy
    model.save("reverse.safetensors"); learn.load_learned("reverse.safetensors")

The data are random inputs (every length 1..max_len equally likely, tokens uniform over
the vocabulary) labelled by the reference interpreter. The model is
`compiler.model.Transformer`, the class of every compiled model, fed the same token ids
(BOS at position 0, PAD 0, vocabulary ids 2.. in the compiler's vocabulary order), with
a classification readout over the program's possible output values, trained with
cross-entropy at the real token positions (not BOS, not padding).

Training can also start from the compiled weights (`TrainConfig(init="compiled")`):
every weight is copied (optionally with relative Gaussian noise) and the readout becomes
a classification head that decodes exactly like the compiled readout where that is
linear (see `compiled_readout`); the history then records how far each head's
attention pattern drifts from its compiled original.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

import rasp
from rasp import ir
from rasp.errors import RaspError, RaspInputError

from .graph import fingerprint
from .model import ModelShape, Transformer
from .runtime import (CompiledModel, TokenEncoder, decode_value, encode_value, readable_by_all,
                      safetensors_metadata)

FORMAT = "rasp-learned/1"
META_KEY = "rasp_learned"


# ---- output values as classes ------------------------------------------------------------

def value_key(v: Any) -> tuple:
    """A hashable key under which equal values meet (1 == 1.0, but True is not 1)."""
    if v is None:
        return ("none",)
    if isinstance(v, (bool, np.bool_)):
        return ("bool", bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        if math.isnan(f):
            return ("num", "nan")
        if math.isinf(f):
            return ("num", f)
        return ("num", float(f"{f:.9g}"))     # the interpreter's float noise is far below 1e-9
    if isinstance(v, tuple):
        return ("tuple",) + tuple(value_key(x) for x in v)
    if isinstance(v, str):
        return ("str", v)
    return ("other", repr(v))


class ValueIndex:
    """A fixed list of values (the classes) and the class id of any value."""

    def __init__(self, values: Sequence[Any] = ()) -> None:
        self.values: list = []
        self._index: dict[tuple, int] = {}
        for v in values:
            self.add(v)

    def add(self, v: Any) -> int:
        k = value_key(v)
        if k not in self._index:
            self._index[k] = len(self.values)
            self.values.append(v)
        return self._index[k]

    def get(self, v: Any, default: int = -1) -> int:
        return self._index.get(value_key(v), default)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, v: Any) -> bool:
        return value_key(v) in self._index


# ---- token encoding (identical to CompiledModel.encode) ------------------------------------

def normalized_vocab(vocab: Sequence[Any]) -> list:
    from .pipeline import normalize_vocab
    return normalize_vocab(vocab)


# Token ids exactly as compiled models number them (PAD 0, BOS 1, vocabulary 2..).
Encoder = TokenEncoder


# ---- the task: a program, its inputs and its labels ------------------------------------------

class Task:
    """Random inputs of a program and their labels (class ids of the interpreter's outputs)."""

    def __init__(self, sop: ir.SOp, vocab: Sequence[Any], max_len: int, values: ValueIndex,
                 program_path: Optional[str] = None, name: Optional[str] = None) -> None:
        self.sop = sop
        self.vocab = list(vocab)
        self.max_len = max_len
        self.values = values
        self.program_path = program_path
        self.name = name or sop.name
        self.encoder = Encoder(self.vocab, max_len)
        self._vocab_array = np.empty(len(self.vocab), dtype=object)
        self._vocab_array[:] = self.vocab
        self.unknown_outputs = 0      # labels outside `values` met while sampling (ignored in the loss)

    @staticmethod
    def from_program(sop: ir.SOp, vocab: Sequence[Any], max_len: int, compiled: Optional[CompiledModel] = None,
                     program_path: Optional[str] = None, name: Optional[str] = None,
                     scan: int = 4096, seed: int = 0) -> "Task":
        """The classes are the compiled model's output values (with None where its numeric
        readout has a None flag), plus every value met on `scan` random inputs."""
        vocab = normalized_vocab(vocab) if compiled is None else list(compiled.vocab)
        values = ValueIndex()
        if compiled is not None:
            for v in compiled.output.values:
                values.add(v)
            if compiled.output.none_flag:
                values.add(None)
        task = Task(sop, vocab, max_len, values, program_path, name)
        rng = np.random.default_rng([seed, 7919])
        for out in task.label_values(task.random_inputs(rng, scan)):
            for v in out:
                values.add(v)
        if len(values) == 0:
            raise RaspError(f"{task.name}: no output values to learn")
        return task

    # inputs
    def num_inputs(self) -> int:
        V = len(self.vocab)
        return sum(V ** n for n in range(1, self.max_len + 1))

    def random_inputs(self, rng: np.random.Generator, n: int, length: Optional[int] = None) -> list[list]:
        """`n` inputs, each length 1..max_len equally likely (or exactly `length`)."""
        if length is None:
            lengths = rng.integers(1, self.max_len + 1, size=n)
        else:
            lengths = np.full(n, length)
        toks = rng.integers(0, len(self.vocab), size=(n, self.max_len))
        words = self._vocab_array[toks]
        return [list(words[b, :lengths[b]]) for b in range(n)]

    def all_inputs(self) -> list[list]:
        import itertools
        out: list[list] = []
        for n in range(1, self.max_len + 1):
            out.extend(list(p) for p in itertools.product(self.vocab, repeat=n))
        return out

    def eval_inputs(self, n: int, seed: int) -> tuple[list[list], bool]:
        """Every input when there are at most `n`, else `n` random ones (a separate stream)."""
        if self.num_inputs() <= n:
            return self.all_inputs(), True
        return self.random_inputs(np.random.default_rng([seed, 104729]), n), False

    # labels
    def label_values(self, inputs: list[list]) -> list[list]:
        """The interpreter's outputs; an input the program rejects gets None labels (skipped)."""
        try:
            return rasp.evaluate_batch(self.sop, inputs)
        except RaspError:
            out = []
            for x in inputs:
                try:
                    out.append(rasp.evaluate(self.sop, x))
                except RaspError:
                    out.append(None)
            return out

    def batch(self, inputs: list[list]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids [B, max_len+1], mask, labels [B, max_len+1] (-100 at BOS, padding and unknown values)."""
        ids, mask, lengths = self.encoder.encode(inputs, width=self.max_len + 1)
        labels = np.full(ids.shape, -100, dtype=np.int64)
        for b, out in enumerate(self.label_values(inputs)):
            if out is None:
                continue
            for i, v in enumerate(out):
                c = self.values.get(v)
                if c < 0:
                    self.unknown_outputs += 1
                labels[b, i + 1] = c if c >= 0 else -100
        return ids, mask, torch.from_numpy(labels)


# ---- shapes -------------------------------------------------------------------------------

def shape_for(task: Task, spec: str, compiled: Optional[CompiledModel] = None, d_model: int = 64) -> ModelShape:
    """`compiled`: the compiled model's per-layer heads, head sizes, MLP widths and d_model;
    `budget`: the compiled model's layer count and widest layer's head count, uniform with
    d_model `d_model` (the experiment's default); `LxHxD`: L layers of H heads, d_model D,
    d_head D//H, d_mlp 4D."""
    d_vocab, n_ctx, d_out = len(task.vocab) + 2, task.max_len + 1, len(task.values)
    spec = spec.strip().lower()
    if spec in ("compiled", "budget"):
        if compiled is None:
            raise RaspError(f"--shape {spec} needs a compiled model, and the program did not compile")
        s = compiled.module.shape
        if spec == "compiled":
            d_head_max = max([d for d, h in zip(s.d_head, s.n_heads) if h > 0], default=1)
            return ModelShape(d_vocab, n_ctx, s.d_model, d_out, list(s.n_heads), list(s.d_head), list(s.d_mlp),
                              attn_scale=1.0 / math.sqrt(max(1, d_head_max)))
        L, H = s.n_layers, max(1, max(s.n_heads, default=1))
        return ModelShape.uniform(d_vocab, n_ctx, d_model, d_out, L, H, max(1, d_model // H), 4 * d_model)
    parts = spec.split("x")
    try:
        L, H, D = (int(p) for p in parts)
    except ValueError:
        raise RaspError(f"--shape must be 'compiled', 'budget' or LxHxD (e.g. 2x1x64), got {spec!r}") from None
    if L < 0 or H < 1 or D < H:
        raise RaspError(f"--shape {spec}: need L >= 0, H >= 1 and D >= H")
    return ModelShape.uniform(d_vocab, n_ctx, D, d_out, L, H, D // H, 4 * D)


# ---- initialisation -------------------------------------------------------------------------

def init_weights(module: Transformer) -> None:
    """Random initialisation for a model without LayerNorm (uses torch's global RNG).

    Embeddings have unit-variance coordinates; every matrix reading the residual stream
    has std 1/sqrt(fan_in); the matrices writing back (W_O, MLP W_out) are scaled down by
    1/sqrt(2 * layers) so the residual stream keeps its size at init; biases are zero.
    """
    s = module.shape
    down = 1.0 / math.sqrt(2 * max(1, s.n_layers))
    with torch.no_grad():
        module.W_E.normal_(0.0, 1.0)
        module.W_pos.normal_(0.0, 1.0)
        for block in module.blocks:
            if block.attn is not None:
                a = block.attn
                for w in (a.W_Q, a.W_K, a.W_V):
                    w.normal_(0.0, 1.0 / math.sqrt(s.d_model))
                a.W_O.normal_(0.0, down / math.sqrt(max(1, a.n_heads * a.d_head)))
                for b in (a.b_Q, a.b_K, a.b_V, a.b_O):
                    b.zero_()
            if block.mlp is not None:
                m = block.mlp
                m.W_in.normal_(0.0, math.sqrt(2.0 / s.d_model))
                m.W_out.normal_(0.0, down / math.sqrt(m.W_in.shape[1]))
                m.b_in.zero_()
                m.b_out.zero_()
        module.W_U.normal_(0.0, 1.0 / math.sqrt(s.d_model))
        module.b_U.zero_()


def compiled_readout(compiled: CompiledModel, values: ValueIndex, margin: float = 10.0
                     ) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """A classification head (W_U [d_model, classes], b_U) that decodes like the compiled readout.

    * onehot: the compiled W_U columns, reordered to our classes;
    * code / numeric without a None flag: the compiled readout is one number c, decoded to
      the value v_k nearest to it (code: v_k = k, the value's index). Nearest means
      argmax_k -(c - v_k)^2 = argmax_k (2 v_k c - v_k^2) (the c^2 term is common to all
      classes), which is linear in c and so in the residual stream: logit_k =
      alpha * (2 v_k c - v_k^2), with alpha = margin / (smallest gap between values)^2 so
      neighbouring classes are `margin` logits apart when c is exact;
    * numeric with a None flag: None (no linear head decodes the flag exactly): the caller
      starts a fresh head and trains it alone first.
    Classes the compiled model never outputs get zero weights and bias -margin.
    """
    out = compiled.output
    s = compiled.module.shape
    W = compiled.module.W_U.detach().double().cpu()
    b = compiled.module.b_U.detach().double().cpu()
    n = len(values)
    W_new = torch.zeros(s.d_model, n, dtype=torch.float64)
    b_new = torch.full((n,), -margin, dtype=torch.float64)
    if out.mode == "onehot":
        for j, v in enumerate(out.values):
            k = values.get(v)
            if k >= 0:
                W_new[:, k] = W[:, j]
                b_new[k] = b[j]
        return W_new.float(), b_new.float()
    if out.mode == "numeric" and out.none_flag:
        return None
    if out.mode == "code":
        targets = [(values.get(v), float(j)) for j, v in enumerate(out.values)]
        gap = 1.0
    else:
        targets = [(values.get(v), float(v)) for v in out.values]
        nums = sorted({t for _, t in targets})
        gap = min((b2 - a2 for a2, b2 in zip(nums, nums[1:])), default=1.0) or 1.0
    alpha = margin / gap ** 2
    for k, t in targets:
        if k >= 0:
            W_new[:, k] = alpha * 2 * t * W[:, 0]
            b_new[k] = alpha * (2 * t * b[0] - t * t)
    return W_new.float(), b_new.float()


def from_compiled(compiled: CompiledModel, values: ValueIndex, noise: float = 0.0,
                  generator: Optional[torch.Generator] = None) -> tuple[Transformer, bool]:
    """A trainable copy of the compiled transformer with a classification readout.

    Returns the module and whether its readout is exact (False: a fresh random head).
    `noise` adds Gaussian noise of std `noise` * RMS(tensor) to every copied weight tensor
    (relative, because compiled weights range over orders of magnitude). The attention
    scale stays the compiled one (1), so the copied weights compute what they did.
    """
    s = compiled.module.shape
    shape = ModelShape(s.d_vocab, s.n_ctx, s.d_model, len(values), list(s.n_heads), list(s.d_head),
                       list(s.d_mlp), attn_scale=s.attn_scale)
    module = Transformer(shape)
    state = {k: v.detach().cpu().clone() for k, v in compiled.module.state_dict().items()
             if k not in ("W_U", "b_U")}
    if noise > 0:
        for k, v in state.items():
            rms = v.float().pow(2).mean().sqrt()
            if rms > 0:
                state[k] = v + noise * rms * torch.randn(v.shape, generator=generator, dtype=v.dtype)
    readout = compiled_readout(compiled, values)
    if readout is None:
        init_weights(module)      # only the readout of this draw is kept
        W_U, b_U = module.W_U.detach().clone(), module.b_U.detach().clone()
    else:
        W_U, b_U = readout
    state["W_U"], state["b_U"] = W_U, b_U
    module.load_state_dict(state)
    return module, readout is not None


# ---- the trained model ----------------------------------------------------------------------

class LearnedModel:
    """A trained transformer with its vocabulary, output classes and training record."""

    def __init__(self, module: Transformer, vocab: Sequence[Any], max_seq_len: int, values: Sequence[Any],
                 meta: Optional[dict] = None) -> None:
        self.module = module
        self.vocab = list(vocab)
        self.max_seq_len = max_seq_len
        self.values = list(values)
        self.meta = dict(meta or {})
        self.encoder = Encoder(self.vocab, max_seq_len)
        self.module.eval()

    @property
    def device(self) -> torch.device:
        return self.module.W_E.device

    def to(self, device: Union[str, torch.device]) -> "LearnedModel":
        self.module.to(device)
        return self

    @property
    def final(self) -> dict:
        return self.meta.get("final", {})

    @property
    def history(self) -> list[dict]:
        return self.meta.get("history", [])

    def encode(self, batch: Sequence[Sequence[Any]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        ids, mask, lengths = self.encoder.encode(batch)
        return ids.to(self.device), mask.to(self.device), lengths

    def decode(self, logits: np.ndarray) -> list:
        """logits [positions, classes] -> values."""
        return [self.values[i] for i in np.argmax(logits, axis=-1)]

    @torch.no_grad()
    def run_batch(self, batch: Sequence[Sequence[Any]], batch_size: int = 1024) -> list[list]:
        batch = [list(x) for x in batch]
        results: list[list] = []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start:start + batch_size]
            ids, mask, lengths = self.encode(chunk)
            logits = self.module(ids, mask).float().cpu().numpy()
            results.extend(self.decode(logits[b, 1:n + 1]) for b, n in enumerate(lengths))
        return results

    def __call__(self, tokens: Sequence[Any]) -> list:
        return self.run_batch([list(tokens)])[0]

    def metadata(self) -> dict:
        return {**self.meta, "format": FORMAT, "shape": self.module.shape.to_dict(),
                "vocab": [encode_value(v) for v in self.vocab], "max_seq_len": self.max_seq_len,
                "output_values": [encode_value(v) for v in self.values]}

    def save(self, path: Union[str, Path]) -> None:
        """Weights (safetensors) with everything else as JSON metadata."""
        from safetensors.torch import save_file
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(tensors, str(path), metadata={META_KEY: json.dumps(self.metadata())})
        readable_by_all(path)


def checkpoint_path(path: Union[str, Path]) -> Path:
    """A checkpoint file, or the `model.safetensors` inside a training output folder."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise RaspInputError(f"no such checkpoint: {path}")
    return p


def read_metadata(path: Union[str, Path]) -> dict:
    """The JSON metadata of a saved model: {"kind": "learned"|"compiled", ...}."""
    meta = safetensors_metadata(checkpoint_path(path))
    if META_KEY in meta:
        return {"kind": "learned", **json.loads(meta[META_KEY])}
    if "rasp" in meta:
        return {"kind": "compiled", **json.loads(meta["rasp"])}
    raise RaspInputError(f"{path} is neither a learned nor a compiled RASP model (no metadata)")


def load_learned(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> LearnedModel:
    """Load a model saved with `LearnedModel.save` (a file, or a `rasp learn -o` folder)."""
    from safetensors.torch import load_file
    p = checkpoint_path(path)
    meta = read_metadata(p)
    if meta.get("kind") != "learned":
        raise RaspInputError(f"{path} is a compiled model, not a learned one (use compiler.load)")
    meta.pop("kind")
    shape = ModelShape(**meta["shape"])
    module = Transformer(shape)
    module.load_state_dict(load_file(str(p)))
    vocab = [decode_value(v) for v in meta["vocab"]]
    values = [decode_value(v) for v in meta["output_values"]]
    keep = {k: v for k, v in meta.items() if k not in ("format", "shape", "vocab", "max_seq_len", "output_values")}
    return LearnedModel(module, vocab, meta["max_seq_len"], values, keep).to(device)


def load_any(path: Union[str, Path], device: Union[str, torch.device] = "cpu"):
    """A learned model or a compiled one, whichever the file holds."""
    from .runtime import load
    if read_metadata(path).get("kind") == "compiled":
        return load(checkpoint_path(path), device)
    return load_learned(path, device)


def random_model(shape: ModelShape, vocab: Sequence[Any], max_seq_len: int, values: Sequence[Any],
                 seed: int = 0) -> LearnedModel:
    """An untrained model (the comparison's null baseline)."""
    with _seeded(seed):
        module = Transformer(shape)
        init_weights(module)
    return LearnedModel(module, vocab, max_seq_len, values, {"init": "random-untrained"})


# ---- training -------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100                 # linear warm-up steps, then cosine decay to lr/20
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    eval_every: int = 250
    eval_size: int = 2000             # held-out inputs (all inputs when there are fewer)
    early_stop: Optional[float] = None  # stop at the first evaluation with seq accuracy >= this
    init: str = "random"              # or "compiled"
    noise: float = 0.0                # compiled init: relative Gaussian noise on the weights
    readout_steps: int = 200          # compiled init without an exact readout: train the head alone first
    track_size: int = 256             # compiled init: inputs for the head-drift measurement
    threads: Optional[int] = 1        # torch CPU threads while training (None: leave torch's setting)
    optimizer: str = "adamw"          # or "sgd" (momentum 0.9; no per-weight normalisation)


class torch_threads:
    """Run with `n` torch CPU threads (None: unchanged), restoring the setting afterwards.

    The models here are tiny: a second intra-op thread gains little, and when the
    machine's 2 cores are shared with other work, torch's spinning worker threads can
    make every step 10-50x slower. Training and comparison therefore default to 1.
    """

    def __init__(self, n: Optional[int]) -> None:
        self.n = n

    def __enter__(self) -> "torch_threads":
        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> bool:
        torch.set_num_threads(self.before)
        return False


class _seeded:
    """Seed python, numpy and torch; turn on deterministic algorithms; restore afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> "_seeded":
        self.det = torch.are_deterministic_algorithms_enabled()
        self.torch_state = torch.random.get_rng_state()
        self.py_state = random.getstate()
        self.np_state = np.random.get_state()
        random.seed(self.seed)
        np.random.seed(self.seed % 2 ** 32)
        torch.manual_seed(self.seed)
        try:
            torch.use_deterministic_algorithms(True)
        except Exception:  # pragma: no cover - every CPU op used here has a deterministic version
            pass
        return self

    def __exit__(self, *exc) -> bool:
        torch.use_deterministic_algorithms(self.det)
        torch.random.set_rng_state(self.torch_state)
        random.setstate(self.py_state)
        np.random.set_state(self.np_state)
        return False


@torch.no_grad()
def accuracy(module: Transformer, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 4096) -> tuple[float, float]:
    """(token accuracy, sequence accuracy) over positions with a label."""
    was = module.training
    module.eval()
    correct_tok = total_tok = correct_seq = total_seq = 0
    for s in range(0, ids.shape[0], batch_size):
        i, m, y = ids[s:s + batch_size], mask[s:s + batch_size], labels[s:s + batch_size]
        pred = module(i, m).argmax(-1)
        valid = y != -100
        ok = (pred == y) | ~valid
        correct_tok += int(((pred == y) & valid).sum())
        total_tok += int(valid.sum())
        has = valid.any(-1)
        correct_seq += int((ok.all(-1) & has).sum())
        total_seq += int(has.sum())
    module.train(was)
    return correct_tok / max(1, total_tok), correct_seq / max(1, total_seq)


def _lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


class _Bar:
    """A rich progress bar on stderr: step, loss, batch accuracy, last held-out accuracy.

    rich is already a dependency of the CLI (tables, spinners), so no new package is
    needed for it; it draws nothing when stderr is not a terminal.
    """

    def __init__(self, total: int, title: str, enabled: bool) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task(title, total=total, stats="")
        self.progress.start()

    def update(self, step: int, stats: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=stats)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def train(task: Task, shape: Optional[ModelShape], config: TrainConfig, compiled: Optional[CompiledModel] = None,
          progress: bool = False, log: Optional[Callable[[dict], None]] = None) -> LearnedModel:
    """Train a model of `shape` (ignored for compiled init) on `task`; deterministic under config.seed."""
    device = torch.device(config.device)
    start = time.perf_counter()
    with torch_threads(config.threads):
        return _train(task, shape, config, compiled, progress, log, device, start)


def _train(task: Task, shape: Optional[ModelShape], config: TrainConfig, compiled: Optional[CompiledModel],
           progress: bool, log: Optional[Callable[[dict], None]], device: torch.device, start: float) -> LearnedModel:
    with _seeded(config.seed):
        gen = torch.Generator().manual_seed(config.seed + 1)
        exact_readout = True
        if config.init == "compiled":
            if compiled is None:
                raise RaspError("compiled initialisation needs the compiled model")
            module, exact_readout = from_compiled(compiled, task.values, config.noise, gen)
        elif config.init == "random":
            if shape is None:
                raise RaspError("random initialisation needs a shape")
            module = Transformer(shape)
            init_weights(module)
        else:
            raise RaspError(f"init must be 'random' or 'compiled', got {config.init!r}")
        module.to(device)
        data_rng = np.random.default_rng([config.seed, 1])

        test_inputs, exhaustive = task.eval_inputs(config.eval_size, config.seed)
        t_ids, t_mask, t_labels = (x.to(device) for x in task.batch(test_inputs))
        tracker = _DriftTracker(compiled, task, module, config) if config.init == "compiled" else None

        history: list[dict] = []
        steps_to_99 = None
        seconds_to_99 = None

        def evaluate(step: int, loss: float, train_acc: float) -> dict:
            tok, seq = accuracy(module, t_ids, t_mask, t_labels)
            row = {"step": step, "seconds": round(time.perf_counter() - start, 3), "loss": loss,
                   "train_token_acc": train_acc, "test_token_acc": tok, "test_seq_acc": seq}
            if tracker is not None:
                row.update(tracker.measure(module))
            history.append(row)
            if log is not None:
                log(row)
            return row

        first = evaluate(0, float("nan"), float("nan"))
        if first["test_seq_acc"] >= 0.99:
            steps_to_99, seconds_to_99 = 0, first["seconds"]

        params = list(module.parameters())
        head_only = config.init == "compiled" and not exact_readout and config.readout_steps > 0
        bar = _Bar(config.steps, f"training {task.name}", progress)
        chunk: list = []
        loss_value, train_acc = float("nan"), float("nan")
        ema_loss = ema_acc = None
        opt = _optimizer([module.W_U, module.b_U] if head_only else params, config)
        step = 0
        try:
            for step in range(1, config.steps + 1):
                if head_only and step == config.readout_steps + 1:
                    opt = _optimizer(params, config)       # the head is warm: now everything trains
                frozen = head_only and step <= config.readout_steps
                for p in params:
                    p.requires_grad_(not frozen or p is module.W_U or p is module.b_U)
                if not chunk:
                    inputs = task.random_inputs(data_rng, config.batch_size * 16)
                    ids, mask, labels = task.batch(inputs)
                    chunk = [(ids[s:s + config.batch_size], mask[s:s + config.batch_size],
                              labels[s:s + config.batch_size]) for s in range(0, len(inputs), config.batch_size)]
                    chunk.reverse()
                ids, mask, labels = (x.to(device) for x in chunk.pop())
                for g in opt.param_groups:
                    g["lr"] = config.lr * _lr_factor(step - 1, config)
                module.train()
                logits = module(ids, mask)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                         ignore_index=-100)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], config.grad_clip)
                opt.step()
                with torch.no_grad():
                    valid = labels != -100
                    acc = float(((logits.argmax(-1) == labels) & valid).sum()) / max(1, int(valid.sum()))
                loss_value, train_acc = float(loss.detach()), acc
                ema_loss = loss_value if ema_loss is None else 0.95 * ema_loss + 0.05 * loss_value
                ema_acc = acc if ema_acc is None else 0.95 * ema_acc + 0.05 * acc
                if step % config.eval_every == 0 or step == config.steps:
                    row = evaluate(step, loss_value, train_acc)
                    if steps_to_99 is None and row["test_seq_acc"] >= 0.99:
                        steps_to_99, seconds_to_99 = step, row["seconds"]
                    if config.early_stop is not None and row["test_seq_acc"] >= config.early_stop:
                        bar.update(step, _stats(ema_loss, ema_acc, history))
                        break
                if step % 10 == 0 or step == config.steps:
                    bar.update(step, _stats(ema_loss, ema_acc, history))
        finally:
            bar.close()
        if history[-1]["step"] != step:
            evaluate(step, loss_value, train_acc)
        for p in params:
            p.requires_grad_(True)

    final = history[-1]
    meta = {
        "program": {"path": task.program_path, "name": task.name, "fingerprint": fingerprint(task.sop)},
        "config": asdict(config),
        "init": config.init,
        "exact_readout_init": exact_readout if config.init == "compiled" else None,
        "train_seconds": round(time.perf_counter() - start, 3),
        "steps_run": step,
        "steps_to_99": steps_to_99,
        "seconds_to_99": seconds_to_99,
        "final": {"token_acc": final["test_token_acc"], "seq_acc": final["test_seq_acc"],
                  "eval_inputs": len(test_inputs), "exhaustive": exhaustive},
        "unknown_outputs": task.unknown_outputs,
        "history": history,
        "torch": torch.__version__,
    }
    return LearnedModel(module.cpu(), task.vocab, task.max_len, task.values.values, meta)


def _optimizer(params: list, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer != "adamw":
        raise RaspError(f"optimizer must be 'adamw' or 'sgd', got {config.optimizer!r}")
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.98))


def _stats(loss: Optional[float], acc: Optional[float], history: list[dict]) -> str:
    if loss is None:
        return ""
    last = history[-1] if history else {}
    return (f"loss {loss:.4f}  acc {acc:.3f}  held-out seq {last.get('test_seq_acc', float('nan')):.3f}")


class _DriftTracker:
    """Compiled init: how far each head's attention drifts from the same head of the compiled model."""

    def __init__(self, compiled: CompiledModel, task: Task, module: Transformer, config: TrainConfig) -> None:
        from .circuits import attention_patterns
        self.rng_inputs = task.random_inputs(np.random.default_rng([config.seed, 31337]), config.track_size)
        ids, mask, _ = task.encoder.encode(self.rng_inputs)
        self.ids, self.mask = ids.to(module.W_E.device), mask.to(module.W_E.device)
        self.reference = {k: v.to(self.ids.device) for k, v in
                          attention_patterns(compiled.module.to(self.ids.device), self.ids, self.mask).items()}
        compiled.module.cpu()
        self.start = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def measure(self, module: Transformer) -> dict:
        from .circuits import attention_patterns, pattern_similarity
        pats = attention_patterns(module, self.ids, self.mask)
        sims = {f"{l}.{h}": pattern_similarity(pats[(l, h)], self.reference[(l, h)], self.mask)
                for (l, h) in self.reference}
        num = sum(float((v - self.start[k]).pow(2).sum()) for k, v in module.state_dict().items()
                  if k not in ("W_U", "b_U"))
        den = sum(float(self.start[k].pow(2).sum()) for k in self.start if k not in ("W_U", "b_U"))
        return {"head_similarity": sims,
                "mean_head_similarity": float(np.mean(list(sims.values()))) if sims else float("nan"),
                "weight_drift": math.sqrt(num / max(den, 1e-30))}


# ---- training records on disk ------------------------------------------------------------------

def write_training_files(model: LearnedModel, out_dir: Union[str, Path]) -> list[Path]:
    """model.safetensors, history.csv and training.png (loss and held-out accuracy over steps);
    after compiled initialisation also drift.csv and drift.png (each head's attention
    similarity to its compiled original, and the relative weight change, over steps)."""
    import csv
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "model.safetensors", out / "history.csv", out / "training.png"]
    model.save(paths[0])
    hist = model.history
    cols = ["step", "seconds", "loss", "train_token_acc", "test_token_acc", "test_seq_acc"]
    drift = any("head_similarity" in r for r in hist)
    heads = sorted(hist[0].get("head_similarity", {})) if drift else []
    if drift:
        cols += ["mean_head_similarity", "weight_drift"]
    with paths[1].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + [f"head {h}" for h in heads])
        for r in hist:
            w.writerow([r.get(c) for c in cols] + [r["head_similarity"][h] for h in heads])

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in hist]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps[1:], [r["loss"] for r in hist[1:]], color="tab:red", label="train loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["test_token_acc"] for r in hist], color="tab:blue", label="held-out token acc")
    ax2.plot(steps, [r["test_seq_acc"] for r in hist], color="tab:green", label="held-out sequence acc")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("accuracy")
    lines = ax.get_lines() + ax2.get_lines()
    ax2.legend(lines, [l.get_label() for l in lines], loc="center right", fontsize=8)
    ax.set_title(f"{model.meta.get('program', {}).get('name', '')}: training")
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    if drift:
        paths.append(out / "drift.png")
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for h in heads:
            ax.plot(steps, [r["head_similarity"][h] for r in hist], label=f"head L{h.replace('.', '.H')}")
        ax.plot(steps, [r["test_seq_acc"] for r in hist], "k--", label="held-out sequence acc")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("similarity to compiled head (1 - TV)")
        ax3 = ax.twinx()
        ax3.plot(steps, [r["weight_drift"] for r in hist], color="grey", alpha=0.5, label="relative weight change")
        ax3.set_ylabel("||w - w0|| / ||w0||")
        lines = ax.get_lines() + ax3.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], loc="lower left", fontsize=7)
        ax.set_title("compiled initialisation: circuit drift")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
