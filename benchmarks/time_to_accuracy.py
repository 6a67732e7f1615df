"""Validation accuracy against wall-clock training time, read from committed run logs: how fast does
each method reach a given accuracy? Draws the curves and records, per run, the training seconds it
first reached each threshold (from the logged `train_seconds`, which excludes validation).

    python benchmarks/time_to_accuracy.py benchmarks/runs/protonet-miniimagenet-5w1s \
        benchmarks/runs/baseline-miniimagenet --thresholds 35,40,45 --plot docs/miniimagenet-time-to-accuracy.png \
        --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kshot.cli.common import print_and_record
from kshot.engine.run_state import read_log


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (each with log.jsonl and best.json)")
    p.add_argument("--thresholds", default="35,40,45", help="validation accuracies (%%) to time")
    p.add_argument("--plot")
    p.add_argument("--record")
    args = p.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    curves, rows = {}, []
    for run in map(Path, args.runs):
        meta = json.loads((run / "best.json").read_text())
        points = [(r["train_seconds"], r["val_accuracy"]) for r in read_log(run / "log.jsonl") if "val_accuracy" in r]
        label = f"{meta['method']} ({meta['config']['backbone']})"
        curves[label] = points
        c = meta["config"]
        for t in thresholds:
            reached = next((s for s, a in points if a >= t), None)
            rows.append(
                {
                    "method": meta["method"],
                    "run": str(run),
                    "dataset": c["dataset"],
                    "protocol": c["protocol"],
                    "metric": "train_seconds_to_val_accuracy",
                    "threshold": t,
                    "value": reached,
                    "unit": "s",
                    "val_way": c["val_way"],
                    "val_shot": c["val_shot"] or c["shot"],
                    "best_val_accuracy": round(max(a for _, a in points), 2),
                }
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        for label, points in curves.items():
            ax.plot([s / 60 for s, _ in points], [a for _, a in points], marker="o", markersize=3, label=label)
        ax.set_xlabel("training time (minutes, one CPU thread, validation excluded)")
        ax.set_ylabel("validation accuracy, 5-way 1-shot (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot)
    print_and_record(rows, args.record, sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
