"""The model-based family: Meta Networks' fast weights (the memory-augmented network is still to
come, see issue 16)."""

import torch
import torch.nn.functional as F

from kshot.engine.build import build_learner

WAY = 4


def metanet():
    torch.manual_seed(0)
    backbone = {"in_channels": 1, "hidden": 8, "out_channels": 8}
    return build_learner("metanet", "conv4", backbone, {}, way=WAY, input_shape=[1, 28, 28]).eval()


def images(n, seed):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_fast_weights_change_the_output_and_depend_on_the_support_set():
    net = metanet()
    support, query = images(WAY, 0), images(3, 1)
    labels = torch.arange(WAY)
    with torch.no_grad():
        slow = net.output(net.encoder(query).flatten(1))  # the base learner without fast weights
        adapted = net.adapt(support, labels, WAY)(query)
        relabelled = net.adapt(support, labels.flip(0), WAY)(query)
        other_images = net.adapt(images(WAY, 2), labels, WAY)(query)
    assert not torch.allclose(adapted, slow, atol=1e-6)  # the fast weights add to the slow output
    assert not torch.allclose(adapted, relabelled, atol=1e-6)  # they carry the support's labels
    assert not torch.allclose(adapted, other_images, atol=1e-6)  # and depend on its images


def test_the_meta_information_is_the_loss_gradient_of_each_support_example():
    net = metanet()
    h = net.encoder(images(WAY, 0)).flatten(1).detach()
    labels = torch.tensor([2, 0, 3, 1])
    seen = []
    net.example_weights.forward = lambda gradient: seen.append(gradient) or gradient  # record m's input
    net.example_fast_weights(h, labels, WAY)
    for i in range(WAY):
        w = net.output.weight.detach().clone().requires_grad_()
        loss = F.cross_entropy(h[i : i + 1] @ w.T + net.output.bias.detach(), labels[i : i + 1])
        (expected,) = torch.autograd.grad(loss, w)
        assert torch.allclose(seen[0][i], expected, atol=1e-6)


def test_the_memory_read_is_attention_over_the_support_keys():
    net = metanet()
    support, labels = images(WAY, 0), torch.arange(WAY)
    with torch.no_grad():
        classify = net.adapt(support, labels, WAY)
        # a query identical to a support item attends to it most, so its fast weights dominate
        u = net.representation(support).flatten(1)
        keys = F.normalize(net.keys(u, net.task_fast_weights(u, labels, WAY)), dim=1)
        attention = torch.softmax(net.log_scale.exp() * keys @ keys.T, dim=1)
    assert torch.allclose(attention.sum(1), torch.ones(WAY)) and (attention.argmax(1) == torch.arange(WAY)).all()
    assert classify(support).shape == (WAY, WAY)
