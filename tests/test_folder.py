import pytest
from PIL import Image

from kshot.data import episode_sampler, load_folder
from kshot.errors import DataError


def make_folder(root, classes=4, per_class=6, size=(40, 30)):
    for c in range(classes):
        d = root / f"person{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", size, 40 * c + i).save(d / f"{i}.png")
    return root


def test_folder_dataset_classes_and_sampling(tmp_path):
    ds = load_folder(make_folder(tmp_path / "faces"), image_size=16, cache_dir=tmp_path / "cache")
    assert ds.num_classes == 4 and len(ds) == 24 and ds.item_shape == (1, 16, 16)
    assert ds.class_names == ["person0", "person1", "person2", "person3"]
    task = episode_sampler(ds, 3, 2, 2, 1).task(ds, 0)
    assert task.support.shape == (6, 1, 16, 16)


def test_folder_with_split_subfolders_and_rgb(tmp_path):
    make_folder(tmp_path / "d" / "train", classes=3)
    make_folder(tmp_path / "d" / "test", classes=2)
    ds = load_folder(tmp_path / "d", "test", image_size=8, channels=3, cache_dir=tmp_path / "cache")
    assert ds.num_classes == 2 and ds.item_shape == (3, 8, 8)
    with pytest.raises(DataError, match="has splits train, test; there is no 'val'"):
        load_folder(tmp_path / "d", "val", cache_dir=tmp_path / "cache")


def test_corrupt_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / "faces")
    (root / "person2" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"person2/broken.jpg: not a readable image"):
        load_folder(root, cache_dir=tmp_path / "cache")


def test_class_without_images_is_named(tmp_path):
    root = make_folder(tmp_path / "faces")
    (root / "nobody").mkdir()
    with pytest.raises(DataError, match="these have none: nobody"):
        load_folder(root, cache_dir=tmp_path / "cache")


def test_too_few_images_for_the_episode_names_the_class(tmp_path):
    root = make_folder(tmp_path / "faces", per_class=3)
    ds = load_folder(root, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"'person0' has 3"):
        episode_sampler(ds, 2, 2, 2, 1)
