import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from kshot.engine import checkpoint
from kshot.engine.build import build_learner, learner_meta, load_learner
from kshot.errors import CheckpointError


def save_protonet(path, **method_args):
    net = build_learner("protonet", "conv4", {"in_channels": 1}, method_args)
    net.eval()
    with torch.no_grad():  # give BatchNorm non-default statistics so the round trip is meaningful
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    meta = learner_meta("protonet", "conv4", {"in_channels": 1}, method_args) | {"kind": "model"}
    checkpoint.save(path, {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    return net


def test_round_trip_gives_identical_outputs(tmp_path):
    net = save_protonet(tmp_path / "best", distance="cosine")
    loaded, meta = load_learner(tmp_path / "best.safetensors")
    x, y = torch.rand(6, 1, 28, 28), torch.arange(3).repeat(2)
    q = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(net.adapt(x, y, 3)(q), loaded.adapt(x, y, 3)(q))
    assert meta["method"] == "protonet" and meta["method_args"] == {"distance": "cosine"}
    assert (tmp_path / "best.json").exists()  # human-readable copy of the metadata


def test_run_directory_and_json_path_are_accepted(tmp_path):
    save_protonet(tmp_path / "best")
    load_learner(tmp_path)
    load_learner(tmp_path / "best.json")


def test_checkpoint_of_another_method_is_refused(tmp_path):
    save_protonet(tmp_path / "best")
    with pytest.raises(CheckpointError, match=r"is a 'protonet' checkpoint, not 'maml'"):
        load_learner(tmp_path / "best.safetensors", expect_method="maml")


def test_foreign_safetensors_is_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a kshot checkpoint"):
        load_learner(tmp_path / "other.safetensors")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    meta = learner_meta("protonet", "conv4", {"in_channels": 1}, {}) | {"kind": "model"}
    checkpoint.save(tmp_path / "bad", {"model.encoder.extra": torch.zeros(1)}, meta)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_learner(tmp_path / "bad.safetensors")


def test_weights_of_another_size_are_refused_with_a_checkpoint_error(tmp_path):
    net = build_learner("protonet", "conv4", {"in_channels": 1, "hidden": 8})
    meta = learner_meta("protonet", "conv4", {"in_channels": 1}, {}) | {"kind": "model"}  # claims 64 channels
    checkpoint.save(tmp_path / "bad", {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    with pytest.raises(CheckpointError, match=r"weights do not fit.*resized \['encoder"):
        load_learner(tmp_path / "bad.safetensors")


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/kshot-pwned-marker", "w"))


def test_pickle_disguised_as_checkpoint_is_not_executed(tmp_path):
    import os

    marker = "/tmp/kshot-pwned-marker"
    if os.path.exists(marker):
        os.unlink(marker)
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_learner(tmp_path / "evil.safetensors")
    assert not os.path.exists(marker)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_learner(tmp_path / "nope.safetensors")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    save_protonet(tmp_path / "best")
    before = (tmp_path / "best.safetensors").read_bytes()
    with pytest.raises(AttributeError):  # not a tensor
        checkpoint.save(tmp_path / "best", {"model.x": object()}, {"method": "protonet"})
    assert (tmp_path / "best.safetensors").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_saved_files_are_readable_like_normally_created_files(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        save_protonet(tmp_path / "best")
    finally:
        os.umask(old)
    for name in ("best.safetensors", "best.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_reptile_inner_adam_moments_survive_a_checkpoint(tmp_path):
    from kshot.data.sampler import Task

    args = {"way": 3, "input_shape": [1, 28, 28], "inner_optimizer": "adam", "inner_lr": 0.001, "inner_steps": 2}
    net = build_learner("reptile", "conv4", {"norm": "task", "channels_last": False}, args)
    labels = torch.arange(3).repeat(2)
    net.meta_step([Task(torch.rand(6, 1, 28, 28), labels, torch.rand(6, 1, 28, 28), labels, 3, torch.arange(3))])
    meta = learner_meta("reptile", "conv4", {"norm": "task", "channels_last": False}, args) | {"kind": "model"}
    checkpoint.save(tmp_path / "best", {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    loaded, _ = load_learner(tmp_path / "best.safetensors")
    assert loaded.adam_state.count() == 2
    saved, restored = net.adam_state.moments(), loaded.adam_state.moments()
    assert saved.keys() == restored.keys()
    for a, b in zip(saved.values(), restored.values()):
        assert torch.equal(a, b)
    # The first convolution's bias has no gradient (BatchNorm subtracts it): its moments are 0.
    assert sum(bool(a.abs().sum() > 0) for a in saved.values()) >= len(saved) - 2


def test_a_format_1_gradient_checkpoint_loads_with_its_positional_names(tmp_path):
    """Format 1 named MAML's network parts by position (net.0 body, net.2 head), and metric learners
    took a typed `dim`; both are read as format 2."""
    args = {"way": 3, "input_shape": [1, 28, 28]}
    net = build_learner("maml", "conv4", {"norm": "task", "channels_last": False}, args)
    old_names = {
        f"model.{k.replace('net.body.', 'net.0.').replace('net.head.', 'net.2.')}": v
        for k, v in net.state_dict().items()
    }
    meta = learner_meta("maml", "conv4", {"norm": "task", "channels_last": False}, args) | {"kind": "model"}
    path = checkpoint.save(tmp_path / "old", old_names, meta)
    _, header = checkpoint.load(path)
    header["version"] = 1
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in old_names.items()}, str(path), metadata={"kshot": json.dumps(header)})
    loaded, meta = load_learner(path)
    assert meta["version"] == checkpoint.VERSION
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
