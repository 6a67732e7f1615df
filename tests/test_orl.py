"""The ORL faces split: 30 people to train on, 10 never seen."""

import pytest

from kshot.data import load_dataset, load_orl
from kshot.errors import DataError


def test_people_split_30_train_10_unseen(data_dir):
    if not (data_dir / "att_faces_orl" / "s1").is_dir():
        pytest.skip("ORL faces not in the data directory")
    train, test = load_orl("train", data_dir, 32), load_dataset("orl", "test", data_dir=data_dir, image_size=32)
    assert train.class_names == [f"s{i}" for i in range(1, 31)]
    assert test.class_names == [f"s{i}" for i in range(31, 41)]
    assert set(train.class_names).isdisjoint(test.class_names)
    assert test.class_sizes.tolist() == [10] * 10 and tuple(test.items.shape[1:]) == (1, 32, 32)


def test_missing_faces_and_bad_split_are_explained(tmp_path):
    with pytest.raises(DataError, match="ORL faces not found"):
        load_orl("train", tmp_path)
    with pytest.raises(DataError, match="no 'val'"):
        load_orl("val", tmp_path)
