"""The ORL faces split: 24 people to train on, 6 to validate and calibrate on, 10 never seen."""

import pytest

from kshot.data import load_dataset, load_orl
from kshot.errors import DataError


def test_people_split_24_train_6_val_10_unseen(data_dir):
    if not (data_dir / "att_faces_orl" / "s1").is_dir():
        pytest.skip("ORL faces not in the data directory")
    splits = {s: load_dataset("orl", s, data_dir=data_dir, image_size=32) for s in ("train", "val", "test", "trainval")}
    assert splits["train"].class_names == [f"s{i}" for i in range(1, 25)]
    assert splits["val"].class_names == [f"s{i}" for i in range(25, 31)]
    assert splits["test"].class_names == [f"s{i}" for i in range(31, 41)]
    assert splits["trainval"].class_names == splits["train"].class_names + splits["val"].class_names
    assert set(splits["trainval"].class_names).isdisjoint(splits["test"].class_names)
    assert splits["test"].class_sizes.tolist() == [10] * 10 and tuple(splits["test"].items.shape[1:]) == (1, 32, 32)


def test_missing_faces_and_bad_split_are_explained(tmp_path):
    with pytest.raises(DataError, match="ORL faces not found"):
        load_orl("train", tmp_path)
    with pytest.raises(DataError, match="no 'valid'"):
        load_orl("valid", tmp_path)
