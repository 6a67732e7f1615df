"""Seconds per MAML meta-iteration of kshot (one worker), learn2learn and a plain loop in ONE
process, alternating implementation every meta-iteration, so that the drift of a shared
host's speed falls on all three alike. Same task (5-way 1-shot 15-query, meta-batch 32, one
inner step of 0.4, second order) and allocator settings (kshot.allocator) for all.

    python benchmarks/maml_interleaved.py [REPETITIONS]     # default 5; needs maml_speed.py's learn2learn download
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kshot.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()  # as `kshot train` does before it trains
import torch  # noqa: E402
from maml_speed import LEARN2LEARN_SCRATCH, build_maml, meta_gradient  # noqa: E402

from kshot.data import load_omniglot  # noqa: E402
from kshot.data.sampler import episode_sampler  # noqa: E402


def main(reps: int) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    train = load_omniglot("train", "vinyals", None, allow_download=False)
    sampler = episode_sampler(train, 5, 1, 15, 32, seed=0)
    tasks = [sampler.task(train, j) for j in range(32)]
    learner = build_maml("kshot-serial", first_order=False)
    scratch = Path(LEARN2LEARN_SCRATCH)
    impls = {
        name: meta_gradient(name, learner, False, scratch) for name in ("kshot-serial", "learn2learn", "plain-loop")
    }
    times: dict[str, list[float]] = {name: [] for name in impls}
    for add_meta_gradient in impls.values():  # warm-up
        add_meta_gradient(tasks)
    for _ in range(reps):
        for name, add_meta_gradient in impls.items():
            learner.net.zero_grad()
            start = time.perf_counter()
            add_meta_gradient(tasks)
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(
            f"{name:12s} median {statistics.median(seconds):.3f} s per meta-iteration", [round(x, 2) for x in seconds]
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
