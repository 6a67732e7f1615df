import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("KSHOT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "omniglot" / "images_background.zip").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("Omniglot not found: set KSHOT_DATA to the folder holding omniglot/")
    return d


@pytest.fixture(scope="session")
def omniglot(data_dir):
    from kshot.data import load_omniglot

    return {s: load_omniglot(s, "vinyals", data_dir, allow_download=False) for s in ("train", "val", "test")}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def synthetic_dataset(
    classes: int = 12, per_class: int = 6, size: int = 28, channels: int = 1, seed: int = 0, name: str = "synthetic"
):
    """A class-indexed data set with no files behind it: class c is a bright block in its own place
    (uint8 images, as the loaders make), items add noise."""
    from kshot.data import ClassIndexedDataset

    g = torch.Generator().manual_seed(seed)
    per = []
    for c in range(classes):
        base = torch.zeros(per_class, channels, size, size)
        row, col = divmod(c, size // 7)
        base[:, :, 7 * (row % 4) : 7 * (row % 4) + 7, 7 * col : 7 * col + 7] = 200
        per.append((base + 40 * torch.rand(per_class, channels, size, size, generator=g)).clamp(0, 255).to(torch.uint8))
    meta = {"dataset": name, "protocol": "synthetic", "image_size": size, "channels": channels}
    return ClassIndexedDataset.from_class_list(per, [f"class{c}" for c in range(classes)], name, meta)
