"""Training and test episodes per second of kshot's Prototypical Networks on Omniglot (28x28, Conv-4),
beside a plain PyTorch loop (per-item Dataset + DataLoader, NCHW Conv-4 with ReLU before pooling).

Run on an otherwise idle machine:  python benchmarks/speed.py --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kshot.cli.common import machine_description
from kshot.data import load_omniglot
from kshot.data.sampler import episode_sampler
from kshot.engine.build import build_learner
from kshot.engine.evaluator import evaluate


class PlainItems(Dataset):
    """What a typical script does: one item at a time, converted on access."""

    def __init__(self, ds):
        self.images, self.labels = ds.items, ds.labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i].float() / 255.0, int(self.labels[i])


def plain_conv4() -> nn.Module:
    block = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(block(1, 64), block(64, 64), block(64, 64), block(64, 64), nn.Flatten())


def plain_train_rate(ds, way, shot, query, episodes) -> float:
    net = plain_conv4()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loader = DataLoader(PlainItems(ds), batch_sampler=episode_sampler(ds, way, shot, query, episodes + 2))
    start = None
    for i, (x, _) in enumerate(loader):
        if i == 2:
            start = time.perf_counter()  # two warm-up episodes
        x = x.view(way, shot + query, *x.shape[1:])
        z = net(x.flatten(0, 1)).view(way, shot + query, -1)
        protos = z[:, :shot].mean(1)
        q = z[:, shot:].reshape(way * query, -1)
        loss = F.cross_entropy(-(torch.cdist(q, protos) ** 2), torch.arange(way).repeat_interleave(query))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return episodes / (time.perf_counter() - start)


def kshot_train_rate(ds, way, shot, query, episodes) -> float:
    learner = build_learner("protonet", "conv4", {"in_channels": 1})
    opt = torch.optim.Adam(learner.parameters(), 1e-3)
    sampler = episode_sampler(ds, way, shot, query, episodes + 2)
    for i in range(episodes + 2):
        if i == 2:
            start = time.perf_counter()
        loss, _ = learner.loss(sampler.task(ds, i))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return episodes / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--episodes", type=int, default=20, help="timed training episodes per configuration")
    p.add_argument("--test-episodes", type=int, default=1000)
    p.add_argument("--record", help="append result rows to this JSONL file")
    args = p.parse_args()
    train = load_omniglot("train", data_dir=args.data_dir)
    test = load_omniglot("test", data_dir=args.data_dir)
    rows = []
    common = {
        "method": "protonet",
        "backbone": "conv4",
        "dataset": "omniglot",
        "protocol": "vinyals",
        "command": "python " + shlex.join(sys.argv),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
    }
    for way, shot, query in [(5, 5, 15), (60, 5, 5)]:
        for impl, fn in [("kshot", kshot_train_rate), ("plain-pytorch-loop", plain_train_rate)]:
            torch.manual_seed(0)
            rate = fn(train, way, shot, query, args.episodes)
            rows.append(
                common
                | {
                    "impl": impl,
                    "metric": "train_episodes_per_second",
                    "way": way,
                    "shot": shot,
                    "query": query,
                    "episodes": args.episodes,
                    "value": round(rate, 3),
                    "unit": "episodes/s",
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    learner = build_learner("protonet", "conv4", {"in_channels": 1})
    for reuse, n in [(True, args.test_episodes), (False, max(50, args.test_episodes // 10))]:
        r = evaluate(learner, test, 5, 5, 15, n, progress=False, reuse_features=reuse)
        rows.append(
            common
            | {
                "impl": "kshot" + ("" if reuse else " (no feature reuse)"),
                "metric": "test_episodes_per_second",
                "way": 5,
                "shot": 5,
                "query": 15,
                "episodes": n,
                "value": round(n / r.seconds, 2),
                "unit": "episodes/s",
                "note": "includes embedding the 33,840 test images once" if reuse else "",
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    if args.record:
        with open(args.record, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
