"""Layer budget: can a trained transformer do with the layers our compiler uses, or with one fewer?

In the spirit of the RASP paper's experiment (Weiss et al. 2021, section 5): for each
program, compile it, then train a transformer of the same class (compiler.model.Transformer)
with the compiled model's layer count L and its widest layer's head count H (uniform
layers, d_model 64, d_head 64/H, d_mlp 256), and again with L - 1 layers. Data: random
inputs of every length 1..max_len, labelled by the reference interpreter; accuracy is
measured on held-out inputs (all inputs where there are at most --eval-size of them).

    python experiments/layer_budget.py                       # the table in RESULTS.md
    python experiments/layer_budget.py --steps 500 hist      # quick look at one program

Writes experiments/results/layer_budget.{md,csv,json}.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler import learn  # noqa: E402
from rasp_cli.common import LoadedProgram  # noqa: E402

PROGRAMS = {"hist": 8, "reverse": 8, "sort": 8, "most_freq": 8, "dyck1": 10}


def run(name: str, max_len: int, steps: int, seed: int, d_model: int, eval_size: int, batch_size: int,
        log) -> list[dict]:
    loaded = LoadedProgram(str(ROOT / "programs" / f"{name}.rasp"), None)
    vocab = loaded.vocab(None)
    compiled = compiler.compile(loaded.node, vocab=vocab, max_seq_len=max_len)
    task = learn.Task.from_program(loaded.node, vocab, max_len, compiled, program_path=str(loaded.path),
                                   name=loaded.name, seed=seed)
    L = compiled.num_layers
    H = max(1, compiled.num_heads)
    rows = []
    for layers, label in ((L, "compiled budget"), (L - 1, "one layer fewer")):
        if layers < 0:
            continue
        shape = learn.shape_for(task, f"{layers}x{H}x{d_model}")
        config = learn.TrainConfig(steps=steps, seed=seed, eval_size=eval_size, batch_size=batch_size,
                                   eval_every=max(50, steps // 16))
        t0 = time.perf_counter()
        model = learn.train(task, shape, config)
        row = {
            "program": name, "vocab": len(task.vocab), "max_len": max_len, "budget": label,
            "compiled_heads": "/".join(str(h) for h in compiled.heads_per_layer),
            "layers": layers, "heads": H, "d_model": d_model, "params": model.module.num_params(),
            "steps": model.meta["steps_run"], "seconds": round(time.perf_counter() - t0, 1),
            "token_acc": model.final["token_acc"], "seq_acc": model.final["seq_acc"],
            "best_seq_acc": max(r["test_seq_acc"] for r in model.history),
            "steps_to_99": model.meta["steps_to_99"], "eval_inputs": model.final["eval_inputs"],
            "exhaustive": model.final["exhaustive"], "seed": seed,
        }
        log(row)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    cols = ["program", "vocab", "max_len", "compiled_heads", "budget", "layers", "heads", "params", "steps",
            "seconds", "token_acc", "seq_acc", "best_seq_acc", "steps_to_99", "eval_inputs"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c == "eval_inputs" and r["exhaustive"]:
                v = f"{v} (all)"
            cells.append(f"{100 * v:.2f} %" if c.endswith("acc") else ("-" if v is None else str(v)))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="*", default=list(PROGRAMS), help="program names (default: all five)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--eval-size", type=int, default=2048)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    rows: list[dict] = []
    start = time.perf_counter()

    def log(row: dict) -> None:
        print(f"{row['program']:>10} {row['budget']:<16} {row['layers']}x{row['heads']}x{row['d_model']}  "
              f"seq {100 * row['seq_acc']:6.2f} %  token {100 * row['token_acc']:6.2f} %  "
              f"steps {row['steps']}  {row['seconds']} s", flush=True)

    for name in args.programs:
        rows += run(name, PROGRAMS.get(name, 8), args.steps, args.seed, args.d_model, args.eval_size,
                    args.batch_size, log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows)
    total = round(time.perf_counter() - start, 1)
    (out / "layer_budget.md").write_text(
        f"<!-- python experiments/layer_budget.py --steps {args.steps} --seed {args.seed} "
        f"--d-model {args.d_model}; {total} s -->\n" + table + "\n")
    with (out / "layer_budget.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "layer_budget.json").write_text(json.dumps({"args": vars(args), "seconds": total, "rows": rows}, indent=2))
    print()
    print(table)
    print(f"\n{total} s in all; written to {out}/layer_budget.{{md,csv,json}}")


if __name__ == "__main__":
    main()
