"""The data sets kshot can load, by name, all behind one loader signature:

    DATASETS.get(name)().load(split, DataOptions(...)) -> ClassIndexedDataset

A new data set is one module in `kshot/data/` with a `@DATASETS.register("name")` class;
`kshot datasets`, `--help` and errors list it without further edits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..paths import default_data_dir
from ..registry import Registry
from .dataset import ClassIndexedDataset


@dataclass(frozen=True)
class DataOptions:
    """What any loader may need besides the split; each reads the fields that apply to it."""

    data_dir: str | Path | None = None  # the data directory (for `folder`: the folder of class folders)
    protocol: str = "vinyals"  # Omniglot's split protocol
    image_size: int = 28
    channels: int = 1
    allow_download: bool = True

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()


class DatasetSource:
    """One registered data set. `summary` and `splits` are shown by `kshot datasets` and `--help`."""

    summary: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ()

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        raise NotImplementedError

    def status(self, options: DataOptions) -> str:
        """Where the files are looked for and whether they are there (one line)."""
        raise NotImplementedError


DATASETS: Registry[type[DatasetSource]] = Registry("data set")
