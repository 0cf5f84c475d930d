"""The compiled model object: sizes, batching, errors, persistence, devices, CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import compiler
import rasp
from rasp.header import load_with_header

from .helpers import compile_text

REVERSE = "aggregate(select(indices, length - indices - 1, ==), tokens);"


@pytest.fixture(scope="module")
def reverse_model():
    return compiler.compile(compile_text(REVERSE), vocab="abc", max_seq_len=8)


def test_sizes_are_consistent(reverse_model):
    m = reverse_model
    shape = m.module.shape
    assert m.num_layers == len(shape.n_heads) == 2
    assert m.heads_per_layer == [1, 1] and m.num_heads == 1
    assert m.d_model == shape.d_model == len(m.feature_labels)
    assert m.d_mlp == max(shape.d_mlp)
    assert m.num_params == sum(p.numel() for p in m.module.parameters())
    assert m.info["compile_seconds"] > 0


def test_run_batch_mixed_lengths(reverse_model):
    batch = ["a", "abc", "cab", "abcabcab", "ba"]
    assert reverse_model.run_batch(batch) == [list(reversed(x)) for x in batch]
    assert reverse_model.run_batch(batch, batch_size=2) == [list(reversed(x)) for x in batch]


def test_errors_for_bad_inputs(reverse_model):
    with pytest.raises(rasp.RaspInputError, match="not in the vocabulary"):
        reverse_model("abz")
    with pytest.raises(rasp.RaspInputError, match="longer than the model's max_seq_len 8"):
        reverse_model("abcabcabc")


def test_unhashable_tokens_missing_directories_and_foreign_files_are_clear_errors(tmp_path, reverse_model):
    with pytest.raises(rasp.RaspInputError, match="not in the vocabulary"):
        reverse_model([["a"]])
    with pytest.raises(rasp.RaspInputError, match="does not exist"):
        reverse_model.save(tmp_path / "missing" / "rev.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"garbage" * 10)
    with pytest.raises(rasp.RaspInputError, match="not a safetensors file"):
        compiler.load(garbage)
    with pytest.raises(rasp.RaspInputError, match="no such file"):
        compiler.load(tmp_path / "absent.safetensors")


def test_save_and_load_roundtrip(tmp_path, reverse_model):
    path = tmp_path / "rev.safetensors"
    reverse_model.save(path)
    loaded = compiler.load(path)
    assert loaded.vocab == reverse_model.vocab and loaded.max_seq_len == 8
    assert loaded.sizes() == reverse_model.sizes()
    assert loaded("abca") == ["a", "c", "b", "a"]
    for a, b in zip(reverse_model.module.parameters(), loaded.module.parameters()):
        assert torch.equal(a, b)


def test_save_load_keeps_value_types(tmp_path):
    sop = compile_text("aggregate(select(indices, indices - 1, ==), tokens_int);")
    model = compiler.compile(sop, vocab=[1, 2, 3], max_seq_len=4)
    model.save(tmp_path / "m.safetensors")
    loaded = compiler.load(tmp_path / "m.safetensors")
    assert loaded([3, 1, 2]) == model([3, 1, 2]) == [0, 3, 1]


def test_no_python_loop_over_positions_in_forward(reverse_model):
    # the forward pass is a fixed sequence of batched tensor ops: the same number of
    # ops for any length (a loop over positions would scale with it)
    def count_ops(length):
        ids, mask, _ = reverse_model.encode(["a" * length])
        with torch.profiler.profile() as prof:
            reverse_model.module(ids, mask)
        return sum(e.count for e in prof.key_averages())
    assert count_ops(2) == count_ops(8)


def test_plain_and_hooked_forward_agree_and_hooks_keep_pre_activations(reverse_model):
    # the plain pass takes the transposed-weight product for narrow outputs and an in-place
    # ReLU; the hooked pass (inspection) must see the same numbers, and the MLP's input
    # as it was before the ReLU
    from compiler.model import _affine
    ids, mask, _ = reverse_model.encode(["abcab", "ba", "c"])
    module = reverse_model.module
    with torch.no_grad():
        plain = module(ids, mask)
        hooked, cache = module.run_with_cache(ids, mask)
    assert torch.allclose(plain, hooked, rtol=1e-6, atol=1e-4)
    layer = next(i for i, b in enumerate(module.blocks) if b.mlp is not None)
    pre, post = cache[f"blocks.{layer}.mlp.hook_pre"], cache[f"blocks.{layer}.mlp.hook_post"]
    assert (pre < 0).any() and torch.equal(post, torch.relu(pre))
    x, w, b = torch.randn(300, 40), torch.randn(40, 3), torch.randn(3)
    assert torch.allclose(_affine(x, w, b), torch.addmm(b, x, w), rtol=1e-5, atol=1e-4)


def test_float32_weights(reverse_model):
    assert all(p.dtype == torch.float32 for p in reverse_model.module.parameters())


def test_forward_makes_every_tensor_on_the_input_device(reverse_model):
    # no GPU here: the meta device (shapes, no data) stands in for one. A forward pass
    # that made a tensor on the CPU (torch.arange without device=, a numpy round trip)
    # mixes devices and fails on meta as it would on CUDA; so would inspection's
    # activation cache, which takes the hooked path through attention
    import copy
    ids, mask, _ = reverse_model.encode(["abc", "a"])
    module = copy.deepcopy(reverse_model.module).to("meta")
    ids, mask = ids.to("meta"), mask.to("meta")
    logits = module(ids, mask)
    assert logits.device.type == "meta" and tuple(logits.shape) == (2, 4, module.shape.d_out)
    _, cache = module.run_with_cache(ids, mask)
    assert len(cache) > 10 and all(t.device.type == "meta" for t in cache.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_runs_on_gpu():
    model = compiler.compile(compile_text(REVERSE), vocab="abc", max_seq_len=8, device="cuda")
    assert model("abc") == ["c", "b", "a"]


DEVICE_PROGRAMS = ["sort", "most_freq", "shuffle_dyck2", "pair_balance", "addition"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", DEVICE_PROGRAMS)
def test_library_programs_are_exact_on_the_device_even_where_tf32_is_on(name, device):
    # a user who turned TF32 on for their own work (10-bit mantissa products on CUDA)
    # still gets exact outputs: the forward pass computes in float32 (model.full_float32)
    _, h, sop = load_with_header(Path(__file__).resolve().parents[2] / "programs" / f"{name}.rasp")
    model = compiler.compile(sop, vocab=h.vocab, max_seq_len=h.max_len, device=device)
    rng = random.Random(name)
    inputs = [[rng.choice(h.vocab) for _ in range(rng.randint(1, h.max_len))] for _ in range(400)]
    good, expected = rasp.evaluate_accepted(sop, inputs)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        got = model.run_batch(good)
    finally:
        torch.set_float32_matmul_precision(before)
    assert len(good) > 100
    assert all(compiler.same_output(e, g) for e, g in zip(expected, got))


def test_full_float32_turns_tf32_off_on_cuda_and_restores_the_users_settings():
    from compiler.model import full_float32
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        with full_float32(torch.device("cuda")):        # (settings only: no GPU is needed)
            assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.allow_tf32
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
        with full_float32(torch.device("cpu")):
            assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rasp_cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_run_and_compile_json(tmp_path):
    src = tmp_path / "rev.rasp"
    src.write_text("rev = " + REVERSE + "\n")
    run = _cli("run", str(src), "--input", "abc", "--vocab", "abc", "--max-len", "6", "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["output"] == ["c", "b", "a"] and out["layers"] == 2
    assert set(out) == {"output", "layers", "heads", "d_model", "d_mlp", "params"}
    comp = _cli("compile", str(src), "--vocab", "abc", "--max-len", "6", "--json", "-o", str(tmp_path / "m.st"))
    assert comp.returncode == 0, comp.stderr
    sizes = json.loads(comp.stdout)
    assert sizes["compile_seconds"] > 0 and sizes["d_model"] == out["d_model"]
    assert sizes["proven_exact"] is True and 0 < sizes["output_error_bound"] < sizes["output_margin"] == 0.5
    assert compiler.load(tmp_path / "m.st")("ab") == ["b", "a"]


def test_cli_errors_are_clean(tmp_path):
    src = tmp_path / "rev.rasp"
    src.write_text("rev = " + REVERSE + "\n")
    long = _cli("run", str(src), "--input", "abcdefgh", "--vocab", "abc", "--max-len", "4")
    assert long.returncode == 1 and "max_seq_len 4" in long.stderr and "Traceback" not in long.stderr
    oov = _cli("run", str(src), "--input", "abz", "--vocab", "abc", "--max-len", "4")
    assert oov.returncode == 1 and "'z'" in oov.stderr and "Traceback" not in oov.stderr
    usage = _cli("run", str(src), "--max-len", "notanumber")
    assert usage.returncode == 2


def test_cli_run_refuses_inputs_the_program_rejects(tmp_path):
    """The compiled model has no right output where the interpreter rejects the input
    (here a mean of different strings): `rasp run` reports the program's error."""
    src = tmp_path / "mean.rasp"
    src.write_text("m = aggregate(select(1, 1, ==), tokens);\n")
    same = _cli("run", str(src), "--input", "aa", "--vocab", "ab", "--max-len", "4", "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["output"] == ["a", "a"]
    mixed = _cli("run", str(src), "--input", "ab", "--vocab", "ab", "--max-len", "4")
    assert mixed.returncode == 1 and "cannot average" in mixed.stderr and "mean.rasp:1:5" in mixed.stderr
    assert "Traceback" not in mixed.stderr


_WEIGHT_DIGEST = """
import hashlib, sys
import compiler, rasp
prog = rasp.load(sys.argv[1])
model = compiler.compile(prog["same"], vocab="ab|", max_seq_len=11)
digest = hashlib.sha1()
for name, tensor in sorted(model.module.state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.numpy().tobytes())
print(digest.hexdigest())
"""


def test_weights_do_not_depend_on_the_hash_seed():
    """The same program compiles to the same weights in every process: an MLP's gate
    features were once ordered by a set of string values, so the weights changed with
    PYTHONHASHSEED."""
    program = Path(__file__).resolve().parents[2] / "programs" / "compare_halves.rasp"
    digests = set()
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _WEIGHT_DIGEST, str(program)], env=env,
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_numpy_vocabulary_length_and_inputs():
    import numpy as np
    sop = compile_text("selector_width(select(tokens, tokens, ==));")
    model = compiler.compile(sop, vocab=np.arange(3), max_seq_len=np.int64(4))
    assert model.max_seq_len == 4 and model(np.array([0, 2, 2])) == [1, 2, 2]
    text = compiler.compile(sop, vocab=np.array(["a", "b"]), max_seq_len=3)
    assert text(np.array(["a", "b", "a"])) == [2, 1, 2]


def test_inputs_and_vocabularies_that_are_no_sequences_are_clean_errors(reverse_model):
    with pytest.raises(rasp.RaspInputError, match="must be a string or a sequence of tokens"):
        reverse_model(5)
    with pytest.raises(compiler.CompileError, match="the vocabulary must be a string or a sequence"):
        compiler.compile(compile_text(REVERSE), vocab=None, max_seq_len=4)


def test_cli_run_reads_digits_as_an_integer_vocabulary(tmp_path):
    """`--input 01` is two characters; with an integer vocabulary they are its 0 and 1
    (`rasp eval` already accepted it through tokens_int; `rasp run` said '0' was no token)."""
    src = tmp_path / "p.rasp"
    src.write_text("# vocab: [0, 1, 2, 3]\n# max-len: 5\nx = tokens_int + 1;\n")
    run = _cli("run", str(src), "--input", "01", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["output"] == [1, 2]


def test_running_a_model_on_the_meta_device_is_a_clear_error():
    sop = rasp.parse("x = selector_width(select(tokens, tokens, ==));")["x"]
    model = compiler.compile(sop, vocab="ab", max_seq_len=3, device="meta")
    with pytest.raises(rasp.RaspInputError, match="meta device, which computes shapes but holds no values"):
        model("ab")


@pytest.mark.parametrize("source", ['aggregate(select(indices, indices, <=), indicator(tokens == "a"));',
                                    "aggregate(select(1, 1, ==), 3);",
                                    "aggregate(select(indices, indices, <=), tokens_int) + 1;"])
def test_outputs_have_the_interpreters_number_types(source, tmp_path):
    """A mean of several keys is a float even where it is whole (1.0), a single key's value
    stays an int; the value list keeps one of 1 and 1.0, so the decoder types each
    position by how many keys its query averages at that length (structural selectors)."""
    import itertools
    vocab = [1, 2] if "tokens_int" in source else ["a", "b"]
    sop = rasp.parse(source)["out"]
    model = compiler.compile(sop, vocab=vocab, max_seq_len=3)
    model.save(tmp_path / "m.safetensors")
    loaded = compiler.load(tmp_path / "m.safetensors")
    inputs = [list(t) for n in range(1, 4) for t in itertools.product(vocab, repeat=n)]
    for m in (model, loaded):
        for x, got in zip(inputs, m.run_batch(inputs)):
            want = rasp.evaluate(sop, x)
            assert got == want and [type(v) for v in got] == [type(v) for v in want], (x, got, want)
