"""Open-set identification on the ORL faces never seen in training (s31-s40).

Identification accuracy (closed set) comes from `kshot eval` on the same people. This script
measures what a deployment also needs: a score threshold under which a photo is "unknown".
It is calibrated on people s31-s35 and then measured on s36-s40, which it never saw:
in each trial 3 of the 5 people are enrolled with `shot` photos each (prototypes, as in the
store) and 2 are impostors; every other photo is a query. The threshold maximises the mean
of the genuine-acceptance and impostor-rejection rates on the calibration people.

    python benchmarks/faces.py checkpoints/protonet-orl.safetensors --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import numpy as np
import torch

from kshot.cli.common import machine_description
from kshot.data import load_orl
from kshot.engine.build import load_learner


def trial_scores(learner, features: torch.Tensor, people: list[int], photos: int, shot: int, trials: int, seed: int):
    """(best scores of genuine queries, whether their best match was right, best scores of impostor queries)."""
    rng = np.random.default_rng(seed)
    genuine, correct, impostor = [], [], []
    for _ in range(trials):
        order = rng.permutation(people)
        known, strangers = order[:3], order[3:]
        picks = {p: rng.permutation(photos) for p in known}
        support = torch.stack([features[p * photos + picks[p][:shot]].mean(0) for p in known])
        classify = learner.prototype_classifier(support)
        for i, p in enumerate(known):
            scores = classify(features[p * photos + picks[p][shot:]])
            best = scores.max(1)
            genuine += best.values.tolist()
            correct += (best.indices == i).tolist()
        for p in strangers:
            impostor += classify(features[p * photos : (p + 1) * photos]).max(1).values.tolist()
    return np.array(genuine), np.array(correct), np.array(impostor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--shot", type=int, default=1)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--data-dir")
    ap.add_argument("--record", metavar="JSONL")
    args = ap.parse_args()
    learner, meta = load_learner(args.model)
    test = load_orl("test", args.data_dir, meta["data"]["image_size"])
    with torch.no_grad():
        features = learner.embed(test.fetch(torch.arange(len(test))))
        photos = int(test.class_sizes[0])
        g, _, imp = trial_scores(learner, features, [0, 1, 2, 3, 4], photos, args.shot, args.trials, seed=0)
        candidates = np.unique(np.concatenate([g, imp]))
        balanced = [((g >= t).mean() + (imp < t).mean()) / 2 for t in candidates]
        threshold = float(candidates[int(np.argmax(balanced))])
        g, ok, imp = trial_scores(learner, features, [5, 6, 7, 8, 9], photos, args.shot, args.trials, seed=1)
    rejection = 100 * (imp < threshold).mean()
    acceptance = 100 * (g >= threshold).mean()
    right = 100 * (ok & (g >= threshold)).mean()
    print(f"threshold {threshold:.4g} (calibrated on s31-s35), measured on s36-s40, {args.shot}-shot enrollment:")
    print(f"  impostor photos rejected: {rejection:.2f}% of {len(imp)}")
    print(f"  genuine photos accepted:  {acceptance:.2f}% of {len(g)} (accepted and named right: {right:.2f}%)")
    print(f"set it on a store with: kshot classes --store STORE threshold {threshold:.6g}")
    if args.record:
        base = {
            "method": meta["method"],
            "dataset": "orl",
            "protocol": "s1-30/s31-40",
            "split": "s36-40",
            "way": 3,
            "shot": args.shot,
            "episodes": args.trials,
            "threshold": threshold,
            "checkpoint": args.model,
            "command": "python benchmarks/faces.py " + shlex.join(sys.argv[1:]),
            "machine": machine_description(),
            "date": time.strftime("%Y-%m-%d"),
        }
        with open(args.record, "a") as f:
            for metric, value, n in (
                ("open_set_rejection", rejection, len(imp)),
                ("genuine_acceptance", acceptance, len(g)),
            ):
                f.write(
                    json.dumps(base | {"metric": metric, "value": round(value, 2), "unit": "%", "queries": n}) + "\n"
                )


if __name__ == "__main__":
    main()
