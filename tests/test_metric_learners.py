"""Every metric method: shapes, dependence on the support, its own loss, and a few training steps."""
import pytest
import torch

from kshot.data.sampler import Task
from kshot.engine.build import build_learner
from kshot.learners.triplet import triplet_loss

SMALL = {"in_channels": 1, "hidden": 8, "out_channels": 8}
METHODS = {
    "protonet": {},
    "matching": {"dim": 8},
    "matching-fce": {"dim": 8, "fce": True, "fce_steps": 2},
    "relation": {"channels": 8, "hidden": 4},
    "siamese": {"dim": 8},
    "triplet": {},
}


def make(name):
    method = name.split("-")[0]
    return build_learner(method, "conv4", SMALL, METHODS[name])


def toy_task(way=4, shot=2, query=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    # each class is a distinct bright square; items add noise
    base = torch.zeros(way, 1, 28, 28)
    for c in range(way):
        base[c, :, 6 * c : 6 * c + 6, 6 * c : 6 * c + 6] = 1
    items = lambda n: base.repeat_interleave(n, 0) + 0.1 * torch.rand(way * n, 1, 28, 28, generator=g)
    labels = lambda n: torch.arange(way).repeat_interleave(n)
    return Task(items(shot), labels(shot), items(query), labels(query), way, torch.arange(way))


@pytest.mark.parametrize("name", METHODS)
def test_shapes_and_swapping_support_classes_swaps_logits(name):
    # batch statistics: an untrained net's default running statistics can flatten its output
    net = make(name).train()
    t = toy_task()
    with torch.no_grad():
        logits = net.adapt(t.support, t.support_labels, t.way)(t.query)
        relabel = torch.tensor([2, 1, 0, 3])  # swap classes 0 and 2
        swapped = net.adapt(t.support, relabel[t.support_labels], t.way)(t.query)
    assert logits.shape == (12, 4) and torch.isfinite(logits).all()
    assert torch.allclose(logits[:, [2, 1, 0, 3]], swapped, atol=1e-5)
    assert not torch.allclose(logits[:, 0], logits[:, 2])


@pytest.mark.parametrize("name", METHODS)
def test_training_steps_lower_the_loss_and_fit_the_toy_task(name):
    torch.manual_seed(0)
    net = make(name).train()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    t = toy_task()
    first = None
    for _ in range(30):
        loss, logits = net.loss(t)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    net.eval()
    with torch.no_grad():
        pred = net.adapt(t.support, t.support_labels, t.way)(t.query).argmax(1)
    assert (pred == t.query_labels).float().mean() > 0.9


def test_relation_uses_summed_class_features_and_mse():
    net = make("relation").eval()
    t = toy_task(shot=3)
    with torch.no_grad():
        feats = net.embed(t.support)
        summed = feats.view(4, 3, *feats.shape[1:]).sum(1)
        direct = net.head(summed, torch.arange(4), 4)(net.embed(t.query))
        via_support = net.head(feats, t.support_labels, 4)(net.embed(t.query))
    assert torch.allclose(direct, via_support, atol=1e-5)
    assert ((via_support >= 0) & (via_support <= 1)).all()  # sigmoid relation scores


def test_siamese_scores_a_class_by_its_best_support_item():
    net = make("siamese").eval()
    s, q = torch.randn(6, 8), torch.randn(2, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = net.head(s, labels, 3)(q)
    pairs = net.pair_logits(q, s)
    assert torch.allclose(logits, pairs.view(2, 3, 2).amax(2))


def test_triplet_loss_counts_exactly_the_violating_triplets():
    a = torch.tensor([[0.0, 0.0]])
    others = torch.tensor([[1.0, 0.0], [0.0, 3.0], [0.0, 0.5]])  # positive, far negative, near negative
    labels = torch.tensor([0, 1, 1])
    # d(a,p) = 1, d(a,n1) = 9, d(a,n2) = 0.25: only n2 violates, by 1 - 0.25 + 0.2 = 0.95; mean over 2 triplets
    assert triplet_loss(a, torch.tensor([0]), others, labels, 0.2).item() == pytest.approx(0.95 / 2)
