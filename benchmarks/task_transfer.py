"""Does task similarity predict transfer? On Omniglot (Lake's split): train a small Prototypical
Network on each of several background alphabets (the sources), test each on every evaluation
alphabet (the targets), and correlate the accuracy with the similarity of the two alphabets' task
vectors (kshot/engine/task_embedding.py) under a probe trained on all background alphabets.

Targets differ in difficulty and sources in quality, so both accuracy and similarity are taken
as residuals after removing source and target means (two-way centring); the p-value is from
permuting the targets' similarity columns (a Mantel-style test).

    python benchmarks/task_transfer.py --record benchmarks/results.jsonl --plot docs/task-transfer.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import torch
from scipy.stats import spearmanr

from kshot.cli.common import print_and_record
from kshot.data import load_dataset
from kshot.engine.build import build_learner, learner_meta
from kshot.engine.config import TrainConfig
from kshot.engine.evaluator import evaluate
from kshot.engine.task_embedding import class_groups, task_vector
from kshot.engine.trainer import Trainer

torch.set_num_threads(1)


def train_protonet(dataset, episodes: int, way: int, out: str, seed: int = 0):
    settings = TrainConfig(
        way=way,
        shot=1,
        query=5,
        episodes=episodes,
        val_split=None,
        lr_step=10**9,
        seed=seed,
        checkpoint_seconds=1e9,
        log_every=10**6,
    )
    torch.manual_seed(seed)
    learner = build_learner("protonet", "conv4", {"in_channels": 1})
    meta = learner_meta("protonet", "conv4", {"in_channels": 1}, {}) | {"data": {"dataset": "omniglot"}}
    Trainer(learner, dataset, None, settings, out, meta, progress=False).train()
    return learner.eval()


def centred(m: torch.Tensor) -> torch.Tensor:
    return m - m.mean(0, keepdim=True) - m.mean(1, keepdim=True) + m.mean()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--sources", type=int, default=10, help="background alphabets to train on (every third)")
    p.add_argument("--episodes", type=int, default=400, help="training episodes per source model")
    p.add_argument("--probe-episodes", type=int, default=1500)
    p.add_argument("--test-episodes", type=int, default=300)
    p.add_argument("--permutations", type=int, default=10000)
    p.add_argument("--plot")
    p.add_argument("--record")
    args = p.parse_args()
    start = time.perf_counter()
    background = load_dataset("omniglot", "train", "lake", args.data_dir, 28, False, 1)
    evaluation = load_dataset("omniglot", "test", "lake", args.data_dir, 28, False, 1)
    source_groups, target_groups = class_groups(background), class_groups(evaluation)
    sources = list(source_groups)[:: max(1, len(source_groups) // args.sources)][: args.sources]
    tmp = tempfile.mkdtemp()
    probe = train_protonet(background, args.probe_episodes, 20, f"{tmp}/probe")
    vec = {
        ("s", a): task_vector(probe, torch.cat([background.class_items(c) for c in source_groups[a]])) for a in sources
    }
    vec |= {
        ("t", a): task_vector(probe, torch.cat([evaluation.class_items(c) for c in cs]))
        for a, cs in target_groups.items()
    }
    centre = torch.stack(list(vec.values())).mean(0)
    unit = {k: torch.nn.functional.normalize(v - centre, dim=0) for k, v in vec.items()}
    targets = list(target_groups)
    sim = torch.tensor([[float(unit["s", s] @ unit["t", t]) for t in targets] for s in sources])
    acc = torch.zeros(len(sources), len(targets))
    for i, s in enumerate(sources):
        model = train_protonet(background.subset(source_groups[s]), args.episodes, 5, f"{tmp}/{i}")
        for j, t in enumerate(targets):
            acc[i, j] = evaluate(
                model, evaluation.subset(target_groups[t]), 5, 1, 15, args.test_episodes, progress=False
            ).accuracy
        print(f"{s}: mean accuracy on the targets {acc[i].mean():.1f}%", flush=True)
    rs, ra = centred(sim), centred(acc)
    rho = float(spearmanr(rs.flatten(), ra.flatten()).statistic)
    g = torch.Generator().manual_seed(0)
    beats = sum(
        float(spearmanr(centred(sim[:, torch.randperm(len(targets), generator=g)]).flatten(), ra.flatten()).statistic)
        >= rho
        for _ in range(args.permutations)
    )
    p_value = (beats + 1) / (args.permutations + 1)
    raw = float(spearmanr(sim.flatten(), acc.flatten()).statistic)
    row = {
        "method": "protonet",
        "dataset": "omniglot",
        "protocol": "lake",
        "metric": "task_similarity_transfer_spearman",
        "value": round(rho, 3),
        "p_value": round(p_value, 4),
        "raw_spearman": round(raw, 3),
        "sources": sources,
        "targets": len(targets),
        "way": 5,
        "shot": 1,
        "query": 15,
        "episodes": args.test_episodes,
        "train_episodes_per_source": args.episodes,
        "seconds": round(time.perf_counter() - start),
    }
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
        left.scatter(sim.flatten(), acc.flatten(), s=10)
        left.set_xlabel("similarity of source and target alphabets")
        left.set_ylabel("5-way 1-shot accuracy on the target (%)")
        left.set_title(f"raw: Spearman {raw:.2f}", fontsize=9)
        right.scatter(rs.flatten(), ra.flatten(), s=10, color="C1")
        right.set_xlabel("similarity, source and target means removed")
        right.set_ylabel("accuracy less source and target means")
        right.set_title(f"residuals: Spearman {rho:.2f}, permutation p = {p_value:.4f}", fontsize=9)
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.suptitle(
            f"Omniglot: ProtoNets trained on {len(sources)} background alphabets, tested on "
            f"{len(targets)} evaluation alphabets",
            fontsize=10,
        )
        fig.tight_layout()
        fig.savefig(args.plot)
        with open(args.plot.rsplit(".", 1)[0] + ".json", "w") as f:  # the matrices behind the figure
            json.dump({"sources": sources, "targets": targets, "similarity": sim.tolist(), "accuracy": acc.tolist()}, f)
    print_and_record([row], args.record, sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
