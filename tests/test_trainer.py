import json

import pytest
import torch
from conftest import synthetic_dataset

from kshot.engine.build import build_learner, learner_meta, load_learner
from kshot.engine.config import TrainConfig
from kshot.engine.evaluator import evaluate, summarize
from kshot.engine.trainer import Trainer
from kshot.errors import CheckpointError, ConfigError

BACKBONE = {"in_channels": 1, "hidden": 8, "out_channels": 8}


def tiny(**kw):
    base = dict(
        way=5,
        shot=1,
        query=2,
        episodes=6,
        val_every=3,
        val_episodes=5,
        val_query=4,
        log_every=2,
        lr_step=2,
        checkpoint_seconds=1e9,
        backbone_args=BACKBONE,
    )
    return TrainConfig(**(base | kw))


def trainer(out, **kw) -> Trainer:
    """A ProtoNet trainer handed its learner and data sets as objects (synthetic data: no files)."""
    settings = tiny(**kw)
    torch.manual_seed(settings.seed)
    learner = build_learner("protonet", "conv4", BACKBONE)
    meta = learner_meta("protonet", "conv4", BACKBONE, {}) | {"data": {"dataset": "synthetic", "image_size": 28}}
    return Trainer(learner, synthetic_dataset(12), synthetic_dataset(8, seed=1), settings, out, meta, progress=False)


def test_resume_equals_uninterrupted_run(tmp_path):
    straight = trainer(tmp_path / "a")
    straight.train()
    first = trainer(tmp_path / "b")
    draw = first.tasks.sampler.task

    def interrupt_at_episode_3(dataset, i):  # Ctrl-C after 3 episodes, mid log window
        if i == 3:
            raise KeyboardInterrupt
        return draw(dataset, i)

    first.tasks.sampler.task = interrupt_at_episode_3
    with pytest.raises(KeyboardInterrupt):
        first.train()
    second = trainer(tmp_path / "b")
    assert second.resume() and second.episode == 3
    second.train()
    for (k, a), b in zip(straight.learner.state_dict().items(), second.learner.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert straight.scheduler.get_last_lr() == second.scheduler.get_last_lr()
    log_a = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(l) for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    drop_time = lambda rows: [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "train_seconds"} for r in rows
    ]
    assert drop_time(log_a) == drop_time(log_b) and len(log_a) == 5  # episodes 2, 3 (val), 4, 6, calibration
    assert "open_set" in log_a[-1]


def test_resume_with_other_settings_is_refused(tmp_path):
    trainer(tmp_path, episodes=3).train()
    with pytest.raises(CheckpointError, match="other settings \\(lr\\)"):
        trainer(tmp_path, lr=0.5).resume()


def test_best_checkpoint_records_its_settings(tmp_path):
    trainer(tmp_path).train()
    learner, meta = load_learner(tmp_path / "best.safetensors")
    assert meta["kind"] == "model" and meta["data"]["dataset"] == "synthetic"
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
    run = Trainer.from_config(config, tmp_path, progress=False)
    run.train()
    result = evaluate(run.learner, omniglot["test"], 5, 1, 5, episodes=200, seed=0, progress=False)
    assert result.accuracy > 80.0, result  # chance is 20%
    # reusing embeddings across episodes gives the same numbers as embedding per episode
    slow = evaluate(run.learner, omniglot["test"], 5, 1, 5, episodes=20, seed=0, reuse_features=False, progress=False)
    fast = evaluate(run.learner, omniglot["test"], 5, 1, 5, episodes=20, seed=0, progress=False)
    assert torch.allclose(slow.per_episode, fast.per_episode)


def test_sigterm_stops_at_an_episode_boundary_and_saves(tmp_path):
    import os
    import signal

    run = trainer(tmp_path, episodes=50, val_every=100)
    draw = run.tasks.sampler.task

    def send_sigterm_at_episode_2(dataset, i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-episode; the episode still completes
        return draw(dataset, i)

    run.tasks.sampler.task = send_sigterm_at_episode_2
    with pytest.raises(KeyboardInterrupt):
        run.train()
    resumed = trainer(tmp_path, episodes=50, val_every=100)
    assert resumed.resume() and resumed.episode == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored


def test_resume_survives_a_torn_last_log_line(tmp_path):
    trainer(tmp_path, episodes=4).train()
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"episode": 5, "lo')  # a crash mid-write
    resumed = trainer(tmp_path, episodes=6)
    assert resumed.resume() and resumed.episode == 4
    resumed.train()
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in rows if "loss" in r] == [2, 4, 6]


def test_a_task_family_trains_on_the_same_loop(tmp_path):
    """Any object with step(learner, index, size) is trained, checkpointed and resumed alike."""
    from kshot.engine.tasks import StepResult

    class Quadratic:  # a toy family: pull the learner's one weight toward the step's target
        def step(self, learner, index, size):
            loss = (learner.w - float(index % 3)).pow(2).sum()
            loss.backward()
            return StepResult(loss.item(), None)

    from torch import nn

    from kshot.learners import Learner

    class Point(Learner):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

    straight = Trainer(Point(), Quadratic(), None, tiny(episodes=7, lr=0.1), tmp_path / "a", progress=False)
    straight.train()
    half = Trainer(Point(), Quadratic(), None, tiny(episodes=4, lr=0.1), tmp_path / "b", progress=False)
    half.train()
    rest = Trainer(Point(), Quadratic(), None, tiny(episodes=7, lr=0.1), tmp_path / "b", progress=False)
    assert rest.resume() and rest.episode == 4
    rest.train()
    assert torch.equal(straight.learner.w, rest.learner.w) and straight.learner.w.item() != 0
    assert "accuracy" not in json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[0])


def test_bf16_precision_runs_training_steps_in_bfloat16_and_validation_in_float32(tmp_path):
    t = trainer(tmp_path, precision="bf16", episodes=3, val_every=3)
    seen = []  # (grad enabled: a training step, dtype of the last block's output)
    t.learner.encoder.blocks[-1].register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), o.dtype)))
    t.train()
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}
    assert {dtype for training, dtype in seen if not training} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in t.learner.parameters())
    with pytest.raises(ConfigError, match="precision"):
        tiny(precision="fp16")


def test_prototype_distances_stay_float32_under_bfloat16_autocast():
    from kshot.learners.protonet import squared_euclidean

    torch.manual_seed(0)
    a, b = torch.randn(6, 64) * 10, torch.randn(4, 64) * 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = squared_euclidean(a, b)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, torch.cdist(a, b) ** 2, rtol=1e-4, atol=1e-3)


def test_cosine_schedule_falls_to_a_hundredth_of_the_rate_at_the_last_step(tmp_path):
    t = trainer(tmp_path, lr_schedule="cosine", episodes=6, val_every=6)
    t.train()
    rates = [row["lr"] for row in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "lr" in row]
    assert rates == sorted(rates, reverse=True) and rates[0] < 1e-3
    assert rates[-1] == pytest.approx(1e-5)
