"""The face model's identification accuracy among 100,000 enrolled classes, with the float32 scan
and with the exact half-memory search the service now uses (kshot/enroll/prototype_search.py),
and the time of one query's search with each.

The ten unseen ORL people (s31-s40) are enrolled with one photo each; their other 90 photos are
the queries. The other 99,990 classes are distractor prototypes drawn from a normal distribution
with the mean and per-dimension spread of the training people's face embeddings, so they sit where
faces sit.

    python benchmarks/identification_search.py checkpoints/protonet-orl-1shot.safetensors \
        --record benchmarks/results.jsonl
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
from kshot.engine.evaluator import embed_all
from kshot.enroll.prototype_search import HalfPrecisionSearch
from kshot.learners.protonet import nearest_prototype_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--classes", type=int, default=100_000)
    ap.add_argument("--data-dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--record", metavar="JSONL")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    learner, meta = load_learner(args.model)
    size = int(meta["data"]["image_size"])
    with torch.no_grad():
        train = embed_all(learner, load_orl("train", args.data_dir, image_size=size)).flatten(1)
        test_set = load_orl("test", args.data_dir, image_size=size)
        test = embed_all(learner, test_set).flatten(1)
    labels = test_set.labels
    first = torch.tensor([int(test_set.offsets[c]) for c in range(test_set.num_classes)])
    is_query = torch.ones(len(test), dtype=torch.bool)
    is_query[first] = False
    g = torch.Generator().manual_seed(0)
    distractors = train.mean(0) + train.std(0) * torch.randn(args.classes - len(first), train.shape[1], generator=g)
    prototypes = torch.cat([test[first], distractors])  # class c < 10 is test person c
    queries, truth = test[is_query], labels[is_query]

    def timed(answer) -> tuple[torch.Tensor, float]:
        picks, times = [], []
        for q in queries:
            t0 = time.perf_counter()
            picks.append(answer(q.unsqueeze(0)))
            times.append(time.perf_counter() - t0)
        return torch.cat(picks), 1000 * float(np.median(times))

    scan = nearest_prototype_scores(prototypes)
    search = HalfPrecisionSearch(prototypes)
    with torch.no_grad():
        scan(queries[:1]), search.top(queries[:1], 1)  # warm-up
        search.fallbacks = 0
        scanned, scan_ms = timed(lambda q: scan(q).argmax(1))
        searched, search_ms = timed(lambda q: search.top(q, 1)[1][:, 0])
    base = {
        "method": meta["method"],
        "dataset": "orl",
        "protocol": "s31-s40, one photo enrolled each, among distractor prototypes",
        "classes": args.classes,
        "queries": len(queries),
        "checkpoint": args.model,
        "command": "python benchmarks/identification_search.py " + shlex.join(sys.argv[1:]),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
    }
    rows = []
    for name, picks, ms in (
        ("float32 scan", scanned, scan_ms),
        ("exact, float16 scan + float32 re-scoring", searched, search_ms),
    ):
        accuracy = 100 * (picks == truth).float().mean().item()
        print(f"{name}: identified {accuracy:.2f}% of {len(queries)} photos; search {ms:.2f} ms per query (median)")
        row = base | {"search": name}
        rows.append(row | {"metric": "identification_accuracy", "value": round(accuracy, 2), "unit": "%"})
        rows.append(row | {"metric": "search_ms_per_query", "value": round(ms, 2), "unit": "ms"})
    same = bool(torch.equal(scanned, searched))
    print(f"same answer for every photo: {same}; queries that needed the full scan: {search.fallbacks}")
    if args.record:
        with open(args.record, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
