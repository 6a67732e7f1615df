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


# ---- MAML with an N+1-th output unit -------------------------------------------------------
from kshot.learners.maml_fake import FakeClassMAML  # noqa: E402


def maml_learner() -> FakeClassMAML:
    torch.manual_seed(0)
    encoder = BACKBONES.get("conv4")(in_channels=1, hidden=8, norm="task", channels_last=False)
    return FakeClassMAML(encoder, way=3, input_shape=[1, 28, 28], fakes=4, vectorize="loop")


def test_maml_fake_has_one_output_more_than_its_way_and_returns_only_the_real_ones():
    model = maml_learner()
    assert model.net.head.out_features == 4
    t = task()
    logits = model.eval().adapt(t.support, t.support_labels, 3)(t.query)
    assert logits.shape == (6, 3)


def test_maml_fake_fakes_never_enter_the_real_images_normalisation():
    """With no adaptation step, a query's logits are the network's on the real queries alone,
    whatever fakes the generator makes: BatchNorm statistics come from real rows only."""
    model = maml_learner().eval()
    model.test_steps = 0
    t = task()
    plain = model.net(t.query)[:, :3]
    for seed in (0, 1):
        logits = model.adapt(t.support, t.support_labels, 3, torch.Generator().manual_seed(seed))(t.query)
        assert torch.allclose(logits, plain, atol=1e-5)


def test_maml_fake_adapts_at_test_time_to_the_support_and_its_fakes():
    model = maml_learner().eval()
    t = task()
    ours = model.adapt(t.support, t.support_labels, 3, t.generator())(t.query)
    again = model.adapt(t.support, t.support_labels, 3, t.generator())(t.query)
    other = model.adapt(t.support, t.support_labels, 3, torch.Generator().manual_seed(99))(t.query)
    assert ours.shape == (6, 3) and torch.equal(ours, again)
    assert not torch.allclose(ours, other)  # other fakes, another inner loop


def test_maml_fake_fakes_enter_the_inner_loop_and_the_generator_is_reversed():
    model = maml_learner()
    t = task()
    _, fake_loss, real = model.episode_losses(t, reverse=False)
    plain = torch.autograd.grad(fake_loss, list(model.generator.parameters()), retain_graph=True)
    # the real queries' logits depend on the fakes through the inner loop
    through_inner_loop = torch.autograd.grad(real.sum(), list(model.generator.parameters()))
    assert any(g.abs().sum() > 0 for g in through_inner_loop)
    model.zero_grad()
    _, fake_loss, _ = model.episode_losses(t, reverse=True)
    fake_loss.backward()
    for p, g in zip(model.generator.parameters(), plain):
        assert torch.allclose(p.grad, -g, atol=1e-6)
    assert model.net.head.weight.grad[3].abs().sum() > 0  # the fake unit learns


def test_maml_fake_training_loss_counts_both_terms_and_logits_are_n_way():
    model = maml_learner()
    loss, logits = model.loss(task())
    real_loss, fake_loss, _ = model.episode_losses(task())
    assert torch.allclose(loss, real_loss + fake_loss) and logits.shape == (6, 3)
