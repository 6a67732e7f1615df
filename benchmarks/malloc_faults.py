"""Page faults, speed and peak memory of 30 MAML meta-iterations under given glibc malloc settings.

    python benchmarks/malloc_faults.py WORKERS WAY [MALLOPT_PARAM VALUE ...]

WAY 5: 1-shot 15-query tasks, meta-batch 32; WAY 20: 1-shot 15-query, meta-batch 16. The
optional pairs go to glibc's mallopt before anything else runs: `-1 2147483647 -3 33554432 -8 1`
is what kshot.allocator.keep_freed_memory() sets (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD,
M_ARENA_MAX); `-4 0` (M_MMAP_MAX) serves every block from the heap. Prints it/s, the peak RSS
after every 5 iterations (MiB), minor page faults and system seconds. Run on an idle machine.
"""

import ctypes
import resource
import sys
import time

settings = [int(v) for v in sys.argv[3:]]
libc = ctypes.CDLL("libc.so.6")
for param, value in zip(settings[::2], settings[1::2]):  # before torch allocates anything
    libc.mallopt(param, value)
import torch  # noqa: E402

from kshot.data import load_omniglot  # noqa: E402
from kshot.data.sampler import episode_sampler  # noqa: E402
from kshot.engine.build import build_learner  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)
workers, way = int(sys.argv[1]), int(sys.argv[2])
train = load_omniglot("train", "vinyals", None, allow_download=False)
sampler = episode_sampler(train, way, 1, 15, 10000, seed=0)
learner = build_learner(
    "maml",
    "conv4",
    {"norm": "task", "channels_last": False},
    {"way": way, "input_shape": [1, 28, 28], "vectorize": "loop", "workers": workers},
)
meta_batch = 32 if way == 5 else 16
peaks = []
start, faults_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(30):
    learner.meta_step([sampler.task(train, i * meta_batch + j) for j in range(meta_batch)])
    if i % 5 == 4:
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)
r = resource.getrusage(resource.RUSAGE_SELF)
print(
    sys.argv[1:],
    f"{30 / (time.perf_counter() - start):.3f} it/s",
    "maxrss every 5:",
    peaks,
    "faults",
    r.ru_minflt - faults_before,
    f"sys {r.ru_stime:.1f}",
    flush=True,
)
