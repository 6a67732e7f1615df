"""The model-based family: Meta Networks' fast weights, and the memory-augmented network's memory,
its LRUA writes and its label offset."""

import torch
import torch.nn.functional as F

from kshot.engine.build import build_learner
from kshot.learners.mann import cosine_read_weights, least_used, lrua_write_weights

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


# ---- the memory-augmented network (Santoro et al. 2016) ---------------------------------------


def mann(memory: bool = True, slots: int = 16):
    torch.manual_seed(0)
    return build_learner(
        "mann",
        "pixels",
        {},
        {"hidden": 24, "slots": slots, "width": 6, "heads": 2, "memory": memory},
        way=WAY,
        input_shape=[1, 8, 8],
    ).eval()


def sequence(batch=2, steps=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, steps, 1, 8, 8, generator=g), torch.randint(0, WAY, (batch, steps), generator=g)


def test_read_weights_sum_to_one_and_favour_the_most_similar_slot():
    keys, memory = torch.randn(3, 2, 6), torch.randn(3, 16, 6)
    memory[:, 5] = 4 * keys[:, 0]  # slot 5 points where head 0's key does
    weights = cosine_read_weights(keys, memory, torch.full((3, 2), 5.0))
    assert weights.shape == (3, 2, 16) and (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(3, 2))
    assert (weights[:, 0].argmax(-1) == 5).all()
    net = mann()
    x, y = sequence()
    state = net.initial_state(2, x)
    for t in range(4):  # and inside the network, step after step
        _, state = net.step(x[:, t].flatten(1), F.one_hot(y[:, t], WAY).float(), state)
        assert torch.allclose(state.read_weights.sum(-1), torch.ones(2, 2), atol=1e-6)


def test_lrua_writes_to_the_least_used_slot_or_where_it_last_read():
    usage = torch.tensor([[0.9, 0.1, 0.5, 0.05, 0.7]])
    assert least_used(usage, 2).argmax(-1).tolist() == [[3, 1]]  # head h: the h-th least used
    last_read = F.one_hot(torch.tensor([[0, 2]]), 5).float()
    lu = least_used(usage, 2)
    assert torch.equal(lrua_write_weights(torch.zeros(1, 2), last_read, lu), lu)  # sigmoid(alpha) = 0
    assert torch.equal(lrua_write_weights(torch.ones(1, 2), last_read, lu), last_read)  # sigmoid(alpha) = 1
    mixed = lrua_write_weights(torch.full((1, 2), 0.25), last_read, lu)
    assert torch.allclose(mixed, 0.25 * last_read + 0.75 * lu)
    # In a step of the network with the write gate shut, memory changes only in the least-used slots.
    net = mann()
    with torch.no_grad():
        net.addressing.bias.view(2, -1)[:, -2] = -1e4  # alpha -> sigmoid 0
    x, y = sequence(batch=1)
    state = net.initial_state(1, x)
    state.usage = torch.rand(1, 16, generator=torch.Generator().manual_seed(3))
    _, after = net.step(x[:, 0].flatten(1), torch.zeros(1, WAY), state)
    changed = (after.memory - state.memory).abs().sum(-1)[0].nonzero().flatten()
    assert sorted(changed.tolist()) == sorted(state.usage[0].argsort()[:2].tolist())


def test_a_step_never_sees_its_own_label():
    for memory in (True, False):
        net = mann(memory)
        x, y = sequence()
        with torch.no_grad():
            logits = net.sequence_logits(x, y)
            for t in (0, 4, 9):
                changed = y.clone()
                changed[:, t] = (y[:, t] + 1) % WAY
                moved = net.sequence_logits(x, changed)
                assert torch.equal(logits[:, : t + 1], moved[:, : t + 1])  # steps up to t cannot know y_t
                if t + 1 < y.shape[1]:
                    assert not torch.allclose(logits[:, t + 1], moved[:, t + 1])  # step t+1 is told it


def test_memory_is_wiped_at_the_start_of_every_episode():
    net = mann()
    x, y = sequence(batch=3)
    state = net.initial_state(3, x)
    assert torch.all(state.memory == state.memory.flatten()[0]) and not state.usage.any() and not state.h.any()
    with torch.no_grad():
        together = net.sequence_logits(x, y)
        alone = net.sequence_logits(x[2:], y[2:])  # no trace of the episodes before it in the batch
        again = net.sequence_logits(x[2:], y[2:])
    assert torch.allclose(together[2:], alone, atol=1e-6) and torch.equal(alone, again)
    # Through adapt: one support set leaves nothing behind for the next.
    support, labels, query = x[0, :WAY], torch.arange(WAY), x[1, :3]
    with torch.no_grad():
        first = net.adapt(support, labels, WAY)(query)
        net.adapt(x[2, :WAY], labels.flip(0), WAY)(query)
        assert torch.equal(net.adapt(support, labels, WAY)(query), first)
