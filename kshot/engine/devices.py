"""Which device a run computes on (`--device`), and where a learner's tensors live.

Data sets and episodes are drawn on the CPU (their seeded generators are CPU generators, so an
episode is the same wherever it runs); each task family and the evaluator move what they hand a
learner to the learner's device. Checkpoints are always written from CPU copies.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch import nn

from ..errors import ConfigError


def device_of(module: nn.Module) -> torch.device:
    """Where the module's parameters (or, lacking any, its buffers) live; the CPU if it has none.
    Called at every training step: it looks at the first tensor only."""
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def resolve_device(name: str | None, distributed: bool = False) -> torch.device:
    """The device `--device NAME` asks for, checked to exist here. Under torchrun a bare "cuda"
    means this rank's own GPU (LOCAL_RANK)."""
    if name is None or name == "cpu":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name}: not a device name; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name}: this torch ({torch.__version__}) sees no CUDA GPU; install a CUDA build of "
                "torch on a machine with an NVIDIA GPU, or use --device cpu"
            )
        if device.index is None and distributed:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"--device {name}: no Apple GPU (MPS) here; use --device cpu")
        return device
    raise ConfigError(f"--device {name}: kshot runs on cpu, cuda or mps")
