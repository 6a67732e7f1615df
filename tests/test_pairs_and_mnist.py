import gzip

import pytest
import torch

from kshot.data import ClassIndexedDataset
from kshot.data.mnist import load_mnist, read_idx
from kshot.data.pairs import balanced_pairs
from kshot.errors import DataError


def test_balanced_pairs_are_what_they_claim():
    sizes = [5, 9, 3, 7]
    parts = [torch.full((n, 1), float(c)) for c, n in enumerate(sizes)]
    ds = ClassIndexedDataset.from_class_list(parts, list("abcd"), "toy")
    first, second, same = balanced_pairs(ds, 1001, seed=4)
    labels = ds.labels
    assert same.sum() == 500 and len(same) == 1001
    assert torch.equal(labels[first] == labels[second], same)
    assert not (first == second).any()  # a positive pair is two different items
    assert set(labels[first].tolist()) == {0, 1, 2, 3}
    again = balanced_pairs(ds, 1001, seed=4)
    assert all(torch.equal(x, y) for x, y in zip((first, second, same), again))


def test_pairs_need_two_items_per_class():
    ds = ClassIndexedDataset.from_class_list([torch.zeros(1, 1), torch.zeros(3, 1)], ["a", "b"], "toy")
    with pytest.raises(DataError, match="at least 2 items"):
        balanced_pairs(ds, 4)


def test_mnist_counts(data_dir):
    train, test = load_mnist("train", data_dir, False), load_mnist("test", data_dir, False)
    assert train.class_sizes.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert len(test) == 10000 and train.item_shape == (1, 28, 28)


def test_idx_with_wrong_magic_or_truncated_body_is_refused(tmp_path):
    bad = tmp_path / "x.gz"
    with gzip.open(bad, "wb") as f:
        f.write((2049).to_bytes(4, "big") + (10).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        read_idx(bad, 2051)
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad, 2049)
