"""Validation accuracy against training steps, read from run directories' logs: the learning curve
of a run that continues across work sessions, beside its paper's test figure.

    python benchmarks/learning_curves.py benchmarks/runs/maml-omniglot-5w1s-paper \
        benchmarks/runs/maml-omniglot-5w1s-paper-lslr --paper 98.7 \
        --plot docs/maml-omniglot-5w1s-paper-curve.png --record benchmarks/results.jsonl

Each validation point becomes one row (metric `val_accuracy`) the first time it is seen; points
already recorded for a run are not recorded again, so rerunning it after a run continues adds
only the new ones. The x axis is steps, not time: a run resumed across sessions ran on one or
two shared threads, so its clock says little.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from report import rows

from kshot.cli.common import append_row
from kshot.engine.run_state import read_log


def curve(run: Path) -> tuple[dict, list[dict]]:
    """(the run's settings, its validation rows in step order)."""
    meta = json.loads((run / "last.json").read_text())
    return meta, [r for r in read_log(run / "log.jsonl") if "val_accuracy" in r]


def recorded_points(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    return {(r["run"], r["train_episodes"]) for r in rows(path) if r.get("metric") == "val_accuracy" and "run" in r}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (each with log.jsonl and last.json)")
    p.add_argument("--paper", type=float, help="the paper's test accuracy, drawn as a line")
    p.add_argument("--plot", help="PNG to draw")
    p.add_argument("--record", metavar="JSONL")
    args = p.parse_args()
    curves = {}
    new_rows = []
    seen = recorded_points(Path(args.record)) if args.record else set()
    for run in map(Path, args.runs):
        meta, points = curve(run)
        c = meta["config"]
        curves[run.name] = (c, points)
        print(f"{run.name}: " + ", ".join(f"{r['episode']}: {r['val_accuracy']:.1f}" for r in points))
        for r in points:
            if (str(run), r["episode"]) in seen:
                continue
            new_rows.append(
                {
                    "method": meta["method"],
                    "run": str(run),
                    "dataset": c["dataset"],
                    "protocol": c["protocol"],
                    "split": c["val_split"],
                    "metric": "val_accuracy",
                    "way": c["val_way"],
                    "shot": c["val_shot"] or c["shot"],
                    "query": c["val_query"],
                    "episodes": c["val_episodes"],
                    "accuracy": round(r["val_accuracy"], 3),
                    "ci95": round(r["val_ci95"], 3),
                    "train_episodes": r["episode"],
                    "train_seconds": r.get("train_seconds"),
                    "checkpoint": str(run / "last.safetensors"),
                }
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        for name, (_, points) in curves.items():
            steps = [r["episode"] for r in points]
            ax.errorbar(
                steps,
                [r["val_accuracy"] for r in points],
                yerr=[r["val_ci95"] for r in points],
                marker="o",
                markersize=3,
                capsize=2,
                label=name,
            )
        if args.paper is not None:
            ax.axhline(args.paper, color="grey", linestyle="--", label=f"paper (test): {args.paper}")
        c = next(iter(curves.values()))[0]
        shape = f"{c['val_way']}-way {c['val_shot'] or c['shot']}-shot, {c['val_episodes']} episodes"
        ax.set_xlabel("training steps (one episode, or one meta-batch of them, each)")
        ax.set_ylabel(f"validation accuracy, {shape} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot)
    if args.record:
        for row in new_rows:
            append_row(args.record, row, ["benchmarks/learning_curves.py", *sys.argv[1:]], "python")
    print(f"{len(new_rows)} new validation points" + (f" recorded in {args.record}" if args.record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
