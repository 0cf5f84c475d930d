"""Learned vs compiled on the small programs: steps to 99 %, then heads, probes and interchange interventions.

For hist, reverse and sort_unique at max length 8 (header vocabularies):
  1. train the "budget" shape (the compiled model's layer count and widest head count,
     uniform, d_model 64) and record the steps and seconds to 99 % held-out sequence
     accuracy (evaluated every --eval-every steps on 2000 held-out inputs);
  2. train the exact compiled shape (same per-layer heads, head sizes, MLP widths, d_model);
  3. compare the budget model with the compiled one (compiler.circuits.compare, with an
     untrained model of the same shape as the null reference).

    python experiments/small_programs.py             # the tables in RESULTS.md
    python experiments/small_programs.py hist --steps 1000

Checkpoints and full comparison folders (CSV, markdown, PNG) go to out/learn/ (not
tracked); the summary tables to experiments/results/small_programs.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler import circuits, learn  # noqa: E402
from rasp_cli.common import LoadedProgram  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="*", default=["hist", "reverse", "sort_unique"])
    ap.add_argument("--max-len", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=str(ROOT / "out" / "learn"))
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    training, reports = [], {}
    for name in args.programs:
        loaded = LoadedProgram(str(ROOT / "programs" / f"{name}.rasp"), None)
        vocab = loaded.vocab(None)
        compiled = compiler.compile(loaded.node, vocab=vocab, max_seq_len=args.max_len)
        runs.mkdir(parents=True, exist_ok=True)
        compiled.save(runs / f"{name}.compiled.safetensors")
        task = learn.Task.from_program(loaded.node, vocab, args.max_len, compiled, program_path=str(loaded.path),
                                       name=loaded.name, seed=args.seed)
        models = {}
        for spec in ("budget", "compiled"):
            shape = learn.shape_for(task, spec, compiled)
            config = learn.TrainConfig(steps=args.steps, eval_every=args.eval_every, seed=args.seed)
            model = learn.train(task, shape, config)
            model.meta["shape_spec"] = spec
            learn.write_training_files(model, runs / f"{name}.{spec}")
            models[spec] = model
            row = {"program": name, "shape": spec, "layers": shape.n_layers,
                   "heads": "/".join(map(str, shape.n_heads)), "d_model": shape.d_model,
                   "params": model.module.num_params(), "steps_to_99": model.meta["steps_to_99"],
                   "seconds_to_99": model.meta["seconds_to_99"], "steps": model.meta["steps_run"],
                   "seconds": model.meta["train_seconds"], "token_acc": model.final["token_acc"],
                   "seq_acc": model.final["seq_acc"]}
            training.append(row)
            print(f"{name:>12} {spec:8} 99 % after {row['steps_to_99']} steps ({row['seconds_to_99']} s); "
                  f"final seq {row['seq_acc']:.4f} token {row['token_acc']:.4f} ({row['seconds']} s)", flush=True)
        times = circuits.compiled_probe_times(loaded.node, compiled.vocab, compiled.max_seq_len)
        learned = models["budget"]
        base = learn.random_model(learned.module.shape, compiled.vocab, args.max_len, learned.values,
                                  seed=args.seed + 1)
        report = circuits.compare(compiled, learned, loaded.node, loaded.program, compiled_times=times,
                                  baseline=base, seed=args.seed)
        report.write(runs / f"{name}.compare")
        reports[name] = report
        print(f"{name:>12} compare: " + ", ".join(f"{k} {v:.3f}" for k, v in report.summary.items()
                                                 if isinstance(v, float)), flush=True)
    total = round(time.perf_counter() - start, 1)
    md = [f"<!-- python experiments/small_programs.py --steps {args.steps} --max-len {args.max_len} "
          f"--seed {args.seed}; {total} s -->", "", "### Training", "",
          _md_table(training, ["program", "shape", "layers", "heads", "d_model", "params", "steps_to_99",
                               "seconds_to_99", "steps", "seconds", "token_acc", "seq_acc"])]
    for name, report in reports.items():
        md += ["", f"### {name}: budget model vs compiled", ""]
        md += [", ".join(f"{k} {_fmt(v)}" for k, v in report.summary.items() if not isinstance(v, (dict, list))), ""]
        for key, (title, rows) in report.tables().items():
            if key == "head_similarity" and len(rows) <= 2:
                continue
            md += [f"*{title}*", "", circuits._markdown(rows), ""]
    (out / "small_programs.md").write_text("\n".join(md) + "\n")
    (out / "small_programs.json").write_text(json.dumps(
        {"args": vars(args), "seconds": total, "training": training,
         "compare": {k: r.summary for k, r in reports.items()}}, indent=2, default=str))
    print("\n".join(md))
    print(f"\n{total} s in all")


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _md_table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("-" if r[c] is None else _fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
