"""Task families: what the one trainer draws at each step and how a step trains on it.

Step `i`'s batch is a pure function of (seed, i), whatever the family, so a resumed run
follows exactly the path an uninterrupted one would. Classification episodes are the usual
family; sine-wave regression (regression/sinusoid.py) and same/different pairs (pairs.py)
are others, trained by the same loop with the same checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..data.dataset import ClassIndexedDataset
from ..data.sampler import Task, episode_sampler
from ..learners import Learner


@dataclass
class StepResult:
    loss: float
    accuracy: float | None  # percent; None where the family has no accuracy (regression)


class TaskFamily(Protocol):
    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        """Draw batch `index` of `size` tasks and accumulate the learner's gradient on it."""
        ...


class Episodes:
    """N-way K-shot Q-query classification episodes from a class-indexed data set."""

    def __init__(self, dataset: ClassIndexedDataset, way: int, shot: int, query: int, seed: int = 0):
        self.dataset = dataset
        self.sampler = episode_sampler(dataset, way, shot, query, 0, seed)

    def tasks(self, index: int, size: int) -> list[Task]:
        return [self.sampler.task(self.dataset, index * size + j) for j in range(size)]

    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        tasks = self.tasks(index, size)
        loss, logits = learner.meta_step(tasks)
        labels = torch.stack([t.query_labels for t in tasks])
        return StepResult(loss, 100 * (logits.argmax(-1) == labels).float().mean().item())
