"""Keep freed memory inside the process during training (glibc's malloc only).

PyTorch's CPU tensors come from malloc. By default glibc returns the freed top of its heap
to the operating system, serves large blocks from fresh mmap'd pages, and gives each thread
its own arena. A meta-training step frees and re-allocates the same large activations on
every task, so the process page-faults on them again and again. Measured over 30 MAML
meta-iterations (benchmarks/malloc_faults.py, BENCHMARKS.md): 5-way, 2.44 million minor
faults with the defaults and 0.03 million with the settings below, peak memory 472 -> 493 MiB;
20-way, 40 -> 13 million faults, 0.112 -> 0.133 meta-iterations/s, 833 -> 881 MiB.

The settings hold for the whole process, so the library never applies them by itself: the
`kshot train`, `kshot eval` and `kshot sinusoid` commands call `keep_freed_memory()` at
start, and `KSHOT_MALLOC=default` turns that off. The cost is that the process keeps its
peak memory until it exits, which a training run does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
NEVER_TRIM = 2**31 - 1
# The largest mmap threshold glibc accepts on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX). Larger
# blocks are still mmap'd and returned when freed: with no mmap at all, a loop that frees and
# re-allocates one 40 MB tensor grew the heap by 300 MB before it reused the freed blocks.
LARGEST_MMAP_THRESHOLD = 32 * 2**20


def glibc():
    """The process's C library when it is glibc (it has `mallopt`), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for training loops: never trim the heap, serve blocks up to 32 MiB
    from the heap rather than from fresh mmap'd pages, and use one arena for all threads (task
    worker threads would otherwise each grow a heap of their own). Returns whether applied."""
    if os.environ.get("KSHOT_MALLOC", "").lower() == "default":
        return False
    libc = glibc()
    if libc is None:
        return False
    settings = ((M_TRIM_THRESHOLD, NEVER_TRIM), (M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD), (M_ARENA_MAX, 1))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
