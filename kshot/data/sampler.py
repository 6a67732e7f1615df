"""Episodic N-way K-shot Q-query task sampling, seeded and reproducible.

Episode `i` is a pure function of `(seed, i)`, so a resumed run sees exactly the
episodes an uninterrupted run would, and any episode can be drawn on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler

from ..errors import DataError
from .dataset import ClassIndexedDataset


@dataclass
class Task:
    """One episode. Labels are 0..way-1 in the order the classes were drawn."""

    support: Tensor  # [way * shot, *item]
    support_labels: Tensor  # [way * shot]
    query: Tensor  # [way * query, *item]
    query_labels: Tensor  # [way * query]
    way: int
    classes: Tensor  # [way] dataset class ids, position = episode label
    seed: int = 0  # of the episode's own randomness, from (sampler seed, episode index)
    # Semi-supervised episodes (data/semi_supervised.py) also carry unlabelled items, some from
    # the episode's classes and some from distractor classes (True in `distractor`).
    unlabelled: Tensor | None = None  # [m, *item]
    distractor: Tensor | None = None  # [m] bool

    def generator(self) -> torch.Generator:
        """A fresh generator of this episode's randomness (a method that shuffles draws from it),
        so a task is reproducible however and wherever it is run."""
        return torch.Generator().manual_seed(self.seed)

    def to(self, device: torch.device | str) -> Task:
        """The same episode with its tensors on `device` (itself if they are there already)."""
        device = torch.device(device)
        if self.support.device == device:
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)
        return replace(
            self,
            support=move(self.support),
            support_labels=move(self.support_labels),
            query=move(self.query),
            query_labels=move(self.query_labels),
            classes=move(self.classes),
            unlabelled=move(self.unlabelled),
            distractor=move(self.distractor),
        )


def episode_seed(seed: int, episode: int) -> int:
    """The seed of episode `episode`'s own randomness, a pure function of (seed, episode)."""
    return int(np.random.SeedSequence([seed, episode, 1]).generate_state(1)[0])


class EpisodeSampler(Sampler[Tensor]):
    """Yields, per episode, a LongTensor of dataset indices of shape [way * (shot + query)],
    class-major: for each drawn class its `shot` support items then its `query` items.

    Usable as a `batch_sampler` of a torch DataLoader, or through `task(i)` which
    builds the tensors directly from an in-memory `ClassIndexedDataset`.
    """

    def __init__(
        self,
        class_sizes: Sequence[int] | Tensor,
        way: int,
        shot: int,
        query: int,
        episodes: int,
        seed: int = 0,
        class_names: Sequence[str] | None = None,
        source: str = "dataset",
        groups: Sequence[int] | None = None,
        group_share: float = 1.0,
    ):
        """`groups` (a group id per class, such as an Omniglot alphabet) makes an episode draw its
        classes from one group, chosen uniformly among the groups with at least `way` classes:
        every episode, or the share `group_share` of them (the others draw from all classes)."""
        sizes = np.asarray(class_sizes.tolist() if isinstance(class_sizes, Tensor) else class_sizes, dtype=np.int64)
        if way < 1 or shot < 0 or query < 0 or shot + query < 1 or episodes < 0:
            raise DataError(f"invalid episode shape: way={way} shot={shot} query={query} episodes={episodes}")
        if way > len(sizes):
            raise DataError(f"{way}-way episodes need {way} classes but {source} has only {len(sizes)}; lower --way")
        self.groups: list[np.ndarray] | None = None
        if groups is not None:
            ids = np.asarray(groups)
            members = [np.flatnonzero(ids == g) for g in np.unique(ids)]
            self.groups = [m for m in members if len(m) >= way]
            if not self.groups:
                raise DataError(
                    f"no group of {source} has {way} classes (the largest has {max(map(len, members))}); lower --way"
                )
        needed = shot + query
        small = np.flatnonzero(sizes < needed)
        if len(small):
            names = class_names or [str(c) for c in range(len(sizes))]
            shown = ", ".join(f"{names[c]!r} has {sizes[c]}" for c in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            raise DataError(
                f"{len(small)} class{'es' if len(small) > 1 else ''} of {source} "
                f"{'have' if len(small) > 1 else 'has'} fewer than shot+query = {shot}+{query} = {needed} items: "
                f"{shown}{more}. Lower --shot/--query or give those classes more images."
            )
        self.sizes, self.way, self.shot, self.query, self.episodes, self.seed = sizes, way, shot, query, episodes, seed
        self.group_share = group_share
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.max_size = int(sizes.max())
        self.uniform = bool((sizes == sizes[0]).all())

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(self.episodes):
            yield self.indices(i)

    def draw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(classes [way], dataset indices [way, shot+query]) of episode i."""
        rng = np.random.default_rng([self.seed, i])
        # A share below 1 takes one more draw, so episodes of a share of 1 are unchanged by the option.
        if self.groups is None or (self.group_share < 1 and rng.random() >= self.group_share):
            classes = rng.choice(len(self.sizes), self.way, replace=False)
        else:
            classes = rng.choice(self.groups[rng.integers(len(self.groups))], self.way, replace=False)
        n = self.shot + self.query
        if self.max_size <= 4096:
            # One argsort of random keys picks n distinct items per class for all classes at once.
            keys = rng.random((self.way, self.max_size))
            if not self.uniform:
                keys[np.arange(self.max_size)[None, :] >= self.sizes[classes][:, None]] = np.inf
            pos = np.argsort(keys, axis=1)[:, :n]
        else:
            pos = np.stack([rng.choice(self.sizes[c], n, replace=False) for c in classes])
        return classes, self.starts[classes][:, None] + pos

    def indices(self, i: int) -> Tensor:
        return torch.from_numpy(self.draw(i)[1].reshape(-1))

    def task(self, dataset: ClassIndexedDataset, i: int) -> Task:
        classes, idx = self.draw(i)
        idx = torch.from_numpy(idx)
        labels = torch.arange(self.way)
        return Task(
            support=dataset.fetch(idx[:, : self.shot].reshape(-1)),
            support_labels=labels.repeat_interleave(self.shot),
            query=dataset.fetch(idx[:, self.shot :].reshape(-1)),
            query_labels=labels.repeat_interleave(self.query),
            way=self.way,
            classes=torch.from_numpy(classes),
            seed=episode_seed(self.seed, i),
        )


def class_groups(dataset: ClassIndexedDataset) -> list[int]:
    """A group id per class from the part of its name before the first "/" (an Omniglot
    character's alphabet). A data set whose names have no "/" has no groups, and is refused."""
    prefixes = [name.split("/")[0] for name in dataset.class_names]
    if all("/" not in name for name in dataset.class_names):
        raise DataError(
            f"{dataset.name} names no groups of classes (no 'group/class' names): "
            "drop --within-alphabet (within_alphabet in a training config)"
        )
    ids = {p: k for k, p in enumerate(dict.fromkeys(prefixes))}
    return [ids[p] for p in prefixes]


def episode_sampler(
    dataset: ClassIndexedDataset,
    way: int,
    shot: int,
    query: int,
    episodes: int,
    seed: int = 0,
    within_groups: bool = False,
    group_share: float = 1.0,
) -> EpisodeSampler:
    """Episodes of `dataset`; `within_groups` draws each episode's classes (or, with `group_share`
    below 1, that share of the episodes') from one group of `class_groups` (Lake et al.'s
    within-alphabet one-shot challenge)."""
    groups = class_groups(dataset) if within_groups else None
    return EpisodeSampler(
        dataset.class_sizes, way, shot, query, episodes, seed, dataset.class_names, dataset.name, groups, group_share
    )
