"""Prototypical Networks with an N+1-th fake class (MetaGAN-style data augmentation)."""

import torch

from kshot.data.sampler import Task
from kshot.learners.fake_class import FakeClassProtoNet
from kshot.learners.protonet import ProtoNet
from kshot.nets import BACKBONES


def learner() -> FakeClassProtoNet:
    torch.manual_seed(0)
    return FakeClassProtoNet(BACKBONES.get("conv4")(in_channels=1, hidden=8), input_shape=[1, 28, 28], fakes=6)


def task(seed: int = 0) -> Task:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3)
    return Task(
        support=torch.rand(3, 1, 28, 28, generator=g),
        support_labels=labels,
        query=torch.rand(6, 1, 28, 28, generator=g),
        query_labels=labels.repeat_interleave(2),
        way=3,
        classes=labels,
        seed=seed,
    )


def test_at_test_time_it_is_the_n_way_protonet_of_its_encoder():
    model = learner().eval()
    plain = ProtoNet(model.encoder).eval()
    t = task()
    with torch.no_grad():
        ours = model.adapt(t.support, t.support_labels, 3)(t.query)
        theirs = plain.adapt(t.support, t.support_labels, 3)(t.query)
    assert ours.shape == (6, 3) and torch.equal(ours, theirs)


def test_the_generator_ascends_the_fake_class_loss_that_the_classifier_descends():
    model = learner()
    t = task()
    _, fake_loss, _ = model.episode_losses(t, reverse=False)
    plain = torch.autograd.grad(fake_loss, list(model.generator.parameters()))
    model.zero_grad()
    _, fake_loss, _ = model.episode_losses(t, reverse=True)
    fake_loss.backward()
    for p, g in zip(model.generator.parameters(), plain):
        assert torch.allclose(p.grad, -g, atol=1e-6)  # reversed for the generator
    assert model.encoder.parameters().__next__().grad.abs().sum() > 0  # the classifier learns too


def test_fake_logit_starts_from_the_real_logits_and_the_loss_counts_both_terms():
    model = learner()
    assert torch.isnan(model.fake_logit)
    loss, logits = model.loss(task())
    assert torch.isfinite(model.fake_logit) and torch.isfinite(loss)
    real_loss, fake_loss, _ = model.episode_losses(task())
    assert torch.allclose(loss, real_loss + fake_loss) and logits.shape == (6, 3)
