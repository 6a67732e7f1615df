"""Meta-iterations per second and peak memory of MAML, 5-way 1-shot 15-query, meta-batch 32,
one inner step of 0.4, Conv-4 (64 channels, task BatchNorm) on Omniglot 28x28: kshot beside
learn2learn's MAML and a plain per-task loop, each in a fresh process (peak RSS is per process).

The kshot rows run as `kshot train` does, with glibc's malloc told to keep freed memory
(kshot/allocator.py); `learn2learn-keepmem` is learn2learn with the same allocator settings,
to show how much of the difference is the allocator. Speeds on a shared 2-core VM drift by
20-30% from minute to minute, so the implementations are interleaved over `--rounds` rounds,
each round starting one slot later, and the median of each is reported, with its lowest and
highest.

learn2learn 0.2.0 is imported from its published source (benchmarks/peers.py). The network is the
same object type for everyone. benchmarks/peer_speed.py is the side-by-side comparison in one
process; this script's rows are the allocator study's.

Run on an otherwise idle machine:
    python benchmarks/maml_speed.py --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import SCRATCH, learn2learn_maml, plain_maml_gradient  # noqa: E402

# kshot: the default (tasks in one worker thread per torch thread); kshot-serial: one task at a
# time over all threads, as the other two do; kshot-vmap: all tasks at once under torch.func.vmap.
IMPLS = ["kshot", "kshot-serial", "kshot-vmap", "plain-loop", "learn2learn", "learn2learn-keepmem"]
KEEPS_FREED_MEMORY = {"kshot", "kshot-serial", "kshot-vmap", "learn2learn-keepmem"}


def build_maml(impl: str, first_order: bool):
    """The network of every implementation: kshot's MAML learner (Conv-4, task BatchNorm, 5-way head)."""
    from kshot.engine.build import build_learner

    return build_learner(
        "maml",
        "conv4",
        {"norm": "task", "channels_last": False},
        {
            "way": 5,
            "input_shape": [1, 28, 28],
            "first_order": first_order,
            "vectorize": "vmap" if impl == "kshot-vmap" else "loop",
            "workers": 1 if impl == "kshot-serial" else 0,
        },
    )


def meta_gradient(impl: str, learner, first_order: bool, scratch: Path):
    """tasks -> None: adds the meta-gradient of a meta-batch to the network's .grad, as `impl` computes it."""
    import torch.nn.functional as F

    net = learner.net
    if impl.startswith("kshot"):
        return learner.meta_step
    if impl.startswith("learn2learn"):  # the library's documented pattern: clone, adapt, backward per task
        maml = learn2learn_maml(scratch)(net, lr=0.4, first_order=first_order)

        def learn2learn(tasks):
            for t in tasks:
                clone = maml.clone()
                clone.adapt(F.cross_entropy(clone(t.support), t.support_labels))
                (F.cross_entropy(clone(t.query), t.query_labels) / len(tasks)).backward()

        return learn2learn

    return plain_maml_gradient(net, first_order)


def child(impl: str, order: str, iterations: int, meta_batch: int, scratch: Path) -> dict:
    import torch

    from kshot.allocator import keep_freed_memory
    from kshot.data import load_omniglot
    from kshot.data.sampler import episode_sampler

    if impl in KEEPS_FREED_MEMORY and not keep_freed_memory():
        raise SystemExit(
            "the allocator settings were not applied (not glibc, or KSHOT_MALLOC=default): "
            "run with --impls that do not need them"
        )
    torch.manual_seed(0)
    train = load_omniglot("train", "vinyals", None, allow_download=False)
    sampler = episode_sampler(train, 5, 1, 15, (iterations + 1) * meta_batch, seed=0)
    first_order = order == "first"
    learner = build_maml(impl, first_order)
    opt = torch.optim.Adam(learner.net.parameters(), 1e-3)
    add_meta_gradient = meta_gradient(impl, learner, first_order, scratch)

    def step(tasks):
        opt.zero_grad()
        add_meta_gradient(tasks)
        opt.step()

    batches = [[sampler.task(train, i * meta_batch + j) for j in range(meta_batch)] for i in range(iterations + 1)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(batches[0])  # warm-up
    start = time.perf_counter()
    for tasks in batches[1:]:
        step(tasks)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "iterations_per_second": iterations / seconds,
        "peak_rss_mib": peak / 1024,
        "rss_before_mib": rss_before / 1024,
    }


def run_child(impl: str, order: str, args) -> dict | None:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--impl",
            impl,
            "--order",
            order,
            "--iterations",
            str(args.iterations),
            "--meta-batch",
            str(args.meta_batch),
            "--threads",
            str(args.threads),
            "--scratch",
            args.scratch,
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        print(f"{impl} {order} order failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=5, help="timed meta-iterations per process (after 1 warm-up)")
    p.add_argument("--rounds", type=int, default=3, help="processes per implementation and order, interleaved")
    p.add_argument(
        "--impls",
        nargs="+",
        choices=IMPLS,
        default=IMPLS,
        metavar="IMPL",
        help=f"which implementations (default: all of {', '.join(IMPLS)})",
    )
    p.add_argument("--orders", nargs="+", choices=["second", "first"], default=["second", "first"])
    p.add_argument("--meta-batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impl", choices=IMPLS, help="(internal) run one implementation and print JSON")
    p.add_argument("--order", choices=["second", "first"], default="second", help="(internal, with --impl)")
    p.add_argument("--scratch", default=str(SCRATCH), help="where learn2learn's source is unpacked")
    p.add_argument("--record", metavar="JSONL")
    args = p.parse_args()
    if args.impl:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(args.impl, args.order, args.iterations, args.meta_batch, Path(args.scratch))))
        return
    from kshot.cli.common import machine_description

    command = "python benchmarks/maml_speed.py " + shlex.join(sys.argv[1:])
    runs: dict[tuple[str, str], list[dict]] = {(impl, order): [] for order in args.orders for impl in args.impls}
    slots = list(runs.items())
    for round_ in range(args.rounds):
        # Each round starts one slot later, so that no implementation always runs at the same
        # point of a round (the host's speed drifts with a period of minutes).
        shift = round_ % len(slots)
        for (impl, order), results in slots[shift:] + slots[:shift]:
            r = run_child(impl, order, args)
            if r is not None:
                results.append(r)
                print(
                    f"round {round_ + 1}: {impl:19s} {order:6s} order: {r['iterations_per_second']:.3f} "
                    f"meta-iterations/s, peak RSS {r['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    for (impl, order), results in runs.items():
        if not results:
            continue
        speeds = [r["iterations_per_second"] for r in results]
        peaks = [r["peak_rss_mib"] for r in results]
        print(
            f"median {impl:19s} {order:6s} order: {statistics.median(speeds):.3f} meta-iterations/s "
            f"({min(speeds):.3f}-{max(speeds):.3f}), peak RSS {statistics.median(peaks):.0f} MiB "
            f"({min(peaks):.0f}-{max(peaks):.0f})"
        )
        if args.record:
            base = {
                "method": "maml",
                "impl": impl,
                "order": order,
                "dataset": "omniglot",
                "protocol": "vinyals",
                "way": 5,
                "shot": 1,
                "query": 15,
                "meta_batch": args.meta_batch,
                "inner_steps": 1,
                "episodes": args.iterations,
                "rounds": len(results),
                "keeps_freed_memory": impl in KEEPS_FREED_MEMORY,
                "command": command,
                "machine": machine_description(),
                "date": time.strftime("%Y-%m-%d"),
            }
            with open(args.record, "a") as f:
                for metric, values, unit in (
                    ("meta_iterations_per_second", speeds, "it/s"),
                    ("peak_rss", peaks, "MiB"),
                ):
                    f.write(
                        json.dumps(
                            base
                            | {
                                "metric": metric,
                                "value": round(statistics.median(values), 4),
                                "low": round(min(values), 4),
                                "high": round(max(values), 4),
                                "unit": unit,
                            }
                        )
                        + "\n"
                    )


if __name__ == "__main__":
    main()
