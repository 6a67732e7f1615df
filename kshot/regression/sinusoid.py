"""The sinusoid task family (Finn et al. 2017, section 5.1): y = A sin(x - phase) with
amplitude A ~ U[0.1, 5], phase ~ U[0, pi], inputs x ~ U[-5, 5]. Task i is a pure function
of (seed, i), like the classification episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SineBatch:
    support_x: Tensor  # [tasks, K, 1]
    support_y: Tensor
    query_x: Tensor  # [tasks, Q, 1]
    query_y: Tensor
    amplitude: Tensor  # [tasks]
    phase: Tensor


class SinusoidTasks:
    amplitude = (0.1, 5.0)
    phase = (0.0, math.pi)
    x_range = (-5.0, 5.0)

    def __init__(self, seed: int = 0):
        self.seed = seed

    def batch(self, index: int, tasks: int, shots: int, queries: int) -> SineBatch:
        """Meta-batch `index`: `tasks` sine waves, `shots` support and `queries` query points each."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        uniform = lambda lo_hi, *shape: lo_hi[0] + (lo_hi[1] - lo_hi[0]) * torch.rand(*shape, generator=g)
        amp, phase = uniform(self.amplitude, tasks), uniform(self.phase, tasks)
        x = uniform(self.x_range, tasks, shots + queries, 1)
        y = self.curve(amp, phase, x)
        return SineBatch(x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:], amp, phase)

    @staticmethod
    def curve(amplitude: Tensor, phase: Tensor, x: Tensor) -> Tensor:
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))
