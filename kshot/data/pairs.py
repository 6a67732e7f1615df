"""Balanced same/different pairs for verification-style training (Siamese networks)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .dataset import ClassIndexedDataset


def balanced_pairs(dataset: ClassIndexedDataset, n_pairs: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """(first, second, same): dataset indices of n_pairs pairs, exactly half of them (rounded
    down) of one class, the other half of two different classes, classes drawn uniformly."""
    sizes = dataset.class_sizes.numpy()
    if dataset.num_classes < 2 or (sizes < 2).any():
        raise DataError(f"{dataset.name}: pairs need at least 2 classes with at least 2 items each")
    rng = np.random.default_rng(seed)
    starts = dataset.offsets[:-1].numpy()
    n_same = n_pairs // 2
    same = np.zeros(n_pairs, dtype=bool)
    same[:n_same] = True
    c1 = rng.integers(0, len(sizes), n_pairs)
    shift = rng.integers(1, len(sizes), n_pairs)  # another class, uniformly
    c2 = np.where(same, c1, (c1 + shift) % len(sizes))
    i1 = rng.integers(0, sizes[c1])
    j = rng.integers(0, sizes[c2] - same)  # same class: skip the first item's own position
    i2 = np.where(same & (j >= i1), j + 1, j)
    perm = rng.permutation(n_pairs)
    to_tensor = lambda a: torch.from_numpy(a[perm])
    return to_tensor(starts[c1] + i1), to_tensor(starts[c2] + i2), to_tensor(same)
