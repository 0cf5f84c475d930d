"""`rasp learn` and `rasp compare` end to end (tiny runs)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rasp_cli.main import cli
from rasp_cli import commands, learn_cmds  # noqa: F401  (register the commands, as main() does)


def test_learn_then_compare(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(cli, ["learn", "hist", "--vocab", "abc", "--max-len", "4", "--steps", "60", "--shape", "1x1x16",
                            "--eval-every", "30", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    fields = json.loads(r.output)
    assert fields["steps"] == 60 and fields["layers"] == 1 and 0 <= fields["seq_acc"] <= 1
    assert (out / "model.safetensors").is_file() and (out / "training.png").is_file()
    compiled = tmp_path / "hist.safetensors"
    r = runner.invoke(cli, ["compile", "hist", "--vocab", "abc", "--max-len", "4", "-o", str(compiled), "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["compare", str(compiled), str(out), "-o", str(tmp_path / "cmp"), "--inputs", "64",
                            "--probe-inputs", "60", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["compiled_heads"] == 1 and "mean_iia" in summary
    assert (tmp_path / "cmp" / "report.md").is_file() and (tmp_path / "cmp" / "probes.png").is_file()
    # a compiled model of another program, or another --program, is refused by fingerprint
    other = tmp_path / "reverse.safetensors"
    r = runner.invoke(cli, ["compile", "reverse", "--vocab", "abc", "--max-len", "4", "-o", str(other)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["compare", str(other), str(out), "-o", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "different program" in r.output and str(other) in r.output
    r = runner.invoke(cli, ["compare", str(other), str(out), "--program", "reverse", "--name", "reverse",
                            "-o", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "different program" in r.output and str(out) in r.output


def test_compiled_init_and_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["learn", "hist", "--vocab", "abc", "--max-len", "3", "--steps", "10", "--init", "compiled",
                            "--lr", "1e-6", "--eval-every", "5", "-o", str(tmp_path / "ci"), "--json"])
    assert r.exit_code == 0, r.output
    fields = json.loads(r.output)
    assert fields["initial_seq_acc"] == 1.0 and fields["exact_readout_init"] is True
    assert (tmp_path / "ci" / "drift.png").is_file()
    r = runner.invoke(cli, ["learn", "hist", "--max-len", "3", "--shape", "2x2", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "LxHxD" in r.output
    r = runner.invoke(cli, ["learn", "hist", "--max-len", "3", "--init", "compiled", "--shape", "1x1x8",
                            "-o", str(tmp_path / "y")])
    assert r.exit_code != 0
    r = runner.invoke(cli, ["compare", str(tmp_path / "ci"), str(tmp_path / "ci"), "-o", str(tmp_path / "z")])
    assert r.exit_code == 1 and "not a compiled model" in r.output
