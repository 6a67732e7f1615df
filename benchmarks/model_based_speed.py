"""Training speed of the model-based methods on this CPU (episodes/s, their presets' settings), and
where the time goes (a profile of a few steps, by operator).

Run on an otherwise idle machine; the methods are timed in turns, in one process:
    python benchmarks/model_based_speed.py --threads 1 --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from kshot.cli.common import print_and_record
from kshot.engine.config import TrainConfig, read_config
from kshot.engine.trainer import Trainer

PRESETS = {  # label -> (preset, method options over it)
    "metanet 5-way 1-shot": ("metanet-omniglot-5w1s", {}),
    "metanet 20-way 1-shot": ("metanet-omniglot-20w1s", {}),
    "mann (memory)": ("mann-omniglot", {}),
    "mann (LSTM control)": ("mann-lstm-omniglot", {}),
}


def trainer_for(preset: str, data_dir: str | None, out: str) -> Trainer:
    values = read_config(preset) | ({"data_dir": data_dir} if data_dir else {})
    return Trainer.from_config(TrainConfig.from_dict(values), out, progress=False, allow_download=False)


def run_steps(trainer: Trainer, first: int, steps: int) -> float:
    """Seconds for `steps` optimizer steps (draw, forward, backward, update), as the trainer takes them."""
    s = trainer.settings
    start = time.perf_counter()
    for i in range(first, first + steps):
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.tasks.step(trainer.learner, i, s.meta_batch)
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainer.learner.parameters(), s.grad_clip)
        trainer.optimizer.step()
    return time.perf_counter() - start


def where_time_goes(trainer: Trainer, steps: int) -> list[tuple[str, float]]:
    """The operators with the most self CPU time over `steps` steps, as percentages of the total."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_steps(trainer, 10_000, steps)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
    return [(e.key, round(100 * e.self_cpu_time_total / total, 1)) for e in top]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per method per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--record", help="append result rows to this JSONL file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp()
    trainers = {
        label: trainer_for(preset, args.data_dir, f"{tmp}/{i}")
        for i, (label, (preset, _)) in enumerate(PRESETS.items())
    }
    steps = {}
    for label, trainer in trainers.items():  # warm up, and size each turn to about --seconds
        seconds = run_steps(trainer, 0, 3) / 3
        steps[label] = max(3, int(args.seconds / seconds))
    rates: dict[str, list[float]] = {label: [] for label in trainers}
    for r in range(args.rounds):
        for label, trainer in trainers.items():
            n = steps[label]
            seconds = run_steps(trainer, 100 + r * n, n)
            rates[label].append(n * trainer.settings.meta_batch / seconds)
    rows = []
    for label, trainer in trainers.items():
        s = trainer.settings
        profile_steps = max(3, steps[label] // 4)
        row = {
            "method": trainer.learner.method,
            "model": label,
            "metric": "train_episodes_per_second",
            "impl": "kshot",
            "dataset": s.dataset,
            "protocol": s.protocol,
            "way": s.way,
            "shot": s.shot,
            "query": s.query,
            "meta_batch": s.meta_batch,
            "episodes": args.rounds * steps[label] * s.meta_batch,
            "value": round(statistics.median(rates[label]), 2),
            "rounds": [round(x, 2) for x in rates[label]],
            "unit": "episodes/s",
            "profile_top_ops_percent": where_time_goes(trainer, profile_steps),
        }
        rows.append(row)
    print_and_record(rows, args.record, sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
