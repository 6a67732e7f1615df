"""mini-ImageNet (Vinyals et al. 2016) with Ravi & Larochelle's (2017) class split: 64 train,
16 val and 20 test classes of 84x84 RGB photos (600 each in the full set).

Two layouts of DATA_DIR/mini-imagenet/ are read, the full set or any subset of it:
    images/<file>.jpg with train.csv, val.csv, test.csv (header `filename,label`, label a WordNet id)
    train/<wnid>/*.jpg, val/<wnid>/*.jpg, test/<wnid>/*.jpg (class folders)
Images are decoded once into the cache. Every split is standardised with the *training* split's
per-channel mean and standard deviation, so test images see the statistics the model trained on.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import DataError
from ..paths import default_cache_dir
from .cache import cached_tensors
from .dataset import ClassIndexedDataset
from .folder import IMAGE_SUFFIXES
from .images import decode_image
from .registry import DATASETS, DataOptions, DatasetSource

SPLITS = ("train", "val", "test")
FOLDER = "mini-imagenet"
MIN_IMAGES_PER_CLASS = 2  # one to support and one to query; episodes may need more (the sampler says)
LAYOUT_HELP = (
    "expected images/ with train.csv, val.csv and test.csv (Ravi & Larochelle's split files), "
    "or class folders train/<wnid>/*.jpg, val/<wnid>/..., test/<wnid>/..."
)


def read_split_csv(path: Path) -> dict[str, list[str]]:
    """A Ravi split file -> {label: [file names]}, classes in order of first appearance."""
    if not path.is_file():
        raise DataError(f"mini-ImageNet split file {path} is missing; {LAYOUT_HELP}")
    classes: dict[str, list[str]] = {}
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip() for h in header] != ["filename", "label"]:
            raise DataError(f"{path}: the first line must be the header `filename,label`, not {header!r}")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DataError(f"{path}, line {line}: expected `filename,label`, got {','.join(row)!r}")
            classes.setdefault(row[1].strip(), []).append(row[0].strip())
    if not classes:
        raise DataError(f"{path} lists no images")
    return classes


def split_files(root: Path, split: str) -> dict[str, list[Path]]:
    """{class: image paths} of one split, from class folders if present, else from the CSV."""
    folder = root / split
    if folder.is_dir():
        classes = {
            d.name: sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(folder.iterdir())
            if d.is_dir()
        }
        if not classes:
            raise DataError(f"{folder} holds no class folders; {LAYOUT_HELP}")
    else:
        if not (root / "images").is_dir() and not (root / f"{split}.csv").exists():
            raise DataError(f"mini-ImageNet not found at {root}; {LAYOUT_HELP}. It has no official download")
        classes = {
            label: [root / "images" / name for name in names]
            for label, names in read_split_csv(root / f"{split}.csv").items()
        }
        missing = [p for paths in classes.values() for p in paths if not p.is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DataError(f"{split}.csv lists {missing[0]}, which is missing{more}; restore it or drop its line")
    few = {c: len(p) for c, p in classes.items() if len(p) < MIN_IMAGES_PER_CLASS}
    if few:
        name, count = next(iter(few.items()))
        raise DataError(
            f"mini-ImageNet {split} class {name} has {count} image(s); every class needs at least "
            f"{MIN_IMAGES_PER_CLASS} (one to support, one to query)"
        )
    return classes


def split_key(root: Path, split: str, image_size: int) -> tuple[dict[str, list[Path]], dict]:
    """(the split's files by class, the cache key of its decoded images: names, sizes, mtimes)."""
    files = split_files(root, split)
    listing = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for ps in files.values() for p in ps]
    return files, {"root": str(root.resolve()), "split": split, "files": listing, "size": image_size}


def decode_split(root: Path, split: str, image_size: int, cache_dir: Path | None) -> ClassIndexedDataset:
    files, key = split_key(root, split, image_size)

    def build():
        per_class = [
            torch.stack([decode_image(p.read_bytes(), str(p), image_size, 3) for p in paths])
            for paths in tqdm(files.values(), desc=f"decoding mini-imagenet {split}", unit="class", leave=False)
        ]
        return {"images": torch.cat(per_class)}, {"names": list(files), "sizes": [len(t) for t in per_class]}

    tensors, info = cached_tensors(cache_dir or default_cache_dir(), "mini-imagenet", key, build)
    return ClassIndexedDataset.from_class_list(
        list(torch.split(tensors["images"], info["sizes"])), info["names"], f"mini-imagenet/{split}"
    )


def channel_statistics(images: torch.Tensor) -> list[list[float]]:
    """uint8 [n, C, H, W] -> [[mean per channel], [std per channel]] of the pixels scaled to [0, 1]."""
    mean = torch.zeros(images.shape[1], dtype=torch.float64)
    square = torch.zeros_like(mean)
    for chunk in images.split(1000):  # in chunks: a float copy of the whole split would be large
        x = chunk.double().div_(255.0)
        mean += x.sum((0, 2, 3))
        square += x.pow(2).sum((0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean /= count
    std = (square / count - mean.pow(2)).clamp_min(1e-12).sqrt()
    return [[round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]]


def training_statistics(root: Path, image_size: int, cache_dir: Path | None) -> list[list[float]]:
    """The training split's channel statistics, cached on their own: loading the test split then
    reads only the test images, not the 9,600 (or 38,400) training ones too."""

    def build():
        train = decode_split(root, "train", image_size, cache_dir)
        return {"normalize": torch.tensor(channel_statistics(train.items), dtype=torch.float64)}, {}

    _, key = split_key(root, "train", image_size)
    tensors, _ = cached_tensors(cache_dir or default_cache_dir(), "mini-imagenet-stats", key, build)
    return tensors["normalize"].tolist()


def load_mini_imagenet(
    split: str = "train", data_dir: str | Path | None = None, image_size: int = 84, cache_dir: Path | None = None
) -> ClassIndexedDataset:
    if split not in SPLITS:
        raise DataError(f"mini-ImageNet has splits {', '.join(SPLITS)}; there is no {split!r}")
    root = DataOptions(data_dir).root / FOLDER
    data = decode_split(root, split, image_size, cache_dir)
    data.meta = {
        "dataset": "mini-imagenet",
        "protocol": "ravi",
        "split": split,
        "image_size": image_size,
        "channels": 3,
        "normalize": training_statistics(root, image_size, cache_dir),
    }
    return data


@DATASETS.register("mini-imagenet")
class MiniImageNet(DatasetSource):
    summary = (
        "mini-ImageNet, Ravi & Larochelle split (64/16/20 classes), 84x84 RGB, standardised with the "
        "training split's channel statistics; images/ + CSVs or class folders; not downloaded"
    )
    splits = SPLITS

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        if options.channels != 3:
            raise DataError("mini-ImageNet is colour: use --channels 3")
        return load_mini_imagenet(split, options.data_dir, options.image_size)

    def status(self, options: DataOptions) -> str:
        root = options.root / FOLDER
        if (root / "train").is_dir():
            state = "found (class folders)"
        elif (root / "train.csv").is_file():
            state = "found (images/ and split CSVs)"
        else:
            state = "missing (no official download; put images/ and the split CSVs, or class folders, there)"
        return f"{state} in {root} (splits {', '.join(self.splits)})"
