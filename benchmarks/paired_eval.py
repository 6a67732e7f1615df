"""Two checkpoints tested on the very same episodes, and the interval of their difference.

    python benchmarks/paired_eval.py checkpoints/protonet-omniglot-lake-60way-bf16.safetensors \
        checkpoints/protonet-omniglot-lake-60way-within-bf16.safetensors --protocol lake \
        --within-alphabet --way 20 --shot 1 --data-dir ../shared/data --record benchmarks/results.jsonl

Two models' separate 95% intervals can overlap while one is better on most episodes: an episode's
difficulty moves both. The per-episode difference (B minus A) cancels that, so its interval is the
one that says whether B is better. One row (metric `paired_difference`, in accuracy points).
"""

from __future__ import annotations

import argparse
import sys

import torch

from kshot.cli.common import checkpoint_data, print_and_record
from kshot.engine.build import load_learner
from kshot.engine.evaluator import evaluate, mean_ci95


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="checkpoint A (the reference)")
    p.add_argument("b", help="checkpoint B")
    p.add_argument("--way", type=int, default=5)
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--query", type=int, default=15)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--protocol", help="default: checkpoint A's")
    p.add_argument("--within-alphabet", action="store_true", help="each episode's classes from one alphabet")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--record", metavar="JSONL")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results, sources = [], []
    for path in (args.a, args.b):
        learner, meta = load_learner(path)
        dataset, protocol, test = checkpoint_data(meta, args.split, None, args.protocol, args.data_dir)
        sources.append((dataset, protocol))
        shape = (args.way, args.shot, args.query, args.episodes, args.seed)
        results.append(evaluate(learner, test, *shape, progress=False, within_groups=args.within_alphabet))
    if sources[0] != sources[1]:
        print(f"paired_eval: the checkpoints test on different data ({sources[0]} and {sources[1]})", file=sys.stderr)
        return 2
    a, b = (100 * r.per_episode.double() for r in results)
    diff = b - a
    difference, ci95 = mean_ci95(diff)
    row = {
        "method": "paired",
        "a": args.a,
        "b": args.b,
        "dataset": sources[0][0],
        "protocol": sources[0][1] + (", classes within one alphabet" if args.within_alphabet else ""),
        "way": args.way,
        "shot": args.shot,
        "query": args.query,
        "episodes": args.episodes,
        "accuracy_a": round(results[0].accuracy, 3),
        "accuracy_b": round(results[1].accuracy, 3),
        "metric": "paired_difference",
        "value": round(difference, 3),
        "ci95": round(ci95, 3),
        "unit": "accuracy points, B minus A",
        "b_better_episodes": int((diff > 0).sum()),
        "b_worse_episodes": int((diff < 0).sum()),
    }
    print_and_record([row], args.record, sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
