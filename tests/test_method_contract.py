"""The contract every registered method keeps, on synthetic data (no data files needed).

Parametrised over METHODS as it is at import time, so a method added later (one file in
kshot/learners/) is covered without editing this suite."""

from contextlib import nullcontext
from unittest.mock import patch

import pytest
import torch
import torch.nn.functional as F

from kshot.data.sampler import Task
from kshot.engine import checkpoint
from kshot.engine.build import build_learner, learner_meta, load_learner, task_args
from kshot.engine.config import TrainConfig
from kshot.learners import METHODS, MetricLearner, PrototypeLearner, SequenceLearner

WAY, SHOT, QUERY, SIZE = 4, 2, 3, 28
SMALL_BACKBONES = {"conv4": {"hidden": 8, "out_channels": 8}}  # others are used as they come


def backbone_of(method: str) -> str:
    """The backbone of the method's paper settings (conv4 unless its preset names another)."""
    return TrainConfig.from_dict({"method": method}).backbone


def make(method: str, channels: int = 1):
    torch.manual_seed(0)
    backbone = backbone_of(method)
    backbone_args = {"in_channels": channels, **SMALL_BACKBONES.get(backbone, {})}
    return build_learner(
        method,
        backbone,
        {**METHODS.get(method).backbone_needs, **backbone_args},
        {},
        way=WAY,
        input_shape=[channels, SIZE, SIZE],
        base_classes=WAY,  # a pretrained classifier learns the toy task's classes
    ), backbone_args


def toy_task(channels: int = 1, seed: int = 0, relabel: torch.Tensor | None = None) -> Task:
    """Each class is a bright square in its own place; items add noise. `relabel` maps the
    episode's labels (a permutation), as another draw of the same classes would."""
    g = torch.Generator().manual_seed(seed)
    base = torch.zeros(WAY, channels, SIZE, SIZE)
    for c in range(WAY):
        base[c, :, 6 * c : 6 * c + 6, 6 * c : 6 * c + 6] = 1
    items = lambda n: base.repeat_interleave(n, 0) + 0.1 * torch.rand(WAY * n, channels, SIZE, SIZE, generator=g)
    perm = torch.arange(WAY) if relabel is None else relabel
    labels = lambda n: perm[torch.arange(WAY).repeat_interleave(n)]
    return Task(items(SHOT), labels(SHOT), items(QUERY), labels(QUERY), WAY, torch.arange(WAY), seed=seed)


def predict(learner, task: Task) -> torch.Tensor:
    return learner.adapt(task.support, task.support_labels, task.way, task.generator())(task.query).detach()


def training_budget(learner) -> tuple[int, int, float]:
    """(meta-steps, episodes per step, learning rate) on the toy task. A sequence learner starts
    knowing nothing of labels shown one step late, and needs hundreds of episodes to learn to bind
    them (Santoro et al. train on 100,000); the others learn the toy task in a few dozen."""
    return (500, 8, 1e-3) if isinstance(learner, SequenceLearner) else (30, 1, 1e-2)


def train(learner) -> list[float]:
    """Meta-steps on toy episodes with shuffled labels (as episodic training shuffles them), or for a
    learner that trains on batches, mini-batches of toy images labelled with their classes."""
    steps, batch, lr = training_budget(learner)
    opt = torch.optim.Adam(learner.parameters(), lr)
    g = torch.Generator().manual_seed(1)
    learner.train()
    losses = []
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        tasks = [toy_task(seed=i * batch + j, relabel=torch.randperm(WAY, generator=g)) for j in range(batch)]
        if learner.trains_on == "batches":
            task = toy_task(seed=i)
            loss = F.cross_entropy(learner.batch_logits(task.query), task.query_labels)
            loss.backward()
            loss = loss.item()
        else:
            loss, _ = learner.meta_step(tasks)
        opt.step()
        losses.append(loss)
    return losses


@pytest.fixture(scope="module", params=METHODS.names())
def trained(request):
    """(method, learner trained on toy episodes, its losses, backbone options)."""
    learner, backbone_args = make(request.param)
    losses = train(learner)
    return request.param, learner.eval(), losses, backbone_args


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_for_grey_and_colour_inputs(method, channels):
    learner, _ = make(method, channels)
    task = toy_task(channels)
    logits = predict(learner.train(), task)
    assert logits.shape == (WAY * QUERY, WAY) and torch.isfinite(logits).all()
    if learner.trains_on == "batches":  # pretrained as one classifier of the base classes
        assert learner.batch_logits(task.query).shape == (WAY * QUERY, WAY)
        return
    loss, logits = learner.meta_step([task, toy_task(channels, seed=1)])
    assert logits.shape == (2, WAY * QUERY, WAY) and loss == loss  # not NaN


def test_loss_falls_on_an_easy_task(trained):
    method, _, losses, _ = trained
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, f"{method}: loss {first:.4f} -> {last:.4f}"


def test_predictions_follow_a_permutation_of_the_support_classes(trained):
    method, learner, _, _ = trained
    task = toy_task(seed=100)
    perm = torch.tensor([2, 0, 3, 1])
    relabelled = toy_task(seed=100, relabel=perm)
    # After a few dozen toy meta-steps an initialisation may need more than its usual test steps to
    # adapt (maml-fake, which must also learn to reject its fakes, did on one CPU's arithmetic). The
    # contract is that adaptation follows the labels, so gradient learners get steps enough here.
    steps_enough = (
        patch.object(learner, "test_steps", max(learner.test_steps, 10))
        if hasattr(learner, "test_steps")
        else nullcontext()
    )
    with steps_enough:
        plain, moved = predict(learner, task), predict(learner, relabelled)
    assert torch.equal(perm[plain.argmax(1)], moved.argmax(1)), method
    assert (plain.argmax(1) == task.query_labels).float().mean() >= 0.75, method  # and they are right
    if isinstance(learner, MetricLearner):  # no per-class weights: exactly the permuted logits
        assert torch.allclose(plain[:, torch.argsort(perm)], moved, atol=1e-4), method


def test_eval_mode_is_deterministic(trained):
    method, learner, _, _ = trained
    task = toy_task(seed=7)
    assert torch.equal(predict(learner, task), predict(learner, task)), method


def test_checkpoint_round_trip_gives_identical_logits(trained, tmp_path):
    method, learner, _, backbone_args = trained
    meta = learner_meta(
        method,
        backbone_of(method),
        {**METHODS.get(method).backbone_needs, **backbone_args},
        task_args(method, WAY, [1, SIZE, SIZE], WAY),
    )
    meta |= {"data": {"image_size": SIZE, "channels": 1}, "kind": "model"}
    checkpoint.save(tmp_path / "model", {f"model.{k}": v for k, v in learner.state_dict().items()}, meta)
    loaded, _ = load_learner(tmp_path / "model.safetensors")
    task = toy_task(seed=9)
    assert torch.equal(predict(learner, task), predict(loaded, task)), method


def test_declarations_are_consistent(trained):
    method, learner, _, _ = trained
    assert type(learner).method == method and isinstance(learner.transductive, bool)
    assert learner.trains_on in ("episodes", "batches")
    if learner.needs_base_classes:
        assert learner.batch_logits(toy_task().query).shape == (WAY * QUERY, WAY)
    if isinstance(learner, PrototypeLearner):
        assert learner.prototype_metric in ("squared_euclidean", "cosine")
        prototypes = torch.randn(5, 8)
        assert learner.prototype_classifier(prototypes)(torch.randn(3, 8)).shape == (3, 5)
    if learner.fixed_way:
        assert learner.way == WAY
