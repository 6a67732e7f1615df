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


def make_textured_folder(root, classes=10, per_class=6):
    """Classes told apart by a bright stripe in their own place (uniform images carry nothing)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"person{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (32, 32)).astype(np.uint8)
            pixels[:, 3 * c : 3 * c + 3] = 230
            Image.fromarray(pixels).save(root / f"person{c}" / f"{i}.png")
    return root


def test_a_flat_folder_is_split_into_train_val_test_classes_by_a_seed(tmp_path):
    root = make_textured_folder(tmp_path / "people", classes=10)
    parts = {s: load_folder(root, s, image_size=16, cache_dir=tmp_path / "cache") for s in ("train", "val", "test")}
    names = {s: set(d.class_names) for s, d in parts.items()}
    assert [len(names[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert names["train"] | names["val"] | names["test"] == {f"person{c}" for c in range(10)}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    again = load_folder(root, "test", image_size=16, cache_dir=tmp_path / "cache")
    assert again.class_names == parts["test"].class_names  # the same split every time


def test_too_few_classes_to_split_names_the_flags(tmp_path):
    root = make_textured_folder(tmp_path / "few", classes=4)
    with pytest.raises(DataError, match="--train-split all --val-split none"):
        load_folder(root, "train", cache_dir=tmp_path / "cache")


def test_train_and_eval_on_a_flat_folder_need_no_extra_flags(tmp_path, capsys):
    import json

    from kshot.cli import main
    from kshot.engine.build import load_learner

    root = make_textured_folder(tmp_path / "people", classes=10, per_class=6)
    run = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--data-dir", str(root), "--out", str(run), "--episodes", "6"]
    assert main([*args, "--val-every", "3", "--image-size", "32", "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "classes split by seed 0 into 6 to train, 2 to validate" in said
    assert "--way lowered from 60 to 6" in said and "--val-query lowered from 15 to 5" in said
    _, meta = load_learner(run)
    assert len(meta["data"]["classes"]["train"]) == 6 and meta["config"]["way"] == 6
    assert main(["eval", str(run), "--episodes", "20", "--quiet", "--record", str(tmp_path / "r.jsonl")]) == 0
    row = json.loads((tmp_path / "r.jsonl").read_text())
    assert (row["way"], row["query"], row["split"]) == (2, 5, "test")
    assert "--way lowered from 5 to 2" in capsys.readouterr().err


def test_the_readme_folder_example_runs_as_written(tmp_path, capsys, monkeypatch):
    """The README's two commands for a folder of one's own, with a short run added."""
    import re
    import shlex
    from pathlib import Path

    from kshot.cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = re.findall(r"^kshot (train --dataset folder .*|eval runs/mine)$", readme, re.M)
    assert len(commands) == 2, commands
    make_textured_folder(tmp_path / "my_photos", classes=10, per_class=6)
    monkeypatch.chdir(tmp_path)
    train, evaluate = (shlex.split(c) for c in commands)
    assert main([*train, "--episodes", "4", "--val-every", "2", "--image-size", "32", "--quiet"]) == 0
    assert main([*evaluate, "--episodes", "10", "--quiet"]) == 0
    assert "5-way" not in capsys.readouterr().out  # two test classes: the default way was lowered to fit
