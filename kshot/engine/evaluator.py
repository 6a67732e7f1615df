"""Evaluation over many episodes: mean accuracy and its 95% confidence interval."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from ..data.dataset import ClassIndexedDataset
from ..data.sampler import episode_sampler
from ..learners import Learner, MetricLearner
from .devices import device_of


@dataclass
class EvalResult:
    accuracy: float  # percent
    ci95: float  # percent, 1.96 * std / sqrt(n)
    episodes: int
    seconds: float
    per_episode: Tensor

    def __str__(self) -> str:
        return f"{self.accuracy:.2f} +- {self.ci95:.2f}% over {self.episodes} episodes"


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval, 1.96 * std / sqrt(n) (0 for one value)."""
    v = values.double()
    n = v.numel()
    std = v.std(unbiased=True).item() if n > 1 else 0.0
    return v.mean().item(), 1.96 * std / math.sqrt(n)


def summarize(accuracies: Tensor, seconds: float) -> EvalResult:
    mean, ci = mean_ci95(accuracies * 100)
    return EvalResult(mean, ci, accuracies.numel(), seconds, accuracies)


@torch.no_grad()
def embed_all(learner: MetricLearner, dataset: ClassIndexedDataset, batch_size: int = 1000) -> Tensor:
    device = device_of(learner)
    parts = [
        learner.embed(dataset.fetch(torch.arange(i, min(i + batch_size, len(dataset)))).to(device))
        for i in range(0, len(dataset), batch_size)
    ]
    return torch.cat(parts)


def evaluate(
    learner: Learner,
    dataset: ClassIndexedDataset,
    way: int,
    shot: int,
    query: int = 15,
    episodes: int = 1000,
    seed: int = 0,
    reuse_features: bool = True,
    progress: bool = True,
    features: Tensor | None = None,
    within_groups: bool = False,
) -> EvalResult:
    """Accuracy on `episodes` seeded test episodes. Metric learners embed each image once
    (`reuse_features`), then every episode is indexing and a small matrix product; `features`
    passes embeddings already made (`embed_all`) for many evaluations of one model.
    `within_groups` draws each episode's classes from one alphabet (data/sampler.py)."""
    sampler = episode_sampler(dataset, way, shot, query, episodes, seed, within_groups)
    was_training = learner.training
    learner.eval()
    start = time.perf_counter()
    accs = torch.empty(episodes)
    if features is None and reuse_features and isinstance(learner, MetricLearner):
        features = embed_all(learner, dataset)
    device = device_of(learner)
    labels = torch.arange(way, device=device)
    s_labels, q_labels = labels.repeat_interleave(shot), labels.repeat_interleave(query)
    for i in tqdm(range(episodes), desc=f"eval {way}-way {shot}-shot", disable=not progress, leave=False):
        if features is not None:
            idx = torch.from_numpy(sampler.draw(i)[1]).to(device)
            with torch.no_grad():
                logits = learner.head(features[idx[:, :shot].reshape(-1)], s_labels, way)(
                    features[idx[:, shot:].reshape(-1)]
                )
        else:
            task = sampler.task(dataset, i).to(device)
            # No no_grad here: optimization-based learners differentiate inside adapt.
            logits = learner.adapt(task.support, task.support_labels, way, task.generator())(task.query).detach()
        accs[i] = (logits.argmax(1) == q_labels).float().mean()
    learner.train(was_training)
    return summarize(accs, time.perf_counter() - start)
