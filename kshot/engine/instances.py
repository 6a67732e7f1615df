"""Santoro et al.'s sequential protocol: an episode is a shuffled sequence of `instances` examples
of each of `way` classes (labels shuffled per episode), every step predicted before its label is
shown, and accuracy reported by how many times the step's class has been seen (its instance)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ..data.dataset import ClassIndexedDataset
from ..data.sampler import episode_sampler
from ..learners import SequenceLearner
from .evaluator import mean_ci95

REPORTED_INSTANCES = (1, 2, 3, 4, 5, 10)  # the columns of Santoro et al.'s Table 1


def instance_numbers(labels: Tensor, way: int) -> Tensor:
    """labels [B, T] -> [B, T]: at each step, the how-many-th showing of its class this is (1 = first)."""
    onehot = F.one_hot(labels, way)
    return (onehot.cumsum(1) * onehot).sum(-1)


@dataclass
class InstanceResult:
    accuracy: dict[int, float]  # instance -> percent
    ci95: dict[int, float]
    way: int
    instances: int
    episodes: int
    seconds: float

    def table(self) -> str:
        return "  ".join(f"{k}: {self.accuracy[k]:.1f} +- {self.ci95[k]:.1f}" for k in sorted(self.accuracy))


def sequence_batch(dataset: ClassIndexedDataset, sampler, first: int, count: int) -> tuple[Tensor, Tensor]:
    """Episodes first..first+count-1 as shuffled sequences: (inputs [B, T, ...], labels [B, T]).
    The order comes from each episode's own generator, so an episode is the same in any batch."""
    inputs, labels = [], []
    for i in range(first, first + count):
        task = sampler.task(dataset, i)
        order = torch.randperm(len(task.support_labels), generator=task.generator())
        inputs.append(task.support[order])
        labels.append(task.support_labels[order])
    return torch.stack(inputs), torch.stack(labels)


@torch.no_grad()
def evaluate_instances(
    learner: SequenceLearner,
    dataset: ClassIndexedDataset,
    way: int,
    instances: int = 10,
    episodes: int = 1000,
    seed: int = 0,
    batch: int = 50,
    progress: bool = True,
) -> InstanceResult:
    """Accuracy at each instance 1..`instances`, averaged per episode (each episode shows every class
    once at each instance), with a 95% interval over episodes."""
    sampler = episode_sampler(dataset, way, instances, 0, episodes, seed)
    was_training = learner.training
    learner.eval()
    start = time.perf_counter()
    per_episode = torch.empty(episodes, instances)
    bar = tqdm(total=episodes, desc="sequences", unit="episode", disable=not progress, leave=False)
    for first in range(0, episodes, batch):
        count = min(batch, episodes - first)
        inputs, labels = sequence_batch(dataset, sampler, first, count)
        correct = (learner.sequence_logits(inputs, labels).argmax(-1) == labels).float()
        seen = instance_numbers(labels, way)
        for k in range(1, instances + 1):
            per_episode[first : first + count, k - 1] = (correct * (seen == k)).sum(1) / way
        bar.update(count)
    bar.close()
    learner.train(was_training)
    stats = {k: mean_ci95(per_episode[:, k - 1] * 100) for k in range(1, instances + 1)}
    return InstanceResult(
        {k: m for k, (m, _) in stats.items()},
        {k: c for k, (_, c) in stats.items()},
        way,
        instances,
        episodes,
        time.perf_counter() - start,
    )
