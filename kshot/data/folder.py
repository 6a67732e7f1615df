"""A user's own images: one sub-folder per class.

    root/                      root/
      alice/1.jpg       or       train/<class>/...   val/<class>/...   test/<class>/...
      bob/...

Images are decoded once to `size` x `size` (grey or RGB) and cached like the
standard sets, keyed by the files' names, sizes and modification times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DataError
from ..paths import default_cache_dir
from .cache import cached_tensors
from .dataset import ClassIndexedDataset
from .images import decode_image
from .registry import DATASETS, DataOptions, DatasetSource

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val", "test")


# A flat folder's classes are split by a seeded shuffle of their sorted names: this share of them
# (at least 2 each) validates and tests, the rest trains.
HELD_OUT_SHARE = 0.2
SPLIT_SEED = 0


def folder_splits(root: Path) -> list[str]:
    """The split sub-folders present, or ['all'] when the classes sit directly under root."""
    present = [s for s in SPLITS if (root / s).is_dir()]
    return present or ["all"]


def split_classes(names: list[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """{train, val, test: class names} of a flat folder, a pure function of its class names."""
    if len(names) < 6:
        raise DataError(
            f"{len(names)} classes are too few to split into train/val/test (at least 6: 2 to validate, 2 to test); "
            "train on all of them with --train-split all --val-split none"
        )
    held = max(2, round(HELD_OUT_SHARE * len(names)))
    order = np.random.default_rng(seed).permutation(sorted(names))
    return {"val": sorted(order[:held]), "test": sorted(order[held : 2 * held]), "train": sorted(order[2 * held :])}


def load_folder(
    root: str | Path,
    split: str = "all",
    image_size: int = 28,
    channels: int = 1,
    cache_dir: Path | None = None,
    invert: bool = False,
) -> ClassIndexedDataset:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; give a folder with one sub-folder per class")
    splits = folder_splits(root)
    if splits == ["all"] and split in SPLITS:  # a flat folder: a seeded split of its classes
        everyone = load_folder(root, "all", image_size, channels, cache_dir, invert)
        names = split_classes(everyone.class_names)[split]
        index = {name: i for i, name in enumerate(everyone.class_names)}
        part = everyone.subset([index[n] for n in names], name=f"{root} ({split} classes)")
        part.meta.update(split=split, split_seed=SPLIT_SEED)
        return part
    if split not in splits:
        raise DataError(f"{root} has splits {', '.join(splits)}; there is no {split!r}")
    base = root if split == "all" else root / split
    classes = sorted(d for d in base.iterdir() if d.is_dir())
    files = {c.name: sorted(f for f in c.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes}
    empty = [name for name, fs in files.items() if not fs]
    if not classes or empty:
        raise DataError(
            f"{base}: every class needs a sub-folder with images; "
            + (f"these have none: {', '.join(empty[:5])}" if empty else "found no class folders")
        )
    listing = [(str(f.relative_to(base)), f.stat().st_size, f.stat().st_mtime_ns) for fs in files.values() for f in fs]

    def build():
        per_class = []
        for fs in tqdm(files.values(), desc=f"decoding {base}", unit="class", leave=False):
            per_class.append(
                torch.stack([decode_image(f.read_bytes(), str(f), image_size, channels, invert) for f in fs])
            )
        return {"images": torch.cat(per_class)}, {"names": list(files), "sizes": [len(t) for t in per_class]}

    key = {"root": str(base.resolve()), "files": listing, "size": image_size, "channels": channels, "invert": invert}
    tensors, info = cached_tensors(cache_dir or default_cache_dir(), "folder", key, build)
    meta = {"dataset": "folder", "protocol": str(root), "split": split, "image_size": image_size, "channels": channels}
    return ClassIndexedDataset.from_class_list(
        list(torch.split(tensors["images"], info["sizes"])), info["names"], f"{base}", meta
    )


@DATASETS.register("folder")
class ImageFolder(DatasetSource):
    summary = "your own images: --data-dir DIR with DIR/<class>/*.png, or DIR/{train,val,test}/<class>/..."
    splits = (*SPLITS, "all")

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        if options.data_dir is None:
            raise DataError("the folder data set needs --data-dir pointing at a folder with one sub-folder per class")
        return load_folder(options.data_dir, split, options.image_size, options.channels)

    def status(self, options: DataOptions) -> str:
        return "pass --data-dir DIR (DIR/<class>/*.png, or DIR/{train,val,test}/<class>/...)"
