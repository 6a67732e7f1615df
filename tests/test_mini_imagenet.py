"""mini-ImageNet from a tiny generated folder in both layouts: the Ravi CSVs over images/, and class
folders; normalisation with the training split's statistics; clear errors for broken copies."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from kshot.data import load_dataset
from kshot.data.augment import augment
from kshot.errors import DataError

SPLIT_CLASSES = {"train": ["n01", "n02", "n03"], "val": ["n04", "n05"], "test": ["n06", "n07"]}
PER_CLASS = 3


def jpeg(colour, seed) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (84, 84, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def colour_of(wnid: str) -> tuple[int, int, int]:
    i = int(wnid[1:])
    return (30 * i, 255 - 30 * i, 120)


def make_csv_layout(root):
    images = root / "mini-imagenet" / "images"
    images.mkdir(parents=True)
    for split, classes in SPLIT_CLASSES.items():
        lines = ["filename,label"]
        for wnid in classes:
            for k in range(PER_CLASS):
                name = f"{wnid}{k:08d}.jpg"
                (images / name).write_bytes(jpeg(colour_of(wnid), k))
                lines.append(f"{name},{wnid}")
        (root / "mini-imagenet" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def make_folder_layout(root):
    for split, classes in SPLIT_CLASSES.items():
        for wnid in classes:
            folder = root / "mini-imagenet" / split / wnid
            folder.mkdir(parents=True)
            for k in range(PER_CLASS):
                (folder / f"{wnid}_{k}.jpg").write_bytes(jpeg(colour_of(wnid), k))
    return root


def load(root, split, cache):
    return load_dataset("mini-imagenet", split, "ravi", root, 84, False, 3)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("layout", [make_csv_layout, make_folder_layout])
def test_both_layouts_give_the_same_split_normalised_with_training_statistics(tmp_path, layout):
    root = layout(tmp_path / "data")
    train, test = load(root, "train", None), load(root, "test", None)
    assert train.class_names == SPLIT_CLASSES["train"] and test.class_names == SPLIT_CLASSES["test"]
    assert train.items.shape == (9, 3, 84, 84) and train.items.dtype == torch.uint8
    mean, std = train.meta["normalize"]
    assert test.meta["normalize"] == [mean, std]  # the test split uses the training statistics
    x = train.fetch(torch.arange(len(train)))
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)  # standardised over training
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3), atol=1e-2)
    red = torch.tensor(colour_of("n06")) / 255
    first = test.fetch(torch.tensor([0]))[0].mean((1, 2))
    assert torch.allclose(first * torch.tensor(std) + torch.tensor(mean), red, atol=0.02)
    assert (load(root, "val", None).meta["split"], train.meta["channels"]) == ("val", 3)


def test_a_warm_load_reads_the_cache_and_a_changed_file_is_decoded_again(tmp_path, monkeypatch):
    import kshot.data.mini_imagenet as mini

    root = make_csv_layout(tmp_path / "data")
    first = load(root, "val", None)

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(mini, "decode_image", no_decoding)
    assert torch.equal(load(root, "val", None).items, first.items)  # from the cache
    (root / "mini-imagenet" / "images" / "n0400000000.jpg").write_bytes(jpeg((0, 0, 0), 1) + b"\0")
    with pytest.raises(AssertionError, match="decoded again"):
        load(root, "val", None)


def test_missing_csv_missing_image_corrupt_image_and_small_class_are_named(tmp_path):
    root = make_csv_layout(tmp_path / "data")
    mini = root / "mini-imagenet"
    (mini / "test.csv").unlink()
    with pytest.raises(DataError, match=r"test\.csv is missing.*train\.csv, val\.csv and test\.csv"):
        load(root, "test", None)
    (mini / "images" / "n0200000001.jpg").unlink()
    with pytest.raises(DataError, match=r"train\.csv lists .*n0200000001\.jpg, which is missing"):
        load(root, "train", None)
    (mini / "images" / "n0200000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"n0200000001\.jpg: not a readable image"):
        load(root, "train", None)
    (mini / "images" / "n0200000001.jpg").write_bytes(jpeg((1, 2, 3), 0))
    (mini / "val.csv").write_text("filename,label\nn0400000000.jpg,n04\nn0500000000.jpg,n05\nn0500000001.jpg,n05\n")
    with pytest.raises(DataError, match="val class n04 has 1 image"):
        load(root, "val", None)
    (mini / "val.csv").write_text("file,class\n")
    with pytest.raises(DataError, match="header `filename,label`"):
        load(root, "val", None)


def test_nothing_there_says_where_and_what_layout(tmp_path):
    with pytest.raises(DataError, match="mini-ImageNet not found at .*images/ with train.csv"):
        load(tmp_path, "train", None)


def test_augmentation_is_seeded_and_keeps_shape():
    x = torch.rand(5, 3, 84, 84)
    g = lambda: torch.Generator().manual_seed(3)
    a, b = augment(x, g(), [[0.5] * 3, [0.2] * 3]), augment(x, g(), [[0.5] * 3, [0.2] * 3])
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
