"""Data: class-indexed in-memory data sets, their loaders, and the episodic sampler."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .dataset import ClassIndexedDataset
from .folder import load_folder
from .mnist import load_mnist
from .omniglot import load_omniglot
from .orl import load_orl
from .sampler import EpisodeSampler, Task, episode_sampler

DATASETS = ("omniglot", "mnist", "orl", "folder")


def load_dataset(name: str, split: str, protocol: str = "vinyals", data_dir: str | Path | None = None,
                 image_size: int = 28, allow_download: bool = True, channels: int = 1) -> ClassIndexedDataset:
    """One split of a named data set. For `folder`, `data_dir` is the folder of class folders."""
    if name == "omniglot":
        return load_omniglot(split, protocol, Path(data_dir) if data_dir else None, image_size, allow_download=allow_download)
    if name == "mnist":
        return load_mnist(split, Path(data_dir) if data_dir else None, allow_download)
    if name == "orl":
        return load_orl(split, Path(data_dir) if data_dir else None, image_size)
    if name == "folder":
        if data_dir is None:
            raise DataError("the folder data set needs --data-dir pointing at a folder with one sub-folder per class")
        return load_folder(data_dir, split, image_size, channels)
    raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


__all__ = ["ClassIndexedDataset", "EpisodeSampler", "Task", "episode_sampler", "load_dataset", "load_folder",
           "load_mnist", "load_omniglot", "load_orl", "DATASETS"]
