"""Semi-supervised episodes (Ren et al. 2018, "Meta-learning for semi-supervised few-shot
classification"): a labelled support and query from N classes, plus unlabelled items, M from
each episode class and M from each of D distractor classes that the query never contains.

Each class's items are split once (seeded) into a labelled pool (the first `label_ratio` of
them) and an unlabelled pool. Support and query come from the labelled pool; unlabelled items
from the unlabelled pool, or, where every item is labelled (`label_ratio` 1, Ren et al.'s test
episodes), from the class's items left over after the support and query. Episode `i` is a pure
function of (seed, i), as for ordinary episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .dataset import ClassIndexedDataset
from .sampler import Task, episode_seed


@dataclass
class SemiSupervisedDraw:
    """Dataset indices of one episode."""

    classes: np.ndarray  # [way] episode classes (position = label)
    support: np.ndarray  # [way, shot]
    query: np.ndarray  # [way, query]
    unlabelled: np.ndarray  # [(way + distractors) * M]
    distractor: np.ndarray  # [(way + distractors) * M] bool


class SemiSupervisedSampler:
    def __init__(
        self,
        dataset: ClassIndexedDataset,
        way: int,
        shot: int,
        query: int,
        unlabelled: int,
        distractors: int = 0,
        label_ratio: float = 1.0,
        seed: int = 0,
        split_seed: int = 0,
    ):
        if not 0 < label_ratio <= 1:
            raise DataError(f"--label-ratio must be in (0, 1], got {label_ratio}")
        if unlabelled < 0 or distractors < 0:
            raise DataError("--unlabelled and --distractors must be >= 0")
        sizes = dataset.class_sizes.numpy()
        if way + distractors > len(sizes):
            raise DataError(
                f"{way}-way episodes with {distractors} distractor classes need {way + distractors} classes "
                f"but {dataset.name} has {len(sizes)}; lower --way or --distractors"
            )
        self.way, self.shot, self.query, self.m, self.distractors = way, shot, query, unlabelled, distractors
        self.seed, self.all_labelled = seed, label_ratio >= 1
        self.starts = dataset.offsets[:-1].numpy()
        # The labelled pool of class c: the first `labelled[c]` items of its fixed permutation.
        self.order = [np.random.default_rng([split_seed, c]).permutation(n) for c, n in enumerate(sizes)]
        self.labelled = np.maximum(1, (sizes * label_ratio).astype(np.int64)) if label_ratio < 1 else sizes
        need_labelled = shot + query + (unlabelled if self.all_labelled else 0)
        short = np.flatnonzero(self.labelled < need_labelled)
        if len(short):
            raise DataError(
                f"{len(short)} classes of {dataset.name} have fewer than {need_labelled} labelled items "
                f"(shot {shot} + query {query}{' + unlabelled ' + str(unlabelled) if self.all_labelled else ''}; "
                f"class {dataset.class_names[short[0]]!r} has {self.labelled[short[0]]} of {sizes[short[0]]}); "
                "lower --shot/--query/--unlabelled or raise --label-ratio"
            )
        if not self.all_labelled and (sizes - self.labelled < unlabelled).any():
            raise DataError(f"some classes of {dataset.name} have fewer than {unlabelled} unlabelled items")

    def draw(self, i: int) -> SemiSupervisedDraw:
        rng = np.random.default_rng([self.seed, i])
        chosen = rng.choice(len(self.order), self.way + self.distractors, replace=False)
        support, query, unlabelled = [], [], []
        for position, c in enumerate(chosen):
            labelled, rest = self.order[c][: self.labelled[c]], self.order[c][self.labelled[c] :]
            labelled = rng.permutation(labelled)
            if position < self.way:
                support.append(labelled[: self.shot])
                query.append(labelled[self.shot : self.shot + self.query])
                pool = labelled[self.shot + self.query :] if self.all_labelled else rest
            else:  # a distractor class lends only unlabelled items
                pool = self.order[c] if self.all_labelled else rest
            unlabelled.append(self.starts[c] + rng.permutation(pool)[: self.m])
        way = self.way
        return SemiSupervisedDraw(
            classes=chosen[:way],
            support=self.starts[chosen[:way], None] + np.stack(support),
            query=self.starts[chosen[:way], None] + np.stack(query),
            unlabelled=np.concatenate(unlabelled) if unlabelled else np.zeros(0, np.int64),
            distractor=np.repeat(np.arange(len(chosen)) >= way, self.m),
        )

    def task(self, dataset: ClassIndexedDataset, i: int) -> Task:
        d = self.draw(i)
        labels = torch.arange(self.way)
        return Task(
            support=dataset.fetch(torch.from_numpy(d.support.reshape(-1))),
            support_labels=labels.repeat_interleave(self.shot),
            query=dataset.fetch(torch.from_numpy(d.query.reshape(-1))),
            query_labels=labels.repeat_interleave(self.query),
            way=self.way,
            classes=torch.from_numpy(d.classes),
            seed=episode_seed(self.seed, i),
            unlabelled=dataset.fetch(torch.from_numpy(d.unlabelled)),
            distractor=torch.from_numpy(d.distractor),
        )
