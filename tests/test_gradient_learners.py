"""MAML family: exact meta-gradients, the first-order term, vmap vs loop, the papers' updates."""

import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kshot.data.sampler import Task
from kshot.errors import ConfigError
from kshot.learners.functional import gradient_steps
from kshot.learners.maml import ANIL, MAML, FirstOrderMAML, MetaSGD
from kshot.learners.meta_lstm import MetaLSTM
from kshot.learners.reptile import Reptile, batch_order
from kshot.nets.conv4 import Conv4

WAY = 3
# BatchNorm subtracts the first convolution's bias: folded into the convolution (nets/patch_moments.py),
# its gradient is exactly zero.
FIRST_CONV_BIAS = "body.blocks.0.0.bias"


def small_conv(norm="task"):
    return Conv4(in_channels=1, hidden=4, out_channels=4, depth=2, norm=norm, channels_last=False)


def learner(cls=MAML, norm="task", **kw):
    return cls(small_conv(norm), way=WAY, input_shape=[1, 8, 8], **kw).double()


def random_tasks(n, shot=2, query=2):
    labels = lambda k: torch.arange(WAY).repeat_interleave(k)
    return [
        Task(
            torch.randn(WAY * shot, 1, 8, 8, dtype=torch.float64),
            labels(shot),
            torch.randn(WAY * query, 1, 8, 8, dtype=torch.float64),
            labels(query),
            WAY,
            torch.arange(WAY),
            seed=i,
        )
        for i in range(n)
    ]


def vmapped(model, tasks=2):
    return model.batching.uses_vmap(model.net, tasks, model.vmappable)


def order(task, steps, batch):
    """Reptile's mini-batch order for this episode, from the episode's own generator."""
    return batch_order(task.generator(), task.support.shape[0], steps, batch)


def meta_gradient(model, tasks):
    model.zero_grad()
    model.meta_loss(tasks)[0].backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def test_second_order_meta_gradient_matches_finite_differences():
    model = learner(inner_steps=2, inner_lr=0.3)
    tasks = random_tasks(2)
    grad = meta_gradient(model, tasks)
    params = list(model.parameters())
    for _ in range(3):  # directional derivatives along random directions
        direction = [torch.randn_like(p) for p in params]

        def loss_at(eps, direction=direction):
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.add_(eps * d)
            value = model.meta_loss(tasks)[0].item()
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.sub_(eps * d)
            return value

        eps = 1e-5
        numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        analytic = (grad * torch.cat([d.reshape(-1) for d in direction])).sum().item()
        assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def test_first_order_drops_exactly_the_hessian_term():
    """One inner step: d/dtheta L_q(theta - a g_s) = (I - a H_s) grad L_q(phi); first order keeps grad L_q(phi)."""
    second = learner(inner_steps=1, inner_lr=0.4)
    first = copy.deepcopy(second)
    first.first_order = True
    (task,) = random_tasks(1)
    g2, g1 = meta_gradient(second, [task]), meta_gradient(first, [task])
    theta = {k: v.detach() for k, v in second.f.params().items()}
    support_loss = lambda p: F.cross_entropy(second.f(p, task.support), task.support_labels)
    grad_s = torch.func.grad(support_loss)(theta)
    phi = {k: theta[k] - 0.4 * grad_s[k] for k in theta}
    grad_q = torch.func.grad(lambda p: F.cross_entropy(second.f(p, task.query), task.query_labels))(phi)
    _, hvp = torch.func.jvp(torch.func.grad(support_loss), (theta,), (grad_q,))  # H_s @ grad_q
    dropped = torch.cat([(-0.4 * hvp[k]).reshape(-1) for k in theta])
    assert torch.allclose(g1, torch.cat([grad_q[k].reshape(-1) for k in theta]), atol=1e-10)
    assert torch.allclose(g2 - g1, dropped, atol=1e-10)
    assert dropped.abs().max() > 1e-4  # the term is not trivially zero here


@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML, MetaSGD, ANIL])
@pytest.mark.parametrize("bn", ["transductive", "support"])
def test_vmap_over_tasks_equals_the_per_task_loop(cls, bn):
    model = learner(cls, inner_steps=2, bn=bn)
    tasks = random_tasks(3)
    model.vectorize = "vmap"
    fast = meta_gradient(model, tasks)
    model.batching.vectorize = "loop"
    slow = meta_gradient(model, tasks)
    assert torch.allclose(fast, slow, atol=1e-12)


def test_torch_batchnorm_never_takes_the_vmap_path():
    """torch's fused BatchNorm gives wrong second-order gradients under vmap: the learner must loop."""
    model = learner(norm="batch", vectorize="vmap")
    assert not vmapped(model)
    assert vmapped(learner(norm="task", vectorize="vmap"))


@pytest.mark.parametrize("cls", [MAML, MetaSGD, ANIL, Reptile, MetaLSTM])
def test_adaptation_lowers_the_support_loss(cls):
    model = learner(cls, inner_lr=0.1).eval()  # a step size this toy's loss does not overshoot
    (task,) = random_tasks(1, shot=3)
    if cls is MetaLSTM:  # its initial input gate is ~0.01: give it a usable step to test the wiring
        nn.init.constant_(model.writer.input.bias, 0.0)
    before = F.cross_entropy(model.f(model.f.params(), task.support), task.support_labels)
    after = F.cross_entropy(model.adapt(task.support, task.support_labels, WAY)(task.support), task.support_labels)
    assert after < before - 1e-3


def test_meta_sgd_inner_step_is_theta_minus_alpha_times_gradient():
    model = learner(MetaSGD, inner_steps=1)
    with torch.no_grad():
        for alpha in model.step_size_list:
            alpha.uniform_(0.01, 0.5)
    (task,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    grads = torch.func.grad(lambda p: F.cross_entropy(model.f(p, task.support), task.support_labels))(theta)
    adapted = model.inner_loop(theta, task.support, task.support_labels, 1)
    for (k, t), alpha in zip(theta.items(), model.step_size_list):
        assert torch.allclose(adapted[k], t - alpha * grads[k], atol=1e-12)
    # and the step sizes are meta-learned: they receive a gradient (all but the first convolution's
    # bias's: BatchNorm subtracts that bias, so its gradient, and its step size's, is zero)
    meta_gradient(model, [task])
    for k, a in zip(theta, model.step_size_list):
        assert a.grad is not None and (a.grad.abs().sum() > 0) == (k != FIRST_CONV_BIAS), k


def test_anil_adapts_the_head_only():
    model = learner(ANIL, inner_steps=3)
    (task,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    adapted = model.inner_loop(theta, task.support, task.support_labels, 3)
    changed = {k for k in theta if not torch.equal(theta[k], adapted[k])}
    assert changed == {"head.weight", "head.bias"}


def sgd_reference(model, theta, support, labels, batches, lr):
    """The paper's inner loop written out with autograd: plain SGD, one step per index batch."""
    phi = {k: v.detach().clone() for k, v in theta.items()}
    for idx in batches:
        phi = {k: v.requires_grad_() for k, v in phi.items()}
        loss = F.cross_entropy(model.f(phi, support[idx]), labels[idx])
        g = torch.autograd.grad(loss, list(phi.values()))
        phi = {k: (v - lr * gk).detach() for (k, v), gk in zip(phi.items(), g)}
    return phi


@pytest.mark.parametrize("inner_batch,workers", [(0, 1), (4, 1), (4, 2)])
def test_reptile_step_moves_theta_toward_the_mean_adapted_weights(inner_batch, workers):
    model = learner(Reptile, inner_steps=3, inner_lr=0.2, inner_batch=inner_batch, workers=workers)
    tasks = random_tasks(2)
    theta = {k: v.detach().clone() for k, v in model.f.params().items()}
    adapted = []
    for t in tasks:
        batches = order(t, 3, inner_batch)
        assert (batches is None) == (inner_batch == 0)
        batches = [slice(None)] * 3 if batches is None else batches
        adapted.append(sgd_reference(model, theta, t.support, t.support_labels, batches, 0.2))
    eps = 0.5
    opt = torch.optim.SGD(model.parameters(), lr=eps)
    opt.zero_grad()
    model.meta_step(tasks)
    opt.step()
    for k, p in model.f.params().items():
        mean_phi = sum(a[k] for a in adapted) / 2
        assert torch.allclose(p, theta[k] + eps * (mean_phi - theta[k]), atol=1e-10), k


def test_reptile_batch_order_visits_every_support_example_once_per_pass():
    episode = Task(
        torch.randn(6, 1, 8, 8),
        torch.arange(3).repeat(2),
        torch.randn(3, 1, 8, 8),
        torch.arange(3),
        3,
        torch.arange(3),
        seed=11,
    )
    batches = order(episode, 5, 2)
    assert [len(b) for b in batches] == [2] * 5
    first_pass = torch.cat(batches[:3])
    assert sorted(first_pass.tolist()) == list(range(6))
    assert [b.tolist() for b in order(episode, 5, 2)] == [b.tolist() for b in batches]  # same episode, same order
    others = [torch.cat(batch_order(torch.Generator().manual_seed(s), 6, 3, 2)).tolist() for s in range(5)]
    assert any(o != first_pass.tolist() for o in others)  # other episodes, other orders
    assert order(episode, 5, 0) is None and order(episode, 5, 6) is None


def test_reptile_test_time_adaptation_uses_test_batches():
    model = learner(Reptile, test_steps=4, inner_lr=0.2, test_batch=2).eval()
    (t,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    phi = sgd_reference(model, theta, t.support, t.support_labels, order(t, 4, 2), 0.2)
    got = model.adapt(t.support, t.support_labels, WAY, t.generator())(t.query)
    assert torch.allclose(got, model.f(phi, t.query), atol=1e-10)
    full = sgd_reference(model, theta, t.support, t.support_labels, [slice(None)] * 4, 0.2)
    assert not torch.allclose(got, model.f(full, t.query), atol=1e-6)  # the batches made a difference


def adam_reference(model, theta, task, batches, lr, state):
    """Nichol et al.'s inner loop with torch.optim.Adam (beta1 = 0), its state `(step, moments)`
    carried in from earlier tasks; returns phi and the state after the task."""
    phi = {k: v.detach().clone().requires_grad_() for k, v in theta.items()}
    opt = torch.optim.Adam(phi.values(), lr=lr, betas=(0.0, 0.999), eps=1e-8)
    step, moments = state
    for k, p in phi.items():
        opt.state[p] = {
            "step": torch.tensor(float(step)),
            "exp_avg": torch.zeros_like(p),
            "exp_avg_sq": moments[k].clone(),
        }
    for idx in batches:
        opt.zero_grad()
        F.cross_entropy(model.f(phi, task.support[idx]), task.support_labels[idx]).backward()
        opt.step()
    return (
        {k: v.detach() for k, v in phi.items()},
        (step + len(batches), {k: opt.state[p]["exp_avg_sq"] for k, p in phi.items()}),
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_reptile_with_inner_adam_matches_torch_adam_and_carries_its_moments(workers):
    model = learner(Reptile, inner_steps=3, inner_lr=0.01, inner_batch=4, inner_optimizer="adam", workers=workers)
    eps = 0.5
    opt = torch.optim.SGD(model.parameters(), lr=eps)
    state = (0, {k: torch.zeros_like(v) for k, v in model.f.params().items()})
    for _ in range(2):  # two meta-steps: the second starts from the moments the first left
        tasks = random_tasks(2)
        theta = {k: v.detach().clone() for k, v in model.f.params().items()}
        outs = [adam_reference(model, theta, t, order(t, 3, 4), 0.01, state) for t in tasks]
        opt.zero_grad()
        model.meta_step(tasks)
        opt.step()
        for k, p in model.f.params().items():
            mean_phi = sum(phi[k] for phi, _ in outs) / 2
            assert torch.allclose(p, theta[k] + eps * (mean_phi - theta[k]), atol=1e-10), k
        state = (state[0] + 3, {k: sum(s[1][k] for _, s in outs) / 2 for k in theta})
        assert model.adam_state.count() == state[0]
        for k, v in model.adam_state.moments().items():
            assert torch.allclose(v, state[1][k], atol=1e-12), k
            assert (v.abs().sum() > 0) == (k != FIRST_CONV_BIAS), k


def test_reptile_inner_adam_at_test_time_starts_from_the_trained_moments_and_keeps_them():
    model = learner(Reptile, inner_steps=2, test_steps=3, inner_lr=0.01, inner_optimizer="adam")
    model.meta_step(random_tasks(2))  # leaves moments and a step count
    model.eval()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    (t,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    state = (model.adam_state.count(), {k: v.clone() for k, v in model.adam_state.moments().items()})
    phi, _ = adam_reference(model, theta, t, [slice(None)] * 3, 0.01, state)
    assert torch.allclose(model.adapt(t.support, t.support_labels, WAY)(t.query), model.f(phi, t.query), atol=1e-10)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())  # adaptation changed nothing
    model.meta_step(random_tasks(2))  # a step in eval mode (validation) must not move them either
    model.zero_grad()
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    fresh, _ = adam_reference(
        model, theta, t, [slice(None)] * 3, 0.01, (0, {k: torch.zeros_like(v) for k, v in theta.items()})
    )
    assert not torch.allclose(model.f(fresh, t.query), model.f(phi, t.query), atol=1e-6)  # the moments mattered


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_reptile_under_vmap_equals_the_loop(optimizer):
    tasks = random_tasks(3)
    # eps 1e-3: with torch's 1e-8 the division by sqrt(v) amplifies the two BatchNorm kernels'
    # last-bit differences to 1e-10 in float64
    models = [
        learner(Reptile, inner_steps=2, inner_lr=0.01, inner_optimizer=optimizer, adam_eps=1e-3, vectorize=v)
        for v in ("vmap", "loop")
    ]
    models[1].load_state_dict(models[0].state_dict())
    grads = []
    for m in models:
        m.zero_grad()
        m.meta_step(tasks)
        grads.append(torch.cat([p.grad.reshape(-1) for p in m.parameters()]))
    assert vmapped(models[0]) and torch.allclose(grads[0], grads[1], atol=1e-12)
    if optimizer == "adam":
        for (k, a), b in zip(models[0].adam_state.moments().items(), models[1].adam_state.moments().values()):
            assert torch.allclose(a, b, atol=1e-12), k


def test_reptile_rejects_an_unknown_inner_optimizer():
    with pytest.raises(ValueError, match="inner_optimizer must be 'sgd' or 'adam'"):
        learner(Reptile, inner_optimizer="rmsprop")


def test_meta_lstm_update_is_forget_times_theta_minus_input_times_gradient():
    model = learner(MetaLSTM)
    with torch.no_grad():  # gates fixed: f = 1, i = 0.1, so one step must be SGD with step 0.1
        model.writer.forget.weight.zero_(), model.writer.forget.bias.fill_(60.0)
        model.writer.input.weight.zero_(), model.writer.input.bias.fill_(torch.logit(torch.tensor(0.1)).item())
    (task,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    loss_of = lambda p: F.cross_entropy(model.f(p, task.support), task.support_labels)
    expected = gradient_steps(loss_of, theta, 2, 0.1)
    got = model.inner_loop(theta, task.support, task.support_labels, 2)
    for k in theta:
        assert torch.allclose(got[k], expected[k], atol=1e-10), k


def test_a_model_with_a_fixed_head_refuses_another_way():
    model = learner()
    (task,) = random_tasks(1)
    with pytest.raises(ConfigError, match="3-way output layer"):
        model.adapt(task.support, task.support_labels, 5)


def test_any_user_module_works_as_the_body():
    body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh())
    model = MAML(body, way=WAY, input_shape=[1, 8, 8], inner_steps=2).double()
    assert meta_gradient(model, random_tasks(2)).abs().sum() > 0


def test_short_real_maml_run_beats_chance(data_dir, omniglot, tmp_path):
    from kshot.engine.config import TrainConfig
    from kshot.engine.evaluator import evaluate
    from kshot.engine.trainer import Trainer

    config = TrainConfig.from_dict(
        dict(
            method="maml",
            data_dir=str(data_dir),
            way=5,
            shot=1,
            query=5,
            meta_batch=2,
            episodes=60,
            lr=5e-3,
            val_split=None,
            log_every=25,
            backbone_args={"hidden": 16, "out_channels": 16},
        )
    )
    trainer = Trainer.from_config(config, tmp_path, progress=False)
    trainer.train()
    result = evaluate(trainer.learner, omniglot["test"], 5, 1, 5, episodes=40, seed=0, progress=False)
    assert result.accuracy > 50.0, result  # chance is 20%
    from kshot.engine.build import load_learner

    restored, meta = load_learner(tmp_path / "best.safetensors")
    assert meta["method_args"]["way"] == 5
    again = evaluate(restored, omniglot["test"], 5, 1, 5, episodes=40, seed=0, progress=False)
    assert torch.allclose(again.per_episode, result.per_episode)


# (Reptile has no differentiable meta-loss; its step is checked against its paper's update above,
# in one and in two worker threads.)
@pytest.mark.parametrize("cls", [MAML, FirstOrderMAML, MetaSGD, ANIL, MetaLSTM])
@pytest.mark.parametrize("bn", ["transductive", "support"])
@pytest.mark.parametrize("workers", [1, 3])
def test_meta_step_accumulates_the_same_gradient_as_meta_loss(cls, bn, workers):
    """Also in worker threads (each task on its own copy of the network, BN settings per thread)."""
    model = learner(cls, inner_steps=2, bn=bn, workers=workers)  # on a CPU: the per-task loop
    tasks = random_tasks(4)
    expected = meta_gradient(model, tasks)
    model.zero_grad()
    value, logits = model.meta_step(tasks)
    got = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(got, expected, atol=1e-12)
    assert logits.shape == (4, 6, WAY) and abs(value - model.meta_loss(tasks)[0].item()) < 1e-9


def test_map_tasks_runs_tasks_side_by_side_and_keeps_their_order():
    from kshot.learners.batching import map_tasks
    from kshot.learners.functional import Functional

    f = Functional(nn.Linear(2, 2))
    meeting = threading.Barrier(2, timeout=30)  # passes only if two tasks are running at once
    threads_seen = set()

    def task(i):
        meeting.wait()
        threads_seen.add(threading.get_ident())
        assert f.module is not f._module  # each worker calls its own copy
        return i * i

    before = torch.get_num_threads()
    assert list(map_tasks(task, range(6), 2, f)) == [0, 1, 4, 9, 16, 25]
    assert len(threads_seen) == 2 and threading.get_ident() not in threads_seen
    assert torch.get_num_threads() == before
    assert f.module is f._module


def test_task_batchnorm_fused_and_composite_paths_agree_to_second_order():
    from kshot.nets.norm import TaskBatchNorm2d, vmap_safe

    layer = TaskBatchNorm2d(3).double()
    nn.init.uniform_(layer.weight), nn.init.uniform_(layer.bias)
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64, requires_grad=True)

    def hessian_vector():
        out = (layer(x) ** 3).sum()
        g = torch.autograd.grad(out, [x, layer.weight], create_graph=True)
        return torch.autograd.grad(sum(gi.pow(2).sum() for gi in g), [x, layer.weight, layer.bias])

    fused = hessian_vector()
    with vmap_safe():
        composite = hessian_vector()
    for a, b in zip(fused, composite):
        assert torch.allclose(a, b, atol=1e-9)


def test_learned_per_layer_per_step_rates_drive_each_inner_step():
    """LSLR (Antoniou et al. 2019): step i updates each parameter tensor with its own rate for
    step i; steps beyond the trained ones reuse the last; the rates are meta-learned."""
    model = learner(inner_steps=2, inner_lr=0.2, step_lrs=True)
    with torch.no_grad():
        for rates in model.step_lr_list:
            rates.uniform_(0.05, 0.5)
    (task,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    loss_of = lambda p: F.cross_entropy(model.f(p, task.support), task.support_labels)
    expected = theta
    for step in range(3):  # the third step reuses step 2's rates
        grads = torch.func.grad(loss_of)(expected)
        rate = {k: r[min(step, 1)] for k, r in zip(theta, model.step_lr_list)}
        expected = {k: v - rate[k] * grads[k] for k, v in expected.items()}
    adapted = model.inner_loop(theta, task.support, task.support_labels, 3)
    for k in theta:
        torch.testing.assert_close(adapted[k], expected[k])
    meta_gradient(model, [task])
    for k, rates in zip(theta, model.step_lr_list):
        assert rates.grad is not None and (rates.grad.abs().sum() > 0) == (k != FIRST_CONV_BIAS), k


def test_multi_step_loss_weights_every_step_then_anneals_to_the_last():
    model = learner(inner_steps=2, inner_lr=0.3, multi_step_loss=4)
    assert model.step_loss_weights() == [0.5, 0.5]
    (task,) = random_tasks(1)
    theta = model.f.params()
    loss_of = lambda p: F.cross_entropy(model.f(p, task.support), task.support_labels)
    one = gradient_steps(loss_of, theta, 1, 0.3)
    two = gradient_steps(loss_of, one, 1, 0.3)
    query_loss = lambda p: F.cross_entropy(model.f(p, task.query), task.query_labels)
    loss, _ = model.task_loss(theta, task.support, task.support_labels, task.query, task.query_labels)
    torch.testing.assert_close(loss, 0.5 * query_loss(one) + 0.5 * query_loss(two))
    for _ in range(2):
        model.meta_step([task])
    earlier, last = model.step_loss_weights()
    assert earlier < 0.5 < last and abs(earlier + last - 1) < 1e-12
    for _ in range(2):
        model.meta_step([task])
    assert model.step_loss_weights() is None  # annealed: the last step's loss alone
    loss, _ = model.task_loss(theta, task.support, task.support_labels, task.query, task.query_labels)
    torch.testing.assert_close(loss, query_loss(two))
    with pytest.raises(ValueError, match="multi_step_loss"):
        learner(multi_step_loss=-1)


def test_per_step_batchnorm_gives_each_step_its_own_scale_and_shift():
    """BNWB (Antoniou et al. 2019): step i's forward uses step i's BatchNorm weights and biases,
    the query pass after the last step the next ones; they are not adapted in the inner loop, and
    the outer loop learns each."""
    model = learner(inner_steps=2, inner_lr=0.3, per_step_bn=True)
    with torch.no_grad():
        for values in model.step_norm_list:
            values.uniform_(0.5, 1.5)
    (task,) = random_tasks(1)
    theta = {k: v.detach() for k, v in model.f.params().items()}
    norms = lambda step: {k: v[step].detach() for k, v in zip(model.norm_names, model.step_norm_list)}
    loss_of = lambda p: F.cross_entropy(model.f(p, task.support), task.support_labels)
    expected = theta
    for step in range(2):
        current = {**expected, **norms(step)}
        grads = torch.func.grad(loss_of)(current)
        expected = {k: v - (0.3 * grads[k] if k not in model.norm_names else 0) for k, v in current.items()}
    expected = {**expected, **norms(2)}
    adapted = model.inner_loop(theta, task.support, task.support_labels, 2)
    for k in theta:
        torch.testing.assert_close(adapted[k], expected[k], msg=k)
    model.meta_loss([task])[0].backward()
    assert all(v.grad is not None and (v.grad.abs().sum(1) > 0).all() for v in model.step_norm_list)
