"""The contract every registered method keeps, on synthetic data (no data files needed).

Parametrised over METHODS as it is at import time, so a method added later (one file in
kshot/learners/) is covered without editing this suite."""

import pytest
import torch

from kshot.data.sampler import Task
from kshot.engine import checkpoint
from kshot.engine.build import build_learner, learner_meta, load_learner
from kshot.learners import METHODS, MetricLearner, PrototypeLearner

WAY, SHOT, QUERY, SIZE = 4, 2, 3, 28
SMALL_BACKBONE = {"hidden": 8, "out_channels": 8}


def make(method: str, channels: int = 1):
    torch.manual_seed(0)
    backbone_args = {"in_channels": channels, **SMALL_BACKBONE}
    return build_learner(
        method,
        "conv4",
        {**METHODS.get(method).backbone_needs, **backbone_args},
        {},
        way=WAY,
        input_shape=[channels, SIZE, SIZE],
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


def train(learner, steps: int = 30) -> list[float]:
    """Meta-steps on toy episodes with shuffled labels (as episodic training shuffles them)."""
    opt = torch.optim.Adam(learner.parameters(), 1e-2)
    g = torch.Generator().manual_seed(1)
    learner.train()
    losses = []
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss, _ = learner.meta_step([toy_task(seed=i, relabel=torch.randperm(WAY, generator=g))])
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
        "conv4",
        {**METHODS.get(method).backbone_needs, **backbone_args},
        {"way": WAY} if learner.fixed_way else {},
    )
    meta |= {"data": {"image_size": SIZE, "channels": 1}, "kind": "model"}
    checkpoint.save(tmp_path / "model", {f"model.{k}": v for k, v in learner.state_dict().items()}, meta)
    loaded, _ = load_learner(tmp_path / "model.safetensors")
    task = toy_task(seed=9)
    assert torch.equal(predict(learner, task), predict(loaded, task)), method


def test_declarations_are_consistent(trained):
    method, learner, _, _ = trained
    assert type(learner).method == method and isinstance(learner.transductive, bool)
    if isinstance(learner, PrototypeLearner):
        assert learner.prototype_metric in ("squared_euclidean", "cosine")
        prototypes = torch.randn(5, 8)
        assert learner.prototype_classifier(prototypes)(torch.randn(3, 8)).shape == (3, 5)
    if learner.fixed_way:
        assert learner.way == WAY
