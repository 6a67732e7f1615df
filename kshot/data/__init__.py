"""Data: class-indexed in-memory data sets, their loaders (DATASETS), and the episodic sampler."""

from __future__ import annotations

from pathlib import Path

from ..registry import import_submodules
from .dataset import ClassIndexedDataset
from .registry import DATASETS, DataOptions, DatasetSource
from .sampler import EpisodeSampler, Task, episode_sampler

import_submodules(__name__, __path__)  # every loader module registers itself

from .folder import load_folder  # noqa: E402  (re-exported for Python users)
from .mnist import load_mnist  # noqa: E402
from .omniglot import load_omniglot  # noqa: E402
from .orl import load_orl  # noqa: E402


def load_dataset(
    name: str,
    split: str,
    protocol: str = "vinyals",
    data_dir: str | Path | None = None,
    image_size: int = 28,
    allow_download: bool = True,
    channels: int = 1,
) -> ClassIndexedDataset:
    """One split of a registered data set. For `folder`, `data_dir` is the folder of class folders."""
    options = DataOptions(data_dir, protocol, image_size, channels, allow_download)
    return DATASETS.get(name)().load(split, options)


__all__ = [
    "DATASETS",
    "ClassIndexedDataset",
    "DataOptions",
    "DatasetSource",
    "EpisodeSampler",
    "Task",
    "episode_sampler",
    "load_dataset",
    "load_folder",
    "load_mnist",
    "load_omniglot",
    "load_orl",
]
