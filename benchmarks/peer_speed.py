"""Training speed of kshot beside its peers, side by side in ONE process, Omniglot 28x28, Conv-4.

    python benchmarks/peer_speed.py protonet [--record benchmarks/results.jsonl]
    python benchmarks/peer_speed.py matching [--record benchmarks/results.jsonl]
    python benchmarks/peer_speed.py relation [--record benchmarks/results.jsonl]
    python benchmarks/peer_speed.py maml     [--record benchmarks/results.jsonl]

protonet: kshot's Prototypical Networks, easyfsl 1.5.0's PrototypicalNetworks (its documented
  pattern: process_support_set, then score the queries) and a plain PyTorch loop, at 5-way 5-shot
  15-query and 60-way 5-shot 5-query; Adam steps per second. easyfsl ships no Conv-4, so it and
  the plain loop get the Conv-4 a user writes (benchmarks/peers.py); kshot uses its own, in
  float32 and, as `kshot-bf16`, under bfloat16 autocast (`kshot train --precision bf16`; its FLOPs
  are counted against the float32 peak all the same). `kshot-bf16-torch-pool` is that bf16 step
  with PyTorch's max-pool in place of kshot's C kernel (kshot/nets/pool2x2.py); for MAML,
  `kshot-torch-pool` is the float32 step so changed. `easyfsl-bf16` is easyfsl's step under the
  same autocast, for the ratio at equal precision.
matching, relation: kshot's Matching / Relation Networks beside easyfsl's, at 5-way 5-shot and
  20-way 5-shot, 15 queries (matching_contenders and relation_contenders say how each pair is
  set alike).
maml: kshot's MAML beside learn2learn 0.2.0's MAML (clone, adapt, backward per task) and a plain
  torch.func loop, 5-way 1-shot 15-query, meta-batch 32, one inner step of 0.4, second and first
  order; meta-iterations per second. learn2learn and the plain loop adapt the Conv-4 with a 5-way
  head that learn2learn's Omniglot example uses; kshot its own (the same function). All run under
  the same allocator settings (kshot.allocator).

Every contender sees the same episodes. The contenders take turns, a block of steps each per
round, each round starting one contender later, so that the drift of a shared host's speed
falls on all alike; each figure is the median over rounds with its lowest and highest. FLOP
counts come from torch.utils.flop_counter (one step, forward and backward) and give the achieved
GFLOP/s, against the issue's peak of 157 GFLOP/s for this 2-core CPU. Peak memory is each
contender's peak resident set in a process of its own (--peak-of), less the process's size
before its first step: the median of three such processes. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kshot.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()  # as `kshot train` does, for every contender alike
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from peers import (  # noqa: E402
    easyfsl_method,
    easyfsl_prototypical_networks,
    learn2learn_maml,
    plain_conv4,
    plain_maml_gradient,
    prototype_loss,
)
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from kshot.data import load_omniglot  # noqa: E402
from kshot.data.sampler import Task, episode_sampler  # noqa: E402
from kshot.engine.build import build_learner  # noqa: E402
from kshot.nets import pool2x2  # noqa: E402

# fp32 peaks of this 2-core CPU at 2.45 GHz: the figure counts 8 lanes per FMA unit (AVX2);
# the CPU (AMD EPYC, family 26) executes AVX-512 FMAs with 16 lanes, so its real peak is twice that.
PEAK_GFLOPS = 157.0  # 2 cores x 2 FMA units x 8 lanes x 2 x 2.45 GHz
AVX512_PEAK_GFLOPS = 314.0
Step = Callable[[list[Task]], None]  # one optimizer step on a batch of tasks
PEAK_REPEATS = 3  # fresh processes per contender for its peak memory


def adam_step(params, add_gradient: Callable[[list[Task]], None]) -> Step:
    opt = torch.optim.Adam(params, 1e-3)

    def step(tasks: list[Task]) -> None:
        opt.zero_grad(set_to_none=True)
        add_gradient(tasks)
        opt.step()

    return step


def with_pytorch_pool(step: Step) -> Step:
    """The same step with PyTorch's max-pool in place of kshot's C kernel (kshot/nets/pool2x2.py),
    to measure what the kernel gives inside one process."""

    def run(tasks: list[Task]) -> None:
        with mock.patch.object(pool2x2, "fused_applies", lambda x: False):
            step(tasks)

    return run


def kshot_contenders(method: str, method_args: dict) -> dict[str, Step]:
    """kshot's learner in float32, and as `kshot-bf16` under bfloat16 autocast (`--precision bf16`),
    also with PyTorch's max-pool (`kshot-bf16-torch-pool`)."""

    def make(precision: str) -> Step:
        learner = build_learner(method, "conv4", {"in_channels": 1}, method_args, input_shape=[1, 28, 28])

        def gradient(tasks):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                learner.meta_step(tasks)

        return adam_step(learner.parameters(), gradient)

    bf16 = make("bf16")
    return {"kshot": make("fp32"), "kshot-bf16": bf16, "kshot-bf16-torch-pool": with_pytorch_pool(bf16)}


def easyfsl_step(model: nn.Module, loss: Callable) -> Step:
    """easyfsl's documented pattern: process_support_set, then score the queries."""

    def gradient(tasks):
        for t in tasks:
            model.process_support_set(t.support, t.support_labels)
            loss(model(t.query), t.query_labels).backward()

    return adam_step(model.parameters(), gradient)


def easyfsl_contenders(model: nn.Module, loss: Callable) -> dict[str, Step]:
    """easyfsl's step, and as `easyfsl-bf16` under the same bfloat16 autocast as kshot-bf16, so that
    each precision has its own ratio."""
    step = easyfsl_step(model, loss)

    def bf16(tasks):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            step(tasks)

    return {"easyfsl": step, "easyfsl-bf16": bf16}


def protonet_contenders(way: int, shot: int, query: int) -> dict[str, Step]:
    easyfsl = easyfsl_prototypical_networks()(plain_conv4())
    plain = plain_conv4()

    def plain_gradient(tasks):  # one forward over support and queries, class by class
        for t in tasks:
            x = torch.cat(
                [t.support.view(way, shot, *t.support.shape[1:]), t.query.view(way, query, *t.query.shape[1:])], 1
            )
            prototype_loss(plain(x.flatten(0, 1)), way, shot, query).backward()

    return (
        kshot_contenders("protonet", {})
        | easyfsl_contenders(easyfsl, F.cross_entropy)
        | {"plain-pytorch-loop": adam_step(plain.parameters(), plain_gradient)}
    )


def matching_contenders(way: int, shot: int, query: int) -> dict[str, Step]:
    """Both with full context embeddings, as easyfsl always has them: its query LSTM reads the
    support once per support item, so kshot's takes as many steps (`fce_steps`). easyfsl's scores
    are log-probabilities, trained with the negative log-likelihood its documentation asks for."""
    easyfsl = easyfsl_method("matching_networks", "MatchingNetworks")(plain_conv4(), feature_dimension=64)
    kshot = kshot_contenders("matching", {"fce": True, "fce_steps": way * shot})
    return kshot | easyfsl_contenders(easyfsl, F.nll_loss)


def relation_contenders(way: int, shot: int, query: int) -> dict[str, Step]:
    """Both on a Conv-4 that pools in its first two blocks, trained with the paper's mean squared
    error against one-hot targets (easyfsl's relation module is its own adaptive-pooling variant)."""
    easyfsl = easyfsl_method("relation_networks", "RelationNetworks")(
        plain_conv4(pooled_blocks=2), feature_dimension=64
    )

    def mse(scores, labels):
        return F.mse_loss(scores, F.one_hot(labels, scores.shape[1]).to(scores.dtype))

    return kshot_contenders("relation", {}) | easyfsl_contenders(easyfsl, mse)


METRIC_CONTENDERS = {"protonet": protonet_contenders, "matching": matching_contenders, "relation": relation_contenders}
METRIC_SHAPES = {"protonet": [(5, 5, 15), (60, 5, 5)], "matching": [(5, 5, 15), (20, 5, 15)]}
METRIC_SHAPES["relation"] = METRIC_SHAPES["matching"]


def maml_contenders(first_order: bool) -> dict[str, Step]:
    def learner():
        torch.manual_seed(0)
        return build_learner(
            "maml", "conv4", {"norm": "task"}, {"way": 5, "input_shape": [1, 28, 28], "first_order": first_order}
        )

    def plain_net():
        torch.manual_seed(0)
        return nn.Sequential(plain_conv4(batch_statistics_only=True), nn.Linear(64, 5))

    kshot = learner()
    l2l = learn2learn_maml()(plain_net(), lr=0.4, first_order=first_order)

    def learn2learn_gradient(tasks):  # the library's documented pattern
        for t in tasks:
            clone = l2l.clone()
            clone.adapt(F.cross_entropy(clone(t.support), t.support_labels))
            (F.cross_entropy(clone(t.query), t.query_labels) / len(tasks)).backward()

    plain = plain_net()

    return {
        "kshot": adam_step(kshot.parameters(), kshot.meta_step),
        "kshot-torch-pool": with_pytorch_pool(adam_step(kshot.parameters(), kshot.meta_step)),
        "learn2learn": adam_step(l2l.parameters(), learn2learn_gradient),
        "plain-pytorch-loop": adam_step(plain.parameters(), plain_maml_gradient(plain, first_order)),
    }


def comparisons(family: str) -> list[dict]:
    """Each comparison: its episode shape, how many tasks one step takes, and its contenders."""
    if family in METRIC_CONTENDERS:
        return [
            {
                "way": w,
                "shot": s,
                "query": q,
                "meta_batch": 1,
                "order": None,
                "make": partial(METRIC_CONTENDERS[family], w, s, q),
            }
            for w, s, q in METRIC_SHAPES[family]
        ]
    return [
        {
            "way": 5,
            "shot": 1,
            "query": 15,
            "meta_batch": 32,
            "order": order,
            "make": partial(maml_contenders, order == "first"),
        }
        for order in ("second", "first")
    ]


def batches(c: dict, count: int, data_dir: str | None) -> list[list[Task]]:
    train = load_omniglot("train", "vinyals", data_dir, allow_download=False)
    m = c["meta_batch"]
    sampler = episode_sampler(train, c["way"], c["shot"], c["query"], count * m, seed=0)
    return [[sampler.task(train, i * m + j) for j in range(m)] for i in range(count)]


def flops_per_step(step: Step, tasks: list[Task]) -> int:
    """One step's FLOPs, counted on one thread (the counter sees only its own thread's work, and
    kshot runs a meta-batch's tasks in worker threads when it has several)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            step(tasks)
    finally:
        torch.set_num_threads(threads)
    return counter.get_total_flops()


def interleaved_rates(
    contenders: dict[str, Step], work: list[list[Task]], rounds: int, block: int
) -> dict[str, list[float]]:
    """Steps per second of each contender in each round (a block of `block` steps each)."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            chosen = [work[(r * block + i) % len(work)] for i in range(block)]
            start = time.perf_counter()
            for tasks in chosen:
                contenders[name](tasks)
            rates[name].append(block / (time.perf_counter() - start))
        print(f"round {r + 1}: " + ", ".join(f"{n} {rates[n][-1]:.3f}" for n in names), flush=True)
    return rates


def peak_rss_of(family: str, index: int, name: str, steps: int, data_dir: str | None, threads: int) -> list[float]:
    """MiB, once per fresh process (PEAK_REPEATS): the contender's peak resident set, less the
    process's size before its first step. Runs differ by up to 10 MiB, so the median is the figure."""
    where = ["--data-dir", data_dir] if data_dir else []
    command = [sys.executable, __file__, family, "--peak-of", name, "--comparison", str(index)]
    command += ["--peak-steps", str(steps), "--threads", str(threads), *where]
    peaks = []
    for _ in range(PEAK_REPEATS):
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        peaks.append(float(out.stdout.strip().splitlines()[-1]))
    return peaks


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_child(family: str, index: int, name: str, steps: int, data_dir: str | None) -> None:
    c = comparisons(family)[index]
    work = batches(c, steps, data_dir)
    step = c["make"]()[name]
    # Loading the data set peaks higher than a step: reset the kernel's high-water mark first.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_kib("VmRSS")
    for tasks in work:
        step(tasks)
    print((status_kib("VmHWM") - before) / 1024)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", choices=[*METRIC_CONTENDERS, "maml"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--block", type=int, help="steps per contender per round (default: 10 for 5-way metric, else 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", help="the folder that holds omniglot/ (default: KSHOT_DATA)")
    p.add_argument("--record", metavar="JSONL")
    p.add_argument("--peak-of", help=argparse.SUPPRESS)
    p.add_argument("--comparison", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--peak-steps", type=int, default=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_of:
        peak_child(args.family, args.comparison, args.peak_of, args.peak_steps, args.data_dir)
        return 0
    from kshot.cli.common import machine_description

    rows = []
    for index, c in enumerate(comparisons(args.family)):
        block = args.block or (10 if c["way"] == 5 and args.family != "maml" else 2)
        work = batches(c, max(block * 2, 4), args.data_dir)
        contenders = c["make"]()
        for step in contenders.values():  # warm-up, and the FLOP count of one step
            step(work[0])
        flops = {name: flops_per_step(step, work[1]) for name, step in contenders.items()}
        shape = f"{c['way']}-way {c['shot']}-shot {c['query']}-query" + (f", {c['order']} order" if c["order"] else "")
        print(f"{args.family} {shape}", flush=True)
        rates = interleaved_rates(contenders, work, args.rounds, block)
        peer = "learn2learn" if args.family == "maml" else "easyfsl"
        base = {
            "method": args.family,
            "backbone": "conv4",
            "dataset": "omniglot",
            "protocol": "vinyals",
            "way": c["way"],
            "shot": c["shot"],
            "query": c["query"],
            "meta_batch": c["meta_batch"],
            "rounds": args.rounds,
            "episodes": args.rounds * block * c["meta_batch"],
            "command": "python " + shlex.join(["benchmarks/peer_speed.py", *sys.argv[1:]]),
            "machine": machine_description(),
            "date": time.strftime("%Y-%m-%d"),
        } | ({"order": c["order"]} if c["order"] else {})
        for name, values in rates.items():
            median = statistics.median(values)
            peaks = peak_rss_of(args.family, index, name, 3, args.data_dir, args.threads)
            peak = statistics.median(peaks)
            gflops = flops[name] * median / 1e9
            row = base | {
                "impl": name,
                "metric": "train_steps_per_second",
                "value": round(median, 4),
                "low": round(min(values), 4),
                "high": round(max(values), 4),
                "unit": "steps/s",
                "speedup_over_" + peer.replace("-", "_"): round(median / statistics.median(rates[peer]), 3),
                "gflop_per_step": round(flops[name] / 1e9, 3),
                "gflops": round(gflops, 1),
                "share_of_peak": round(gflops / PEAK_GFLOPS, 3),
                "share_of_avx512_peak": round(gflops / AVX512_PEAK_GFLOPS, 3),
                "peak_rss_mib": round(peak, 1),
                "peak_rss_mib_runs": [round(v, 1) for v in peaks],
            }
            rows.append(row)
            print(
                f"  {name:19s} {median:.3f} steps/s ({min(values):.3f}-{max(values):.3f}), "
                f"{row['speedup_over_' + peer]:.2f}x {peer}, {gflops:.0f} GFLOP/s "
                f"({100 * gflops / AVX512_PEAK_GFLOPS:.0f}% of the AVX-512 peak), "
                f"peak +{peak:.0f} MiB",
                flush=True,
            )
    if args.record:
        with open(args.record, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
