import json

import pytest
import torch

from kshot.engine.build import load_learner
from kshot.engine.config import TrainConfig
from kshot.engine.evaluator import evaluate, summarize
from kshot.engine.trainer import Trainer
from kshot.errors import CheckpointError, ConfigError


def tiny(data_dir, **kw):
    base = dict(data_dir=str(data_dir), way=5, shot=1, query=2, episodes=6, val_every=3, val_episodes=5,
                log_every=2, lr_step=2, checkpoint_seconds=1e9, backbone_args={"hidden": 8, "out_channels": 8})
    return TrainConfig(**(base | kw))


def test_resume_equals_uninterrupted_run(data_dir, tmp_path):
    straight = Trainer(tiny(data_dir), tmp_path / "a", progress=False)
    straight.train()
    first = Trainer(tiny(data_dir), tmp_path / "b", progress=False)
    draw = first.sampler.task

    def interrupt_at_episode_3(dataset, i):  # Ctrl-C after 3 episodes, mid log window
        if i == 3:
            raise KeyboardInterrupt
        return draw(dataset, i)

    first.sampler.task = interrupt_at_episode_3
    with pytest.raises(KeyboardInterrupt):
        first.train()
    second = Trainer(tiny(data_dir), tmp_path / "b", progress=False)
    assert second.resume() and second.episode == 3
    second.train()
    for (k, a), b in zip(straight.learner.state_dict().items(), second.learner.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert straight.scheduler.get_last_lr() == second.scheduler.get_last_lr()
    log_a = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(l) for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    drop_time = lambda rows: [{k: round(v, 4) for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert drop_time(log_a) == drop_time(log_b) and len(log_a) == 4  # episodes 2, 3 (val), 4, 6


def test_resume_with_other_settings_is_refused(data_dir, tmp_path):
    Trainer(tiny(data_dir, episodes=3), tmp_path, progress=False).train()
    with pytest.raises(CheckpointError, match="other settings \\(lr\\)"):
        Trainer(tiny(data_dir, lr=0.5), tmp_path, progress=False).resume()


def test_best_checkpoint_records_its_settings(data_dir, tmp_path):
    Trainer(tiny(data_dir), tmp_path, progress=False).train()
    learner, meta = load_learner(tmp_path / "best.safetensors")
    assert meta["kind"] == "model" and meta["data"]["protocol"] == "vinyals"
    assert meta["config"]["way"] == 5 and meta["episode"] in (3, 6)


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="unknown setting.*wayy"):
        TrainConfig.from_dict({"wayy": 5})
    with pytest.raises(ConfigError, match="way must be at least 1"):
        TrainConfig(way=0)


def test_confidence_interval_is_196_std_over_sqrt_n():
    accs = torch.tensor([1.0, 0.5, 0.75, 0.25])
    r = summarize(accs, 0.0)
    assert r.accuracy == pytest.approx(62.5)
    assert r.ci95 == pytest.approx(1.96 * accs.double().mul(100).std().item() / 2)


@pytest.mark.slow
def test_short_real_training_beats_chance_by_far(data_dir, omniglot, tmp_path):
    torch.set_num_threads(2)
    config = TrainConfig(data_dir=str(data_dir), way=20, shot=1, query=5, episodes=100, val_split=None, log_every=50)
    trainer = Trainer(config, tmp_path, progress=False)
    trainer.train()
    result = evaluate(trainer.learner, omniglot["test"], 5, 1, 5, episodes=200, seed=0, progress=False)
    assert result.accuracy > 80.0, result  # chance is 20%
    # reusing embeddings across episodes gives the same numbers as embedding per episode
    slow = evaluate(trainer.learner, omniglot["test"], 5, 1, 5, episodes=20, seed=0, reuse_features=False, progress=False)
    fast = evaluate(trainer.learner, omniglot["test"], 5, 1, 5, episodes=20, seed=0, progress=False)
    assert torch.allclose(slow.per_episode, fast.per_episode)


def test_sigterm_stops_at_an_episode_boundary_and_saves(data_dir, tmp_path):
    import os
    import signal

    trainer = Trainer(tiny(data_dir, episodes=50, val_every=100), tmp_path, progress=False)
    draw = trainer.sampler.task

    def send_sigterm_at_episode_2(dataset, i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-episode; the episode still completes
        return draw(dataset, i)

    trainer.sampler.task = send_sigterm_at_episode_2
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    resumed = Trainer(tiny(data_dir, episodes=50, val_every=100), tmp_path, progress=False)
    assert resumed.resume() and resumed.episode == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored
