"""Training in several processes (torchrun): an execution strategy beside the trainer, not part
of any method.

    torchrun --nproc-per-node 2 --no-python kshot train --meta-batch 2 ...

Every rank builds the same learner from the same seed. A step's `meta_batch` tasks are split
into equal contiguous shares, rank r taking the r-th: since step i of size M holds tasks
i*M ... i*M+M-1 in every shardable family, rank r of W runs the family's step i*W+r of size
M/W, which holds exactly its share. Each rank's gradient is the mean over its share; averaging
the gradients over ranks gives the mean over the whole meta-batch, which is what one process
computes, so every rank takes the same optimizer step. Rank 0 alone validates, logs and saves;
on resume it reads the checkpoint and sends it to the others (the run directory need not be on
a shared disk). Floating-point buffers (BatchNorm running statistics) are averaged after each
step: a single process updates them task after task, so these alone differ slightly from it.
The resumed checkpoint travels as bytes in tensors, not as pickled objects.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.distributed as dist

from ..errors import ConfigError
from ..learners import Learner
from .devices import device_of
from .tasks import StepResult, TaskFamily


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Processes()


def join_from_environment(device: str | None = None) -> Processes:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK,
    MASTER_ADDR, ...): over nccl when the ranks train on CUDA GPUs (`--device cuda`), over gloo on
    CPUs. Without torchrun: one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group("nccl" if (device or "cpu").startswith("cuda") else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size())


def leave(processes: Processes, finished: bool) -> None:
    """Leave the process group; after a finished run, only once every rank is done (a rank that
    tears its connections down early can abort a peer still closing its own)."""
    if processes.active and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def end_process(processes: Processes) -> None:
    """After a finished run under torchrun, end the process at once (output flushed, files all
    closed by then). At interpreter exit, after all Python code has run, gloo's threads are
    sometimes torn down in an order that aborts the process ("terminate called without an active
    exception": 1 run in 20 under load here), and torchrun then reports the finished run as
    failed. One process alone returns normally."""
    if processes.active:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class ShardedTasks:
    """A task family of which this rank runs its share of each step, gradients averaged."""

    shardable: ClassVar[bool] = True

    def __init__(self, family: TaskFamily, learner: Learner, processes: Processes, size: int):
        if size % processes.world:
            raise ConfigError(
                f"--meta-batch {size} does not split evenly between {processes.world} processes; "
                f"use a multiple of {processes.world}"
            )
        if not family.shardable:
            raise ConfigError(
                f"{type(family).__name__} tasks are drawn as one block per step and cannot be split "
                "between processes; train them in one process (without torchrun)"
            )
        self.family, self.processes = family, processes
        self.params = [p for p in learner.parameters() if p.requires_grad]
        self.device = device_of(learner)  # nccl exchanges tensors on the GPU only
        self.buffers = [b for b in learner.buffers() if b.is_floating_point()]

    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        world, rank = self.processes.world, self.processes.rank
        result = self.family.step(learner, index * world + rank, size // world)
        self.average_gradients()
        self.average(self.buffers)
        summary = torch.tensor([result.loss, result.accuracy or 0.0], dtype=torch.float64, device=self.device)
        dist.all_reduce(summary)
        summary /= world
        return StepResult(summary[0].item(), None if result.accuracy is None else summary[1].item())

    def average_gradients(self) -> None:
        """Mean of the ranks' gradients. A parameter no rank touched keeps no gradient (as in one
        process, so the optimizer skips it); one that some rank touched gets zeros elsewhere."""
        touched = torch.tensor([p.grad is not None for p in self.params], dtype=torch.int32, device=self.device)
        dist.all_reduce(touched)
        grads = []
        for p, any_rank in zip(self.params, touched.tolist()):
            if any_rank:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                grads.append(p.grad)
        self.average(grads)

    def average(self, tensors: list[torch.Tensor]) -> None:
        """In place, in one message: flatten, sum over ranks, divide, scatter back."""
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.processes.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def file_from_main(processes: Processes, path: Path, scratch: Path, device: torch.device | str = "cpu") -> Path | None:
    """Rank 0's file at `path` (None where it has none), on every rank: the others receive its
    bytes as tensors (on `device`, the one the process group exchanges) and write them to
    `scratch`, so each rank reads it with the same checks."""
    if not processes.active:
        return path if path.exists() else None
    data = path.read_bytes() if processes.main and path.exists() else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    if int(size) == 0:
        return None
    buffer = (
        torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
        if processes.main
        else torch.empty(int(size), dtype=torch.uint8, device=device)
    )
    dist.broadcast(buffer, src=0)
    if processes.main:
        return path
    scratch.write_bytes(buffer.cpu().numpy().tobytes())
    return scratch
