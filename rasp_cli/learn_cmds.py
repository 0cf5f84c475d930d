"""`rasp learn` and `rasp compare`: train a transformer on a program, compare it with the compiled one."""

from __future__ import annotations

from typing import Optional

import click

from .common import handle_errors
from .main import cli


@cli.command("learn")
@click.argument("file")
@click.option("--name", help="The s-op to learn (default: the header's output, else out).")
@click.option("--vocab", "vocab_text", help="The vocabulary: a JSON list or a string of characters.")
@click.option("--max-len", "max_len", type=int, help="The longest input (inputs of every length 1..max-len).")
@click.option("--steps", type=click.IntRange(min=1), default=3000, show_default=True, help="Optimizer steps.")
@click.option("--shape", "shape_text", default=None,
              help="compiled (the compiled model's exact per-layer sizes), budget (its layer count and "
                   "widest head count, uniform, d_model --d-model) or LxHxD (L layers, H heads, d_model D; "
                   "d_head D/H, d_mlp 4D). Default: budget; compiled with --init compiled.")
@click.option("--d-model", "d_model", type=click.IntRange(min=1), default=64, show_default=True, help="d_model of the budget shape.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=float, default=None,
              help="Peak learning rate [default: 3e-3; 1e-5 with --init compiled, which keeps it exact].")
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True,
              help="sgd: momentum 0.9, no per-weight normalisation (for comparison under --init compiled).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--init", "init", type=click.Choice(["random", "compiled"]), default="random", show_default=True,
              help="compiled: start from the compiled weights (with a classification head decoding like the "
                   "compiled readout) and record how the heads drift.")
@click.option("--noise", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="With --init compiled: Gaussian noise, as a fraction of each weight tensor's RMS.")
@click.option("--eval-every", type=click.IntRange(min=1), default=250, show_default=True, help="Steps between held-out evaluations.")
@click.option("--early-stop", type=float, default=None,
              help="Stop at the first evaluation whose held-out sequence accuracy reaches this.")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True, help="Torch CPU threads (0: torch's default).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for model.safetensors, history.csv and plots.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (no progress bar).")
@handle_errors
def learn_cmd(file, name, vocab_text, max_len, steps, shape_text, d_model, batch_size, lr, weight_decay, optimizer,
              seed, device, init, noise, eval_every, early_stop, threads, out_dir, as_json):
    """Train a transformer (the compiled model's class) on a program's input/output pairs."""
    import sys

    import torch

    import compiler
    from compiler import learn
    from rasp import ir
    from rasp.errors import RaspError

    from .common import LoadedProgram, emit_json

    loaded = LoadedProgram(file, name)
    if not isinstance(loaded.node, ir.SOp):
        raise click.UsageError(f"{loaded.name!r} is a selector; only s-ops can be learned")
    if device == "cuda" and not torch.cuda.is_available():
        raise RaspError("--device cuda: no CUDA device is available")
    if init == "compiled" and shape_text not in (None, "compiled"):
        raise click.UsageError("--init compiled trains the compiled shape; leave --shape out")
    shape_text = shape_text or ("compiled" if init == "compiled" else "budget")
    vocab, n = loaded.vocab(vocab_text), loaded.max_len(max_len)
    try:
        compiled = compiler.compile(loaded.node, vocab=vocab, max_seq_len=n)
    except compiler.CompileError:
        if init == "compiled" or shape_text in ("compiled", "budget"):
            raise
        compiled = None       # an LxHxD model can still learn a program the compiler rejects
    task = learn.Task.from_program(loaded.node, vocab, n, compiled, program_path=str(loaded.path),
                                   name=loaded.name, seed=seed)
    shape = learn.shape_for(task, shape_text, compiled, d_model=d_model) if init == "random" else None
    config = learn.TrainConfig(steps=steps, batch_size=batch_size, lr=lr or (1e-5 if init == "compiled" else 3e-3),
                               weight_decay=weight_decay, seed=seed, device=device, eval_every=eval_every,
                               early_stop=early_stop, init=init, noise=noise, threads=threads or None,
                               optimizer=optimizer)
    model = learn.train(task, shape, config, compiled=compiled, progress=not as_json and sys.stderr.isatty())
    model.meta["shape_spec"] = shape_text
    paths = learn.write_training_files(model, out_dir)
    s = model.module.shape
    fields = {
        "program": str(loaded.path), "name": loaded.name, "init": init, "shape": shape_text,
        "layers": s.n_layers, "heads": list(s.n_heads), "d_model": s.d_model, "d_mlp": list(s.d_mlp),
        "classes": s.d_out, "params": model.module.num_params(),
        "steps": model.meta["steps_run"], "seconds": model.meta["train_seconds"],
        "token_acc": model.final["token_acc"], "seq_acc": model.final["seq_acc"],
        "eval_inputs": model.final["eval_inputs"], "exhaustive": model.final["exhaustive"],
        "steps_to_99": model.meta["steps_to_99"], "seconds_to_99": model.meta["seconds_to_99"],
        "initial_seq_acc": model.history[0]["test_seq_acc"],
        "files": [str(p) for p in paths],
    }
    if init == "compiled":
        fields["exact_readout_init"] = model.meta["exact_readout_init"]
        fields["final_mean_head_similarity"] = model.history[-1]["mean_head_similarity"]
        fields["final_weight_drift"] = model.history[-1]["weight_drift"]
    if as_json:
        emit_json(fields)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.path.name}: learned {loaded.name}", show_header=False)
    table.add_column("")
    table.add_column("")
    for key, value in fields.items():
        if key != "files":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console = Console()
    console.print(table)
    console.print(f"saved to {out_dir}/ ({', '.join(p.name for p in paths)})")


@cli.command("compare")
@click.argument("compiled_path", metavar="COMPILED")
@click.argument("learned_path", metavar="LEARNED")
@click.option("--program", "program_file",
              help="The program (default: the one LEARNED was trained on). Its s-ops are probed.")
@click.option("--name", help="The program's output s-op (default: the one LEARNED was trained on).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the tables (CSV, report.md) and plots (PNG).")
@click.option("--inputs", "n_inputs", type=click.IntRange(min=1), default=512, show_default=True,
              help="Random inputs for attention patterns and interchange pairs.")
@click.option("--probe-inputs", type=click.IntRange(min=1), default=600, show_default=True,
              help="Random inputs to fit the probes on (two thirds as many more to score them).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also score an untrained model of LEARNED's shape (the null reference).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@handle_errors
def compare_cmd(compiled_path, learned_path, program_file, name, out_dir, n_inputs, probe_inputs, seed, baseline,
                as_json):
    """Compare a learned model (LEARNED: `rasp learn` output) with a compiled one (COMPILED: `rasp compile -o`).

    Attention similarity of every head pair with a one-to-one matching, linear probes for
    every s-op of the program at every layer, and interchange interventions on the matched heads.
    """
    from compiler import circuits, learn
    from compiler.runtime import load
    from rasp.errors import RaspError

    from .common import LoadedProgram, emit_json

    if learn.read_metadata(compiled_path).get("kind") != "compiled":
        raise RaspError(f"{compiled_path} is not a compiled model (save one with `rasp compile FILE -o PATH`)")
    compiled = load(learn.checkpoint_path(compiled_path))
    other = learn.load_any(learned_path)
    meta = getattr(other, "meta", {}).get("program", {})
    program_file = program_file or meta.get("path")
    if program_file is None:
        raise click.UsageError("give --program FILE (LEARNED does not say which program it learned)")
    loaded = LoadedProgram(program_file, name or meta.get("name"))
    _check_same_program(loaded, compiled_path, compiled.program_fingerprint(),
                        learned_path, meta.get("fingerprint"))
    times = circuits.compiled_probe_times(loaded.node, compiled.vocab, compiled.max_seq_len)
    base = None
    if baseline:
        base = learn.random_model(other.module.shape, compiled.vocab, compiled.max_seq_len,
                                  getattr(other, "values", compiled.output.values), seed=seed + 1)
    report = circuits.compare(compiled, other, loaded.node, loaded.program, n_inputs=n_inputs,
                              n_probe_train=probe_inputs, n_probe_test=max(1, 2 * probe_inputs // 3), seed=seed,
                              compiled_times=times, baseline=base)
    paths = report.write(out_dir)
    if as_json:
        emit_json({**{k: v for k, v in report.summary.items()}, "files": [str(p) for p in paths]})
        return
    report.print()
    click.echo(f"wrote {len(paths)} files to {out_dir}/")


def _check_same_program(loaded, compiled_path: str, compiled_fp: Optional[str], learned_path: str,
                        learned_fp: Optional[str]) -> None:
    """Refuse to compare models of different programs (the probes and interventions would
    measure nonsense). Files saved before fingerprints existed are not checked."""
    from compiler.graph import fingerprint
    from rasp.errors import RaspError
    want = fingerprint(loaded.node)
    for path, got, what in ((compiled_path, compiled_fp, "compiled from"), (learned_path, learned_fp, "trained on")):
        if got is not None and got != want:
            raise RaspError(f"{path} was {what} a different program than `{loaded.name}` in {loaded.path} "
                            f"(program fingerprints {got} and {want}); give the matching --program/--name")
