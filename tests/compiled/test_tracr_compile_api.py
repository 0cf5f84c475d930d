"""Tracr's compile entry point on our compiler (`compiler.tracr_compat`), and causal
programs (`rasp.tracr.causal`), with programs built by `rasp.tracr` (no tracr-pypi
needed; tests/compiled/test_tracr_pypi.py runs Tracr's own causal test cases)."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
import rasp
from compiler import tracr_compat as compiling
from rasp import tracr as tr

from .helpers import all_inputs


def make_length() -> tr.SOp:
    return tr.SelectorWidth(tr.Select(tr.tokens, tr.tokens, tr.Comparison.TRUE)).named("length")


def make_reverse() -> tr.SOp:
    opp = (make_length() - tr.indices - 1).named("opp")
    return tr.Aggregate(tr.Select(tr.indices, opp, tr.Comparison.EQ), tr.tokens).named("reverse")


def running_max_of_earlier() -> tr.SOp:
    """Per position, how many keys hold a smaller token (a width over `<`), then a mean."""
    smaller = tr.SelectorWidth(tr.Select(tr.tokens, tr.tokens, tr.Comparison.LT)).named("smaller")
    return tr.numerical(tr.Aggregate(tr.Select(tr.indices, tr.indices, tr.Comparison.GEQ),
                                     tr.numerical(tr.Map(lambda x: x, smaller)), default=0))


def position_times_length() -> tr.SOp:
    """`length` itself (Tracr cannot compile it): under causal, the length so far."""
    return tr.SequenceMap(lambda i, n: i * n, tr.indices, tr.length)


def mean_of_the_others() -> tr.SOp:
    """A `SelectorNot`: masking its Select alone would let `not` select every later key."""
    others = tr.SelectorNot(tr.Select(tr.indices, tr.indices, tr.Comparison.EQ))
    is_a = tr.numerical(tr.Map(lambda x: 1 if x == "a" else 0, tr.tokens))
    return tr.numerical(tr.Aggregate(others, is_a, default=0))


def test_apply_decodes_like_tracr_with_the_bos_token_first() -> None:
    model = compiling.compile_rasp_to_model(make_reverse(), vocab={"a", "b", "c"}, max_seq_len=5,
                                            compiler_bos="BOS")
    assert model.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]
    assert model.apply(["BOS"]).decoded == ["BOS"]
    # trailing padding holds no value; the sizes are the compiled model's
    assert model.apply(["BOS", "a", "b", "compiler_pad", "compiler_pad"]).decoded == ["BOS", "b", "a", None, None]
    assert model.num_layers == model.model.num_layers >= 1
    assert isinstance(model.model, compiler.CompiledModel)


def test_tracr_input_rules_are_kept() -> None:
    with pytest.raises(ValueError, match="BOS token must not be present in the vocab"):
        compiling.compile_rasp_to_model(make_reverse(), vocab={"a", "BOS"}, max_seq_len=3, compiler_bos="BOS")
    with pytest.raises(ValueError, match="PAD token must not be present"):
        compiling.compile_rasp_to_model(make_reverse(), vocab={"a", "compiler_pad"}, max_seq_len=3)
    model = compiling.compile_rasp_to_model(make_reverse(), vocab={"a", "b"}, max_seq_len=3)
    with pytest.raises(ValueError, match="first input token must be the BOS token 'compiler_bos'"):
        model.apply(["a", "b"])
    with pytest.raises(ValueError, match="may only follow the input"):
        model.apply(["compiler_bos", "compiler_pad", "a"])
    with pytest.raises(rasp.RaspError, match="not in the vocabulary"):
        model.apply(["compiler_bos", "z"])


@pytest.mark.parametrize("build", [make_length, make_reverse, running_max_of_earlier, position_times_length,
                                   mean_of_the_others])
def test_causal_program_sees_only_earlier_keys(build) -> None:
    """The causal copy computes, on every input, what the program computes on each prefix
    at that prefix's last position (a causal model's defining property), and the model
    compiled with causal=True agrees with it on every input."""
    program = build()
    causal = tr.causal(program)
    vocab = ["a", "b", "c"]
    inputs = all_inputs(vocab, 4)
    model = compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=4, causal=True)
    for x in inputs:
        prefix_values = [tr.evaluate(program, x[:i + 1])[i] for i in range(len(x))]
        assert compiler.same_output(tr.evaluate(causal, x), prefix_values)
    outputs = [model.apply(["compiler_bos", *x]).decoded[1:] for x in inputs]
    wrong = [(x, got) for x, got in zip(inputs, outputs) if not compiler.same_output(got, tr.evaluate(causal, x))]
    assert not wrong, wrong[:3]


def test_causal_keeps_the_original_program_and_its_sharing() -> None:
    program = make_reverse()
    causal = tr.causal(program)
    assert tr.evaluate(program, ["a", "b", "c"]) == ["c", "b", "a"]        # (not modified in place)
    assert tr.evaluate(causal, ["a", "b", "c"]) == ["a", "a", "a"]          # (length is i + 1 there)
    masks = {id(n.children[1]) for n in rasp.ir.topological_order([causal]) if isinstance(n, tr.SelectorAnd)}
    assert len(masks) == 1                  # one shared `keys <= query` select


def test_causal_refuses_a_text_language_program_clearly() -> None:
    program = rasp.parse("earlier = aggregate(select(indices, indices, <), tokens, 0);")["earlier"]
    with pytest.raises(compiler.CompileError, match="causal=True takes a program built with the Tracr API"):
        compiling.compile_rasp_to_model(program, vocab={"a"}, max_seq_len=3, causal=True)


def test_the_rest_of_tracrs_model_surface() -> None:
    """A harness written for Tracr also reads the config, residual labels, params, encoders
    and the activations of `apply`; each is this model's own."""
    model = compiling.compile_rasp_to_model(make_reverse(), vocab={"a", "b", "c"}, max_seq_len=5,
                                            compiler_bos="BOS")
    cfg = model.model_config
    assert (cfg.num_layers, cfg.num_heads, cfg.mlp_hidden_size) == (model.num_layers, model.num_heads, model.d_mlp)
    assert not cfg.layer_norm and not cfg.causal and cfg.key_size >= 1
    assert len(model.residual_labels) == model.d_model
    assert sum(a.size for group in model.params.values() for a in group.values()) == model.num_params
    enc = model.input_encoder
    assert enc.encode(["BOS", "c", "a"]) == [enc.bos_encoding, enc.encoding_map["c"], enc.encoding_map["a"]]
    assert enc.decode(enc.encode(["BOS", "b"])) == ["BOS", "b"] and enc.pad_token == "compiler_pad"
    with pytest.raises(ValueError, match="BOS"):
        enc.encode(["a"])
    with pytest.raises(ValueError, match="longer than"):
        enc.encode(["BOS"] + ["a"] * 6)

    out = model.apply(["BOS", "a", "b", "c", "compiler_pad"])
    assert out.decoded == ["BOS", "c", "b", "a", None]
    dec = model.output_encoder
    assert out.unembedded.tolist() == [[-1, dec.encoding_map["c"], dec.encoding_map["b"], dec.encoding_map["a"], -1]]
    T, D = 5, model.d_model
    assert len(out.residuals) == len(out.layer_outputs) == 2 * model.num_layers
    assert all(r.shape == (1, T, D) for r in out.residuals) and out.transformer_output.shape == (1, T, D)
    assert np.allclose(out.input_embeddings + sum(out.layer_outputs), out.transformer_output, atol=1e-5)
    assert np.all(out.transformer_output[0, -1] == 0)          # the padding position
    assert [a.shape for a in out.attn_logits] == [(1, h, T, T) for h in model.heads_per_layer]
    # the same activations as the inspection API's, for the unpadded input
    from compiler.inspect import residuals
    ours, _ = residuals(model.model, [["a", "b", "c"]])
    assert np.allclose(out.residuals[-1][0, :4], ours[2 * model.num_layers][0], atol=1e-6)


def test_a_numerical_output_has_tracrs_identity_encoder() -> None:
    frac = tr.numerical(tr.Aggregate(tr.Select(tr.indices, tr.indices, tr.Comparison.LEQ),
                                     tr.numerical(tr.Map(lambda x: 1 if x == "a" else 0, tr.tokens)), default=0))
    model = compiling.compile_rasp_to_model(frac, vocab={"a", "b"}, max_seq_len=4, compiler_bos="BOS", causal=True)
    assert model.output_encoder.encoding_map is None and model.model_config.causal
    out = model.apply(["BOS", "a", "b", "a"])
    assert out.decoded[1:] == pytest.approx([1.0, 0.5, 2 / 3])
    assert out.unembedded[0, 1:] == pytest.approx([1.0, 0.5, 2 / 3]) and np.isnan(out.unembedded[0, 0])
