"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015) from its official zip files.

Two protocols:
- ``vinyals``: the split of Vinyals et al. (2016), 1028/172/423 characters, each
  rotated by 0/90/180/270 degrees into 4 classes (4112/688/1692 classes), 28x28.
- ``lake``: Lake's original split, train on `images_background` (964 characters),
  test on `images_evaluation` (659 characters); no validation classes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import DataError
from ..paths import default_cache_dir, default_data_dir
from .cache import cached_tensors, file_digest
from .dataset import ClassIndexedDataset
from .download import Remote, download
from .images import decode_image
from .registry import DATASETS, DataOptions, DatasetSource

_LAKE = "https://github.com/brendenlake/omniglot/raw/master/python"
_SPLITS = "https://raw.githubusercontent.com/jakesnell/prototypical-networks/master/data/omniglot/splits/vinyals"
ZIPS = {
    "images_background": Remote(
        "images_background.zip", f"{_LAKE}/images_background.zip", "md5:68d2efa1b9178cc56df9314c21c6e718"
    ),
    "images_evaluation": Remote(
        "images_evaluation.zip", f"{_LAKE}/images_evaluation.zip", "md5:6b91aef0f799c5bb55b94e3f2daec811"
    ),
}
SPLIT_FILES = {
    "train": Remote(
        "splits/vinyals/train.txt",
        f"{_SPLITS}/train.txt",
        "sha256:984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
    ),
    "val": Remote(
        "splits/vinyals/val.txt",
        f"{_SPLITS}/val.txt",
        "sha256:11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
    ),
    "test": Remote(
        "splits/vinyals/test.txt",
        f"{_SPLITS}/test.txt",
        "sha256:845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
    ),
    "trainval": Remote(
        "splits/vinyals/trainval.txt",
        f"{_SPLITS}/trainval.txt",
        "sha256:5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
    ),
}
PROTOCOLS = {"vinyals": ("train", "val", "test", "trainval"), "lake": ("train", "test")}


def _omniglot_dir(data_dir: Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def _require(remote: Remote, root: Path, allow_download: bool) -> Path:
    path = root / "omniglot" / remote.filename
    if path.exists():
        return path
    if not allow_download:
        if not root.exists():
            raise DataError(
                f"data directory {root} does not exist; pass --data-dir (or set KSHOT_DATA) to the folder "
                "that holds omniglot/, or allow downloading"
            )
        raise DataError(f"{path} is missing; put the official {remote.filename} there or allow downloading")
    return download(remote, path.parent.parent if "/" in remote.filename else path.parent)


def _decode_zip(path: Path, image_size: int) -> tuple[list[torch.Tensor], list[str]]:
    """All characters of one zip: a [20, 1, S, S] uint8 tensor and 'Alphabet/characterNN' each."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DataError(f"{path} is not a valid zip file ({e}); delete it and download it again") from e
    groups: dict[str, list[str]] = {}
    with archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if name.endswith(".png") and len(parts) == 4:
                groups.setdefault(f"{parts[1]}/{parts[2]}", []).append(name)
        images, names = [], []
        for char, members in tqdm(sorted(groups.items()), desc=f"decoding {path.name}", unit="char", leave=False):
            images.append(
                torch.stack([decode_image(archive.read(m), f"{path}:{m}", image_size, invert=True) for m in members])
            )
            names.append(char)
    if not names:
        raise DataError(f"{path} holds no Omniglot images (expected <set>/<Alphabet>/<characterNN>/*.png)")
    return images, names


def load_characters(
    data_dir: Path | None = None, image_size: int = 28, cache_dir: Path | None = None, allow_download: bool = True
) -> dict[str, dict[str, torch.Tensor]]:
    """{'images_background': {'Alphabet/characterNN': uint8 [20,1,S,S]}, 'images_evaluation': {...}}, cached."""
    root = _omniglot_dir(data_dir)
    result = {}
    for set_name, remote in ZIPS.items():
        zip_path = _require(remote, root, allow_download)

        def build(zip_path=zip_path):
            images, names = _decode_zip(zip_path, image_size)
            sizes = [len(t) for t in images]
            return {"images": torch.cat(images)}, {"names": names, "sizes": sizes}

        key = {"source": file_digest(zip_path), "size": image_size, "set": set_name}
        tensors, info = cached_tensors(cache_dir or default_cache_dir(), f"omniglot-{set_name}", key, build)
        chunks = torch.split(tensors["images"], info["sizes"])
        result[set_name] = dict(zip(info["names"], chunks))
    return result


def load_omniglot(
    split: str = "train",
    protocol: str = "vinyals",
    data_dir: Path | None = None,
    image_size: int = 28,
    cache_dir: Path | None = None,
    allow_download: bool = True,
) -> ClassIndexedDataset:
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown Omniglot protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if split not in PROTOCOLS[protocol]:
        raise DataError(f"Omniglot protocol {protocol!r} has splits {', '.join(PROTOCOLS[protocol])}, not {split!r}")
    sets = load_characters(data_dir, image_size, cache_dir, allow_download)
    meta = {"dataset": "omniglot", "protocol": protocol, "split": split, "image_size": image_size}
    name = f"omniglot/{protocol}/{split}"
    if protocol == "lake":
        chars = sets["images_background" if split == "train" else "images_evaluation"]
        return ClassIndexedDataset.from_class_list(list(chars.values()), list(chars), name, meta)
    by_char = {**sets["images_background"], **sets["images_evaluation"]}
    split_path = _require(SPLIT_FILES[split], _omniglot_dir(data_dir), allow_download)
    per_class, names = [], []
    for line in split_path.read_text().split():
        char, _, rot = line.rpartition("/")
        if char not in by_char or not rot.startswith("rot"):
            raise DataError(f"{split_path}: line {line!r} names no Omniglot character")
        # Counter-clockwise rotation by a multiple of 90 degrees makes a new class.
        per_class.append(torch.rot90(by_char[char], int(rot[3:]) // 90, dims=(-2, -1)))
        names.append(line)
    return ClassIndexedDataset.from_class_list(per_class, names, name, meta)


@DATASETS.register("omniglot")
class Omniglot(DatasetSource):
    summary = (
        "Omniglot handwritten characters; --protocol vinyals (4112/688/1692 rotated classes, 28x28) "
        "or lake (background / evaluation alphabets)"
    )
    splits = PROTOCOLS["vinyals"]

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        return load_omniglot(
            split, options.protocol, options.data_dir, options.image_size, allow_download=options.allow_download
        )

    def status(self, options: DataOptions) -> str:
        files = [z.filename for z in ZIPS.values()] + [s.filename for s in SPLIT_FILES.values()]
        found = sum((options.root / "omniglot" / f).exists() for f in files)
        state = "found" if found == len(files) else f"{found}/{len(files)} files found; the rest download on first use"
        protocols = "; ".join(f"--protocol {p}: {', '.join(s)}" for p, s in PROTOCOLS.items())
        return f"{state} in {options.root / 'omniglot'} ({protocols})"
