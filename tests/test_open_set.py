"""Open set by default: a calibrated "unknown" threshold, set at the end of training on held-out
classes, that a new store starts with, and scores shown as calibrated confidences."""

import io

import numpy as np
import pytest
import torch
from conftest import synthetic_dataset
from PIL import Image

from kshot.engine.build import build_learner, learner_meta
from kshot.engine.config import TrainConfig
from kshot.engine.open_set import calibrate, fit_logistic
from kshot.engine.trainer import Trainer
from kshot.enroll import Enroller
from kshot.learners.protonet import ProtoNet


def test_the_threshold_accepts_about_the_stated_share_of_strangers():
    learner = ProtoNet(torch.nn.Flatten())  # raw pixels: the synthetic classes are far apart
    held_out = synthetic_dataset(classes=16, per_class=6, seed=3)
    result = calibrate(learner, held_out, far=0.05, rounds=100)
    assert result.measured_far <= 0.06 and result.measured_accept > 0.9
    assert result.confidence(result.threshold + 1e4) > result.confidence(result.threshold) > result.confidence(-1e9)
    stricter = calibrate(learner, held_out, far=0.01, rounds=100)
    assert stricter.threshold >= result.threshold


def test_logistic_fit_recovers_a_known_curve():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(20000, generator=g, dtype=torch.float64) * 20 - 10
    is_positive = torch.rand(20000, generator=g, dtype=torch.float64) < torch.sigmoid(0.8 * scores - 2.0)
    slope, intercept = fit_logistic(scores[is_positive], scores[~is_positive])
    # balanced weighting shifts the intercept by log(n_neg / n_pos); the slope is the curve's
    shift = float(np.log((~is_positive).sum().item() / is_positive.sum().item()))
    assert slope == pytest.approx(0.8, rel=0.1) and intercept == pytest.approx(-2.0 + shift, abs=0.3)


def png(image: torch.Tensor) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image[0].numpy()).save(out, "PNG")
    return out.getvalue()


def test_training_calibrates_the_best_model_and_a_new_store_starts_with_its_threshold(tmp_path):
    backbone = {"in_channels": 1, "hidden": 8, "out_channels": 8}
    torch.manual_seed(0)
    learner = build_learner("protonet", "conv4", backbone)
    meta = learner_meta("protonet", "conv4", backbone, {}) | {"data": {"image_size": 28, "channels": 1}}
    settings = TrainConfig(way=5, shot=1, query=3, episodes=20, val_every=10, val_episodes=20, val_query=4)
    Trainer(learner, synthetic_dataset(12), synthetic_dataset(8, seed=1), settings, tmp_path, meta, False).train()
    enroller = Enroller(tmp_path / "store.db", tmp_path / "best.safetensors")
    assert enroller.calibration is not None and enroller.calibration.far == 0.01
    assert enroller.threshold() == pytest.approx(enroller.calibration.threshold)

    people = synthetic_dataset(6, seed=7)
    for c in range(3):
        enroller.enroll(f"person{c}", [png(people.items[6 * c])])
    known, stranger = enroller.identify([png(people.items[1]), png(people.items[6 * 5])])
    assert known["name"] == "person0" and 0 <= known["confidence"] <= 1
    assert stranger["name"] == "unknown" and stranger["confidence"] < known["confidence"]


def test_a_uniform_image_is_refused_where_a_person_is_enrolled_or_identified(tmp_path):
    from enroll_fixtures import flat_png, save_model

    from kshot.enroll.service_core import UploadError

    enroller = Enroller(tmp_path / "s.db", save_model(tmp_path / "m"))
    for action in (lambda: enroller.enroll("x", [flat_png(40)]), lambda: enroller.identify([flat_png(40)])):
        with pytest.raises(UploadError, match="one flat colour"):
            action()
    assert enroller.store.classes() == []


def test_the_committed_face_model_names_a_known_face_and_calls_a_stranger_unknown(data_dir, tmp_path, capsys):
    from pathlib import Path

    from kshot.cli import main

    faces = data_dir / "att_faces_orl"
    if not (faces / "s31").is_dir():
        pytest.skip("ORL faces not in the data directory")
    model = str(Path(__file__).resolve().parents[1] / "checkpoints" / "protonet-orl-openset.safetensors")
    store = ["--store", str(tmp_path / "s.db"), "--model", model]
    for person in (31, 32, 33):
        assert main(["enroll", *store, f"s{person}", str(faces / f"s{person}" / "1.pgm")]) == 0
    capsys.readouterr()
    assert main(["identify", *store, str(faces / "s33" / "6.pgm"), str(faces / "s40" / "3.pgm")]) == 0
    known, stranger = capsys.readouterr().out.splitlines()
    assert known.split(": ")[1].startswith("s33 (") and known.split("(")[1].split(";")[0].endswith("%")
    assert stranger.split(": ")[1].startswith("unknown (")
