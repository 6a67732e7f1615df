"""The AT&T / ORL faces (Samaria & Harter 1994): 40 people s1..s40, 10 grey photos each.

Splits for the enrollment experiment: people s1-s24 meta-train the embedding ("train"),
s25-s30 validate it and calibrate its "unknown" threshold ("val"), s31-s40 are never seen in
training or calibration ("test"); "trainval" is s1-s30, "all" everyone. Photos are 92x112 and
are resized to a square `image_size` (64 by default keeps the faces recognisable).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..paths import default_data_dir
from .dataset import ClassIndexedDataset
from .folder import load_folder
from .registry import DATASETS, DataOptions, DatasetSource

SPLITS = {
    "train": range(1, 25),
    "val": range(25, 31),
    "test": range(31, 41),
    "trainval": range(1, 31),
    "all": range(1, 41),
}


def load_orl(split: str = "train", data_dir: Path | None = None, image_size: int = 64) -> ClassIndexedDataset:
    if split not in SPLITS:
        raise DataError(f"ORL faces have splits {', '.join(SPLITS)}; there is no {split!r}")
    root = Path(data_dir or default_data_dir()) / "att_faces_orl"
    if not (root / "s1").is_dir():
        raise DataError(
            f"ORL faces not found at {root} (expected s1/1.pgm ... s40/10.pgm). They have no checksummed "
            "official download; put the AT&T face database there."
        )
    everyone = load_folder(root, "all", image_size, 1)
    index = {name: i for i, name in enumerate(everyone.class_names)}
    wanted = [f"s{i}" for i in SPLITS[split]]
    missing = [n for n in wanted if n not in index]
    if missing:
        raise DataError(f"{root} lacks the folders {', '.join(missing[:5])}")
    subset = everyone.subset([index[n] for n in wanted], name=f"orl/{split}")
    subset.meta.update({"dataset": "orl", "protocol": "s1-24/s25-30/s31-40", "split": split})
    return subset


@DATASETS.register("orl")
class ORLFaces(DatasetSource):
    summary = "AT&T/ORL faces, 40 people x 10 photos (train s1-s24, val s25-s30, test s31-s40); not downloaded"
    splits = tuple(SPLITS)

    def load(self, split: str, options: DataOptions) -> ClassIndexedDataset:
        return load_orl(split, options.data_dir, options.image_size)

    def status(self, options: DataOptions) -> str:
        root = options.root / "att_faces_orl"
        state = "found" if (root / "s1").is_dir() else "missing (no checksummed official download; put s1..s40 there)"
        return f"{state} in {root} (splits {', '.join(self.splits)})"
