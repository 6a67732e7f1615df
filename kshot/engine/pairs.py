"""Verification training as a task family of the one trainer: a Siamese network on balanced
same/different pairs (not episodes), and the pair accuracy it is judged by."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from ..data.dataset import ClassIndexedDataset
from ..data.pairs import balanced_pairs
from ..learners.siamese import SiameseNet
from .devices import device_of
from .tasks import StepResult


def pair_logits(net: SiameseNet, dataset: ClassIndexedDataset, first, second):
    device = device_of(net)
    return net.same_logits(net.embed(dataset.fetch(first).to(device)), net.embed(dataset.fetch(second).to(device)))


class Pairs:
    """Step i trains on pairs [i * size, (i + 1) * size) of `steps * size` balanced pairs drawn
    once from the seed (so a run of a given length is reproducible and resumable)."""

    shardable: ClassVar[bool] = True

    def __init__(self, dataset: ClassIndexedDataset, steps: int, size: int, seed: int = 0):
        self.dataset = dataset
        self.first, self.second, self.same = balanced_pairs(dataset, steps * size, seed)

    def step(self, learner: SiameseNet, index: int, size: int) -> StepResult:
        sl = slice(index * size, (index + 1) * size)
        logits = pair_logits(learner, self.dataset, self.first[sl], self.second[sl])
        same = self.same[sl].to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, same.float())
        loss.backward()
        accuracy = ((logits > 0) == same).float().mean().item()
        return StepResult(loss.item(), 100 * accuracy)


@torch.no_grad()
def pair_accuracy(
    net: SiameseNet, dataset: ClassIndexedDataset, n_pairs: int = 10000, seed: int = 1
) -> tuple[float, float]:
    """(accuracy %, 95% CI %) of the 'same class' decision (P > 0.5) on balanced pairs."""
    net.eval()
    first, second, same = balanced_pairs(dataset, n_pairs, seed)
    correct = torch.cat(
        [
            (pair_logits(net, dataset, first[i : i + 2000], second[i : i + 2000]) > 0).cpu() == same[i : i + 2000]
            for i in range(0, n_pairs, 2000)
        ]
    ).double()
    mean = correct.mean().item()
    return 100 * mean, 100 * 1.96 * (mean * (1 - mean) / n_pairs) ** 0.5
