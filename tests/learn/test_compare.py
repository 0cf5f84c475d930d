"""Comparison sanity: compiled vs itself scores 1, compiled vs untrained scores low, probes read linear s-ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import compiler
import rasp
from compiler import circuits, learn

from .conftest import PROGRAMS


@pytest.fixture(scope="module")
def reverse_setup():
    prog = rasp.load(PROGRAMS / "reverse.rasp")
    c = compiler.compile(prog["reverse"], "abcd", 5)
    return prog, c


def test_compiled_vs_itself(reverse_setup):
    prog, c = reverse_setup
    report = circuits.compare(c, c, prog["reverse"], prog, n_inputs=128, n_probe_train=60, n_probe_test=40,
                              probe_compiled=False)
    assert report.similarity.shape == (2, 2)
    assert np.allclose(np.diag(report.similarity), 1.0)
    assert sorted(report.matches) == [(0, 0), (1, 1)]
    assert all(r.iia == 1.0 for r in report.interchange)
    # the flip head's patch changes the output, so the IIA is not trivial
    assert max(r.changed for r in report.interchange) > 0.5
    assert report.summary["output_agreement_sequence"] == 1.0


def test_compiled_vs_untrained_is_low(reverse_setup):
    prog, c = reverse_setup
    task = learn.Task.from_program(prog["reverse"], c.vocab, 5, c)
    rand = learn.random_model(learn.shape_for(task, "2x1x32"), c.vocab, 5, task.values.values, seed=0)
    report = circuits.compare(c, rand, n_inputs=128)
    assert report.summary["mean_matched_similarity"] < 0.6
    assert report.summary["mean_iia"] < 0.5
    assert report.summary["output_agreement_sequence"] < 0.2


def test_pattern_similarity_is_one_minus_tv():
    mask = torch.tensor([[True, True, True]])
    p = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]], dtype=torch.float64)
    q = torch.tensor([[[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1.0]]], dtype=torch.float64)
    # query rows 1 and 2 count (row 0 is BOS): TV 0.5 and 0
    assert circuits.pattern_similarity(p, q, mask) == pytest.approx(0.75)
    assert circuits.match_heads(np.array([[0.1, 0.9], [0.8, 0.7]])) == [(0, 1), (1, 0)]


def test_learned_hist_report(hist_learned, hist_compiled, hist_program, tmp_path):
    times = circuits.compiled_probe_times(hist_program["hist"], hist_compiled.vocab, hist_compiled.max_seq_len)
    report = circuits.compare(hist_compiled, hist_learned, hist_program["hist"], hist_program, n_inputs=128,
                              n_probe_train=150, n_probe_test=100, compiled_times=times)
    probes = {p.node: p for p in report.probes}
    assert set(probes) == {"tokens", "hist"}
    # tokens are linear in the embedding of both models
    assert probes["tokens"].learned["embed"] >= 0.98 and probes["tokens"].compiled["embed"] >= 0.98
    assert probes["tokens"].compiled_layer == "embed" and probes["hist"].compiled_layer == "L0"
    # hist is only there after the block, in both models
    assert probes["hist"].compiled["L0"] >= 0.98 and probes["hist"].learned["L0"] >= 0.9
    assert probes["hist"].learned["embed"] < 0.8
    assert report.summary["output_agreement_token"] >= 0.95
    assert len(report.interchange) == 1 and report.interchange[0].positions > 0
    files = report.write(tmp_path / "cmp")
    names = {p.name for p in files}
    assert {"head_matching.csv", "head_similarity.csv", "probes.csv", "interchange.csv", "report.md",
            "head_similarity.png", "probes.png", "interchange.png", "summary.json"} <= names
    assert "| L0.H0 | L0.H0 |" in (tmp_path / "cmp" / "report.md").read_text()


def test_indices_probe_on_embedding(reverse_setup):
    prog, c = reverse_setup
    task = learn.Task.from_program(prog["reverse"], c.vocab, 5, c)
    rand = learn.random_model(learn.shape_for(task, "1x1x32"), c.vocab, 5, task.values.values, seed=0)
    rows = circuits.linear_probes(rand, None, [prog["indices"] if "indices" in prog else rasp.ir.Indices()],
                                  n_train=100, n_test=60)
    assert rows[0].learned["embed"] >= 0.98      # positions are one-hot-ish in a random W_pos


def test_mismatched_vocab_is_refused(reverse_setup, hist_compiled):
    _, c = reverse_setup
    with pytest.raises(rasp.RaspInputError):
        circuits.compare(c, hist_compiled)
