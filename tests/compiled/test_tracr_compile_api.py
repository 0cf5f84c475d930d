"""Tracr's compile entry point on our compiler (`compiler.tracr_compat`), and causal
programs (`rasp.tracr.causal`), with programs built by `rasp.tracr` (no tracr-pypi
needed; tests/compiled/test_tracr_pypi.py runs Tracr's own causal test cases)."""

from __future__ import annotations

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
