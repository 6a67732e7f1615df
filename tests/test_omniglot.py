import zipfile

import pytest
import torch

from kshot.data import load_omniglot
from kshot.errors import DataError


def test_vinyals_split_counts(omniglot):
    assert [omniglot[s].num_classes for s in ("train", "val", "test")] == [4112, 688, 1692]
    for ds in omniglot.values():
        assert (ds.class_sizes == 20).all()
        assert ds.item_shape == (1, 28, 28) and ds.items.dtype == torch.uint8


def test_splits_are_disjoint_and_rotations_are_rotations(omniglot):
    names = [set(n.rsplit("/", 1)[0] for n in omniglot[s].class_names) for s in ("train", "val", "test")]
    assert [len(n) for n in names] == [1028, 172, 423]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    train = omniglot["train"]
    r0, r90 = (
        train.class_names.index("Angelic/character01/rot000"),
        train.class_names.index("Angelic/character01/rot090"),
    )
    assert torch.equal(torch.rot90(train.class_items(r0), 1, dims=(-2, -1)), train.class_items(r90))
    # ink is bright (inverted), background dark
    assert train.class_items(r0).mean() < 0.5


def test_lake_split_counts(data_dir):
    train = load_omniglot("train", "lake", data_dir, allow_download=False)
    test = load_omniglot("test", "lake", data_dir, allow_download=False)
    assert (train.num_classes, test.num_classes) == (964, 659)
    assert (len(train), len(test)) == (19280, 13180)


def test_lake_has_no_validation_split(data_dir):
    with pytest.raises(DataError, match="splits train, test, not 'val'"):
        load_omniglot("val", "lake", data_dir, allow_download=False)


def test_missing_data_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"data directory .*nowhere does not exist.*--data-dir"):
        load_omniglot("train", data_dir=tmp_path / "nowhere", allow_download=False, cache_dir=tmp_path / "cache")


def _fake_omniglot(root, png: bytes):
    (root / "omniglot").mkdir(parents=True)
    for set_name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(root / "omniglot" / f"{set_name}.zip", "w") as z:
            z.writestr(f"{set_name}/Alpha_{set_name}/character01/0001_01.png", png)


def test_corrupt_png_names_the_file(tmp_path):
    _fake_omniglot(tmp_path, b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(
        DataError,
        match=r"images_background.zip:images_background/Alpha_images_background/character01/0001_01.png: "
        r"not a readable image",
    ):
        load_omniglot("train", "lake", tmp_path, allow_download=False, cache_dir=tmp_path / "cache")


def test_truncated_zip_is_a_clear_error(tmp_path):
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_background.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="not a valid zip file"):
        load_omniglot("train", "lake", tmp_path, allow_download=False, cache_dir=tmp_path / "cache")


def test_cache_is_keyed_by_source(tmp_path):
    from io import BytesIO

    from PIL import Image

    def png(value):
        buf = BytesIO()
        Image.new("L", (105, 105), value).save(buf, "PNG")
        return buf.getvalue()

    _fake_omniglot(tmp_path, png(255))
    cache = tmp_path / "cache"
    first = load_omniglot("train", "lake", tmp_path, allow_download=False, cache_dir=cache)
    assert first.items.max() == 0 and len(list(cache.glob("*.safetensors"))) == 2
    again = load_omniglot("train", "lake", tmp_path, allow_download=False, cache_dir=cache)
    assert torch.equal(first.items, again.items) and len(list(cache.glob("*.safetensors"))) == 2
    # a changed source file must not be served from the old cache entry
    (tmp_path / "omniglot" / "images_background.zip").unlink()
    with zipfile.ZipFile(tmp_path / "omniglot" / "images_background.zip", "w") as z:
        z.writestr("images_background/Alpha/character01/0001_01.png", png(0))
    changed = load_omniglot("train", "lake", tmp_path, allow_download=False, cache_dir=cache)
    assert changed.items.min() == 255 and len(list(cache.glob("*.safetensors"))) == 3
