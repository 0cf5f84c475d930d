"""Compiled initialisation: does training from the compiled weights stay exact, and how do the heads drift?

For each program: compile it, copy every weight into a trainable model of the same
shape whose classification head decodes exactly like the compiled readout
(compiler.learn.from_compiled), optionally add Gaussian noise (a fraction of each weight
tensor's RMS), and train on interpreter-labelled random inputs. Every --eval-every steps
we record the held-out sequence accuracy and each head's attention similarity to the
same head of the compiled model (1 - mean total-variation distance of the attention
rows; see compiler/circuits.py).

    python experiments/compiled_init.py                # the table in RESULTS.md
    python experiments/compiled_init.py hist --steps 300

Writes experiments/results/compiled_init.{md,json} and compiled_init_<program>.png.
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
from compiler import learn  # noqa: E402
from rasp_cli.common import LoadedProgram  # noqa: E402

# (optimizer, lr, noise)
SETTINGS = [("adamw", 1e-6, 0.0), ("adamw", 1e-5, 0.0), ("adamw", 1e-4, 0.0), ("adamw", 1e-3, 0.0),
            ("sgd", 1e-4, 0.0), ("adamw", 1e-4, 0.001), ("adamw", 1e-4, 0.01), ("adamw", 1e-4, 0.1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="*", default=["hist", "reverse", "sort_unique"])
    ap.add_argument("--max-len", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    start = time.perf_counter()
    for name in args.programs:
        loaded = LoadedProgram(str(ROOT / "programs" / f"{name}.rasp"), None)
        vocab = loaded.vocab(None)
        compiled = compiler.compile(loaded.node, vocab=vocab, max_seq_len=args.max_len)
        task = learn.Task.from_program(loaded.node, vocab, args.max_len, compiled, program_path=str(loaded.path),
                                       name=loaded.name, seed=args.seed)
        for opt, lr, noise in SETTINGS:
            config = learn.TrainConfig(steps=args.steps, eval_every=args.eval_every, lr=lr, init="compiled",
                                       noise=noise, optimizer=opt, weight_decay=0.0 if opt == "sgd" else 0.01,
                                       seed=args.seed, warmup=0)
            t0 = time.perf_counter()
            model = learn.train(task, None, config, compiled=compiled)
            h = model.history
            row = {"program": name, "readout": compiled.output.mode, "optimizer": opt, "lr": lr, "noise": noise,
                   "initial_seq_acc": h[0]["test_seq_acc"],
                   "min_seq_acc": min(r["test_seq_acc"] for r in h),
                   "final_seq_acc": h[-1]["test_seq_acc"],
                   "exact_throughout": all(r["test_seq_acc"] == 1.0 for r in h),
                   "first_drop_step": next((r["step"] for r in h if r["test_seq_acc"] < 1.0), None),
                   "initial_head_similarity": h[0]["mean_head_similarity"],
                   "min_head_similarity": min(r["mean_head_similarity"] for r in h),
                   "final_head_similarity": h[-1]["mean_head_similarity"],
                   "final_per_head": h[-1]["head_similarity"],
                   "final_weight_drift": h[-1]["weight_drift"],
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            curves[(name, opt, lr, noise)] = [(r["step"], r["mean_head_similarity"], r["test_seq_acc"]) for r in h]
            print(f"{name:>12} {opt:5} lr {lr:g} noise {noise:g}: seq {row['initial_seq_acc']:.3f} -> min "
                  f"{row['min_seq_acc']:.3f} -> {row['final_seq_acc']:.3f}; heads {row['final_head_similarity']:.3f} "
                  f"(min {row['min_head_similarity']:.3f}); drift {row['final_weight_drift']:.2e}  {row['seconds']} s",
                  flush=True)
        _plot(name, curves, out)
    cols = ["program", "readout", "optimizer", "lr", "noise", "initial_seq_acc", "min_seq_acc", "final_seq_acc",
            "first_drop_step", "initial_head_similarity", "min_head_similarity", "final_head_similarity",
            "final_weight_drift"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float) and c in ("lr", "noise", "final_weight_drift"):
                cells.append(f"{v:.0e}" if v else "0")
            elif isinstance(v, float):
                cells.append(f"{v:.3f}")
            else:
                cells.append("-" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    total = round(time.perf_counter() - start, 1)
    table = "\n".join(lines)
    (out / "compiled_init.md").write_text(f"<!-- python experiments/compiled_init.py --steps {args.steps} "
                                          f"--max-len {args.max_len}; {total} s -->\n{table}\n")
    (out / "compiled_init.json").write_text(json.dumps({"args": vars(args), "seconds": total, "rows": rows}, indent=2))
    print()
    print(table)
    print(f"\n{total} s in all")


def _plot(name: str, curves: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for (prog, opt, lr, noise), pts in curves.items():
        if prog != name:
            continue
        label = f"{opt} lr {lr:g}" + (f" noise {noise:g}" if noise else "")
        steps = [p[0] for p in pts]
        axes[0].plot(steps, [p[1] for p in pts], label=label)
        axes[1].plot(steps, [p[2] for p in pts], label=label)
    axes[0].set_title(f"{name}: mean head similarity to the compiled heads")
    axes[1].set_title(f"{name}: held-out sequence accuracy")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / f"compiled_init_{name}.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
