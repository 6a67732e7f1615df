"""MNIST (LeCun, Cortes & Burges) from the four official idx .gz files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..paths import default_data_dir
from .dataset import ClassIndexedDataset
from .download import Remote, download
from .registry import DATASETS, DataOptions, DatasetSource

_HOME = "https://yann.lecun.com/exdb/mnist"
FILES = {
    "train": (
        Remote(
            "train-images-idx3-ubyte.gz", f"{_HOME}/train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"
        ),
        Remote(
            "train-labels-idx1-ubyte.gz", f"{_HOME}/train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"
        ),
    ),
    "test": (
        Remote(
            "t10k-images-idx3-ubyte.gz", f"{_HOME}/t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"
        ),
        Remote(
            "t10k-labels-idx1-ubyte.gz", f"{_HOME}/t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c"
        ),
    ),
}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An idx array (big-endian header: magic, then one uint32 per dimension)."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); delete it and download it again") from e
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{path}: idx magic number {found}, expected {magic}; is this the right file?")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(
            f"{path}: holds {body.size} bytes of data, its header says {int(np.prod(dims))}; file is truncated"
        )
    return body.reshape(dims)


def load_mnist(split: str = "train", data_dir: Path | None = None, allow_download: bool = True) -> ClassIndexedDataset:
    if split not in FILES:
        raise DataError(f"MNIST has splits train, test, not {split!r}")
    root = (Path(data_dir) if data_dir else default_data_dir()) / "mnist"
    paths = []
    for remote in FILES[split]:
        path = root / remote.filename
        if not path.exists():
            if not allow_download:
                raise DataError(f"{path} is missing; put the official MNIST file there or allow downloading")
            download(remote, root)
        paths.append(path)
    images = read_idx(paths[0], 2051)
    labels = read_idx(paths[1], 2049)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    order = np.argsort(labels, kind="stable")
    per_class = np.bincount(labels, minlength=10)
    chunks = torch.split(torch.from_numpy(images[order].copy()).unsqueeze(1), per_class.tolist())
    return ClassIndexedDataset.from_class_list(
        list(chunks),
        [str(d) for d in range(10)],
        f"mnist/{split}",
        {"dataset": "mnist", "protocol": "standard", "split": split, "image_size": 28},
    )


@DATASETS.register("mnist")
class MNIST(DatasetSource):
    summary = "MNIST digits from the four official idx files (used by `kshot pairs`)"
    splits = tuple(FILES)

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        return load_mnist(split, options.data_dir, options.allow_download)

    def status(self, options: DataOptions) -> str:
        files = [r.filename for pair in FILES.values() for r in pair]
        have = sum((options.root / "mnist" / f).exists() for f in files)
        state = "found" if have == len(files) else f"{have}/{len(files)} files found; the rest download on first use"
        return f"{state} in {options.root / 'mnist'} (splits {', '.join(self.splits)})"
