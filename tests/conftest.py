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
