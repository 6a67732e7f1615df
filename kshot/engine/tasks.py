"""Task families: what the one trainer draws at each step and how a step trains on it.

Step `i`'s batch is a pure function of (seed, i), whatever the family, so a resumed run
follows exactly the path an uninterrupted one would. Classification episodes are the usual
family; mini-batches of all training classes (the fine-tuning baselines' pretraining),
sine-wave regression (regression/sinusoid.py) and same/different pairs (pairs.py) are others,
trained by the same loop with the same checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..data.augment import augment
from ..data.dataset import ClassIndexedDataset
from ..data.sampler import Task, episode_sampler, episode_seed
from ..data.semi_supervised import SemiSupervisedSampler
from ..errors import ConfigError
from ..learners import Learner, SemiSupervisedLearner
from .config import TrainConfig
from .devices import device_of


@dataclass
class StepResult:
    loss: float
    accuracy: float | None  # percent; None where the family has no accuracy (regression)


class TaskFamily(Protocol):
    shardable: ClassVar[bool]
    """Whether step i of size s holds tasks i*s ... i*s+s-1, so that processes can split a step
    (engine/distributed.py)."""

    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        """Draw batch `index` of `size` tasks and accumulate the learner's gradient on it."""
        ...


class Episodes:
    """N-way K-shot Q-query classification episodes from a class-indexed data set, their images
    augmented (`data/augment.py`) if asked, with each episode's own seed."""

    shardable: ClassVar[bool] = True

    def __init__(
        self,
        dataset: ClassIndexedDataset,
        way: int,
        shot: int,
        query: int,
        seed: int = 0,
        augmentation: str = "none",
        within_groups: float = 0.0,
    ):
        """`within_groups`: the share of episodes whose classes come from one group (alphabet)."""
        self.dataset, self.augmentation = dataset, augmentation
        self.sampler = episode_sampler(dataset, way, shot, query, 0, seed, within_groups > 0, within_groups)

    def tasks(self, index: int, size: int) -> list[Task]:
        tasks = [self.sampler.task(self.dataset, index * size + j) for j in range(size)]
        return [self.augment(t) for t in tasks] if self.augmentation != "none" else tasks

    def augment(self, task: Task) -> Task:
        g = torch.Generator().manual_seed(task.seed + 1)  # not the learner's own stream (task.generator())
        normalize = self.dataset.meta.get("normalize")
        kind = self.augmentation
        return replace(
            task, support=augment(task.support, g, normalize, kind), query=augment(task.query, g, normalize, kind)
        )

    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        device = device_of(learner)
        tasks = [t.to(device) for t in self.tasks(index, size)]
        loss, logits = learner.meta_step(tasks)
        labels = torch.stack([t.query_labels for t in tasks])
        return StepResult(loss, 100 * (logits.argmax(-1) == labels).float().mean().item())


class SemiSupervisedEpisodes(Episodes):
    """Episodes with unlabelled items from their classes and from distractor classes, support and
    query drawn from the labelled share of each class (Ren et al. 2018). Augmentation, if asked,
    applies to the support and query."""

    def __init__(self, dataset: ClassIndexedDataset, settings: TrainConfig, augmentation: str = "none"):
        s = settings
        self.dataset, self.augmentation = dataset, augmentation
        self.sampler = SemiSupervisedSampler(
            dataset, s.way, s.shot, s.query, s.unlabelled, s.distractors, s.label_ratio, s.seed
        )


class Batches:
    """Ordinary mini-batches over all the training classes, for learners pretrained as one
    classifier (the fine-tuning baselines): each epoch is a seeded permutation of the items."""

    shardable: ClassVar[bool] = True

    def __init__(self, dataset: ClassIndexedDataset, batch_size: int, seed: int = 0, augmentation: str = "none"):
        if batch_size > len(dataset):
            batch_size = len(dataset)
        self.dataset, self.batch_size, self.seed, self.augmentation = dataset, batch_size, seed, augmentation
        self.per_epoch = len(dataset) // batch_size  # the last partial batch of an epoch is dropped

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, position = divmod(index, self.per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        chosen = torch.from_numpy(order[position * self.batch_size : (position + 1) * self.batch_size])
        x = self.dataset.fetch(chosen)
        if self.augmentation != "none":
            g = torch.Generator().manual_seed(episode_seed(self.seed, index))
            x = augment(x, g, self.dataset.meta.get("normalize"), self.augmentation)
        return x, self.dataset.labels[chosen]

    def step(self, learner: Learner, index: int, size: int) -> StepResult:
        """`size` batches (the meta-batch setting) make one step's gradient."""
        loss_sum, correct, seen = 0.0, 0, 0
        device = device_of(learner)
        for j in range(size):
            x, y = (t.to(device) for t in self.batch(index * size + j))
            logits = learner.batch_logits(x)
            loss = F.cross_entropy(logits, y) / size
            loss.backward()
            loss_sum += loss.item()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return StepResult(loss_sum, 100 * correct / seen)


def training_family(learner: Learner, dataset: ClassIndexedDataset, settings: TrainConfig) -> TaskFamily:
    """What the learner declares it trains on (`Learner.trains_on`), drawn from the data set."""
    s = settings
    kind = s.augment
    if learner.trains_on == "batches":
        if s.within_alphabet:
            raise ConfigError(f"{learner.method} trains on batches, not episodes: set within_alphabet = 0")
        return Batches(dataset, s.batch_size, s.seed, kind)
    if s.unlabelled and not isinstance(learner, SemiSupervisedLearner):
        raise ConfigError(f"{learner.method} cannot use unlabelled items; train semi-protonet, or set unlabelled = 0")
    if s.unlabelled or s.label_ratio < 1:
        if s.within_alphabet:
            raise ConfigError("semi-supervised episodes are not drawn within alphabets: set within_alphabet = 0")
        return SemiSupervisedEpisodes(dataset, s, kind)
    return Episodes(dataset, s.way, s.shot, s.query, s.seed, kind, s.within_alphabet)
