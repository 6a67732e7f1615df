"""How the tasks of a meta-batch are run, kept apart from what each algorithm computes per task:
one `torch.func.vmap` over the stacked tasks, or a per-task loop that, on a CPU, runs its tasks
side by side in worker threads.

`vectorize="auto"` picks vmap on a GPU and the loop on a CPU, where vmap's batched-weight
convolutions measured 1.6-2.8x slower than the loop (Conv-4, 5-way 1-shot, meta-batch 4, one
thread; BENCHMARKS.md). Threads: on a CPU, tasks side by side in threads of one intra-op thread
each beat one task at a time spread over all threads (a task's tensors are too small to split
well). Results come back in task order, so callers sum them in a fixed order and the result
does not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets.norm import vmap_safe
from .functional import Functional

T = TypeVar("T")
R = TypeVar("R")
VECTORIZE = ("auto", "vmap", "loop")


def stack_tasks(tasks: Sequence[Task]) -> list[Tensor]:
    """[support, support labels, query, query labels], each stacked over the tasks (for vmap)."""
    return [
        torch.stack([getattr(t, name) for t in tasks])
        for name in ("support", "support_labels", "query", "query_labels")
    ]


def map_tasks(fn: Callable[[T], R], tasks: Sequence[T], workers: int, functional: Functional) -> Iterator[R]:
    """fn(task) for each task, yielded in task order, computed in `workers` threads when workers > 1
    (each thread calls its own replica of the functional's module)."""
    if workers <= 1 or len(tasks) <= 1:
        yield from (fn(t) for t in tasks)
        return
    intra_op = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(min(workers, len(tasks)), initializer=functional.replica) as pool:
            yield from pool.map(fn, tasks)
    finally:
        torch.set_num_threads(intra_op)


class TaskBatching:
    """The execution strategy of a gradient learner's meta-batch (no algorithm in here)."""

    def __init__(self, vectorize: str = "auto", workers: int = 0):
        if vectorize not in VECTORIZE:
            raise ValueError(f"vectorize must be one of {', '.join(VECTORIZE)}, not {vectorize!r}")
        if workers < 0:
            raise ValueError("workers must be >= 0 (0: one per torch thread on a CPU)")
        self.vectorize, self.workers = vectorize, workers

    def uses_vmap(self, net: nn.Module, tasks: int, vmappable: bool = True) -> bool:
        """Whether to vmap `tasks` tasks over `net`. Never with a torch BatchNorm layer: its fused
        kernel gives wrong second-order gradients under vmap (measured, torch 2.13), and its running
        statistics are updated in place; the backbone's TaskBatchNorm2d avoids both in `vmap_safe()`."""
        if tasks < 2 or not vmappable:
            return False
        if any(isinstance(m, nn.modules.batchnorm._NormBase) for m in net.modules()):
            return False
        on_gpu = next(net.parameters()).is_cuda
        return self.vectorize == "vmap" or (self.vectorize == "auto" and on_gpu)

    def threads(self, net: nn.Module) -> int:
        """Threads for the per-task loop: one per torch thread on a CPU unless set. Never with
        buffers (a torch BatchNorm's running statistics would be updated in a thread's copy)."""
        if any(True for _ in net.buffers()) or next(net.parameters()).is_cuda:
            return 1
        return self.workers or torch.get_num_threads()

    def vmapped(self, fn: Callable[..., R], shared: object, tasks: Sequence[Task]) -> R:
        """fn(shared, support, support_labels, query, query_labels) for all tasks at once, outputs
        stacked over the tasks (`shared` is passed to every task as it is)."""
        with vmap_safe():
            return torch.func.vmap(fn, in_dims=(None, 0, 0, 0, 0))(shared, *stack_tasks(tasks))

    def each(self, fn: Callable[[T], R], tasks: Sequence[T], net: nn.Module, functional: Functional) -> Iterator[R]:
        """fn(task) per task, in task order, in `threads(net)` threads."""
        return map_tasks(fn, tasks, self.threads(net), functional)
