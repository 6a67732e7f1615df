"""The fine-tuning baselines: pretrained on ordinary mini-batches by the one trainer (resumable like
any run), then a new last layer fitted on the support set with the features frozen."""

import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic_dataset

from kshot.engine.build import build_learner, learner_meta, load_learner, task_args
from kshot.engine.config import TrainConfig
from kshot.engine.evaluator import evaluate
from kshot.engine.tasks import Batches
from kshot.engine.trainer import Trainer
from kshot.learners.baseline import HEADS, fit_head

BACKBONE = {"in_channels": 1, "hidden": 8, "out_channels": 8}


def baseline_trainer(out, head="linear", method="baseline", episodes=40, augment="none"):
    train, val = synthetic_dataset(12), synthetic_dataset(8, seed=1)
    torch.manual_seed(0)
    args = task_args(method, None, [1, 28, 28], train.num_classes) | {"head": head}
    learner = build_learner(method, "conv4", BACKBONE, args)
    settings = TrainConfig(
        method=method,
        batch_size=16,
        episodes=episodes,
        val_every=20,
        val_episodes=10,
        val_query=3,
        log_every=10,
        lr=1e-2,
        lr_step=10**6,
        augment=augment,
        checkpoint_seconds=1e9,
    )
    meta = learner_meta(method, "conv4", BACKBONE, args) | {"data": {"dataset": "synthetic", "image_size": 28}}
    return Trainer(learner, train, val, settings, out, meta, progress=False)


def test_batches_cover_every_item_once_per_epoch_and_repeat_by_seed():
    data = synthetic_dataset(6, per_class=5)
    batches = Batches(data, batch_size=7, seed=3)
    seen = torch.cat([batches.batch(i)[1] for i in range(batches.per_epoch)])
    assert len(seen) == 28 and torch.bincount(seen).max() <= 5  # 4 batches of 7 from 30 items, no repeats
    again = Batches(data, batch_size=7, seed=3)
    assert all(torch.equal(batches.batch(i)[0], again.batch(i)[0]) for i in (0, 5))
    assert not torch.equal(batches.batch(0)[0], Batches(data, 7, seed=4).batch(0)[0])


@pytest.mark.parametrize("head", HEADS)
def test_pretraining_then_a_fitted_head_classifies_unseen_classes(tmp_path, head):
    t = baseline_trainer(tmp_path / head, head)
    result = t.train()
    assert result["episode"] == 40
    learner, _ = load_learner(tmp_path / head / "best.safetensors")
    accuracy = evaluate(learner, synthetic_dataset(8, seed=1), 4, 1, 3, episodes=20, progress=False).accuracy
    assert accuracy >= 90, (head, accuracy)  # unseen blocks, one example each


def test_finetune_adapts_the_whole_network_and_leaves_the_model_untouched(tmp_path):
    t = baseline_trainer(tmp_path / "ft", method="finetune", episodes=30)
    t.train()
    learner = t.learner.eval()
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    data = synthetic_dataset(8, seed=1)
    accuracy = evaluate(learner, data, 4, 1, 3, episodes=10, progress=False).accuracy
    assert accuracy >= 90
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())


def test_the_logistic_regression_head_minimises_its_penalised_loss():
    g = torch.Generator().manual_seed(0)
    features, labels = torch.randn(12, 6, generator=g), torch.arange(3).repeat(4)
    head = fit_head("logreg", features, labels, 3, steps=200, lr=0.0)
    linear = head[1]
    x = F.normalize(features, dim=1)
    w = torch.cat([linear.weight, linear.bias[:, None]], 1).detach().requires_grad_()
    loss = F.cross_entropy(x @ w[:, :6].T + w[:, 6], labels, reduction="sum") + 0.5 * w[:, :6].pow(2).sum()
    (grad,) = torch.autograd.grad(loss, w)
    assert grad.abs().max() < 1e-3  # a stationary point of the convex objective: its minimum


def test_augmented_pretraining_resumes_exactly(tmp_path):
    straight = baseline_trainer(tmp_path / "a", episodes=8, augment="standard")
    straight.train()
    first = baseline_trainer(tmp_path / "b", episodes=4, augment="standard")
    first.train()
    second = baseline_trainer(tmp_path / "b", episodes=8, augment="standard")
    assert second.resume() and second.episode == 4
    second.train()
    for (k, a), b in zip(straight.learner.state_dict().items(), second.learner.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
