"""Paper settings and every reported row's settings are shipped config files, checked on load."""

import json
from pathlib import Path

import pytest

from kshot.engine.config import TrainConfig, preset_names, read_config
from kshot.errors import ConfigError
from kshot.learners import METHODS

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = sorted(p for p in (REPO / "checkpoints").glob("*.json") if "config" in json.loads(p.read_text()))


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_into_valid_settings(name):
    config = TrainConfig.from_dict(read_config(name))
    assert config.method in METHODS


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.stem)
def test_each_committed_checkpoint_has_a_preset_that_reproduces_its_settings(path):
    recorded = {k: v for k, v in json.loads(path.read_text())["config"].items() if k != "data_dir"}
    preset = TrainConfig.from_dict(read_config(path.stem)).to_dict()
    # Every recorded setting; older checkpoints predate settings added since (their defaults are
    # what ran then: adam, step, 1, no clipping, no augmentation, batches unused by episodes, and
    # fully labelled episodes, no rotated classes, no episodes drawn within an alphabet).
    assert {k: preset[k] for k in recorded} == recorded
    added_since = {"optimizer", "lr_schedule", "meta_batch", "grad_clip", "augment", "batch_size"}
    added_since |= {"unlabelled", "distractors", "label_ratio", "rotations", "precision", "within_alphabet"}
    assert set(preset) - set(recorded) <= {"data_dir"} | added_since


def test_every_paper_preset_named_by_a_method_exists():
    for _, cls in METHODS.items():
        if cls.paper_preset is not None:
            assert cls.paper_preset in preset_names()


def test_method_paper_settings_are_the_base_layer():
    c = TrainConfig.from_dict({"method": "maml"})
    assert (c.way, c.meta_batch, c.lr) == (5, 32, 1e-3)
    assert TrainConfig.from_dict({"method": "maml", "meta_batch": 4}).meta_batch == 4
    r = TrainConfig.from_dict({"method": "reptile"})
    assert (r.optimizer, r.lr_schedule) == ("sgd", "linear")


def test_settings_of_the_wrong_type_or_name_are_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('way = "five"\n')
    with pytest.raises(ConfigError, match="way must be int"):
        read_config(bad)
    bad.write_text("wayy = 5\n")
    with pytest.raises(ConfigError, match="unknown setting.*wayy"):
        read_config(bad)
    with pytest.raises(ConfigError, match="no preset of that name; presets: .*paper-maml"):
        read_config("maml-omniglot-99w")
