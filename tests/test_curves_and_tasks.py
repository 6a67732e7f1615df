"""Accuracy curves over ways and shots, and task embeddings with their similarity figure."""

import json
from pathlib import Path

import numpy as np
import torch
from conftest import synthetic_dataset
from PIL import Image

from kshot.cli import main
from kshot.engine.build import build_learner
from kshot.engine.curves import curve_points
from kshot.engine.task_embedding import class_groups, embed_tasks, similarity

REPO = Path(__file__).resolve().parents[1]
PROTONET = REPO / "checkpoints" / "protonet-omniglot-1shot.safetensors"


def test_curve_points_cover_what_the_data_holds_and_say_what_they_skip():
    learner = build_learner("protonet", "conv4", {"in_channels": 1, "hidden": 8, "out_channels": 8})
    data = synthetic_dataset(12, per_class=6)
    points, notes = curve_points(learner, data, (2, 4, 20), (1, 5, 6), way_shot=1, shot_way=3, episodes=4)
    assert [(p.curve, p.way, p.shot) for p in points] == [
        ("ways", 2, 1),
        ("ways", 4, 1),
        ("shots", 3, 1),
        ("shots", 3, 5),
    ]
    assert [p.query for p in points] == [5, 5, 5, 1]  # a 6-image class leaves 1 query after 5 shots
    assert notes == ["skipped 20-way 1-shot: 12 test classes", "skipped 3-way 6-shot: the smallest class has 6 images"]
    assert all(0 <= p.accuracy <= 100 and p.episodes == 4 for p in points)


def test_curves_command_writes_the_figure_and_the_points(tmp_path, data_dir):
    out = tmp_path / "c.png"
    args = ["curves", str(PROTONET), "--ways", "5,10", "--shots", "1,5", "--episodes", "5", "--split", "val"]
    assert main([*args, "--out", str(out), "--data-dir", str(data_dir), "--no-download"]) == 0
    report = json.loads((tmp_path / "c.json").read_text())[0]
    assert [(p["curve"], p["way"], p["shot"]) for p in report["points"]] == [
        ("ways", 5, 1),
        ("ways", 10, 1),
        ("shots", 5, 1),
        ("shots", 5, 5),
    ]
    assert out.stat().st_size > 10_000


def test_tasks_group_by_alphabet_or_block_and_similarity_is_a_cosine():
    data = synthetic_dataset(6)
    data.class_names = ["A/1", "A/2", "B/1", "B/2", "B/3", "C/1"]
    assert class_groups(data) == {"A": [0, 1], "B": [2, 3, 4], "C": [5]}
    assert list(class_groups(data, 4).values()) == [[0, 1, 2, 3], [4, 5]]
    probe = build_learner("protonet", "conv4", {"in_channels": 1, "hidden": 8, "out_channels": 8})
    vectors = embed_tasks(probe, data, class_groups(data))
    assert all(v.shape == (2 * 8,) for v in vectors.values())
    sim = similarity(vectors)
    assert torch.allclose(sim, sim.T) and torch.allclose(sim.diagonal(), torch.ones(3), atol=1e-5)


def test_tasks_command_draws_a_users_folder(tmp_path):
    rng = np.random.default_rng(0)
    for c in range(4):
        folder = tmp_path / "photos" / f"class{c}"
        folder.mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(folder / f"{k}.png")
    out = tmp_path / "t.png"
    args = ["tasks", str(PROTONET), "--dataset", "folder", "--data-dir", str(tmp_path / "photos"), "--split", "all"]
    assert main([*args, "--group-size", "2", "--out", str(out)]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["tasks"] == ["classes 0-1", "classes 2-3"]
    assert main([*args, "--group-size", "4", "--out", str(out)]) == 2  # one task: nothing to compare
