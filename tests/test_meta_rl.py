"""Meta-reinforcement learning pieces (Finn et al. 2017, section 5.3): the task environments, the
policy-gradient estimator and one inner step."""

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env  # noqa: E402

from kshot.rl.navigation import FAMILIES, GoalVelocity, PointNavigation  # noqa: E402
from kshot.rl.policy import GaussianMLPPolicy  # noqa: E402
from kshot.rl.policy_gradient import adapted_params, discounted_returns, surrogate_loss  # noqa: E402
from kshot.rl.sampling import Trajectories, rollouts  # noqa: E402


@pytest.mark.parametrize("env", [PointNavigation(), GoalVelocity()], ids=["navigation", "goal-velocity"])
def test_environments_follow_the_gymnasium_api(env):
    check_env(env, skip_render_check=True)


def test_navigation_is_the_papers_point_task():
    env = PointNavigation(goal=[0.3, -0.2])
    obs, _ = env.reset(seed=0)
    assert np.allclose(obs, 0)  # starts at the origin
    obs, reward, terminated, truncated, _ = env.step(np.array([0.5, -0.5]))  # clipped to 0.1 per axis
    assert np.allclose(obs, [0.1, -0.1]) and reward == pytest.approx(-np.hypot(0.2, -0.1))
    for _ in range(98):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(2))
    assert not truncated
    assert env.step(np.zeros(2))[3]  # the 100th step ends the episode
    env.reset(options={"goal": [0.05, 0.0]})
    assert env.step(np.array([0.05, 0.0]))[2]  # reaching the goal ends it too


def test_discounted_returns_stop_at_the_end_of_an_episode():
    rewards = torch.tensor([[1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert torch.allclose(discounted_returns(rewards, mask, 0.5), torch.tensor([[1.5, 1.0, 0.0]]))


def test_the_policy_gradient_estimator_is_unbiased_on_a_bandit_with_a_known_gradient():
    """One-step episodes with reward -(a - c)^2: the expected return is -(|mu - c|^2 + sum sigma^2),
    whose exact gradient autograd gives; the score-function estimate must match it."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(obs_dim=1, act_dim=2, hidden=(8,))
    with torch.no_grad():
        policy.log_std.fill_(-0.5)
    c, n = torch.tensor([0.3, -0.4]), 400_000
    obs = torch.ones(n, 1, 1)
    mean, log_std = policy(obs[:1, 0])
    exact = torch.autograd.grad(-(((mean - c) ** 2).sum() + (2 * log_std).exp().sum()), list(policy.parameters()))
    with torch.no_grad():
        dist = policy.distribution(obs)
        actions = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(1))
    rewards = -((actions - c) ** 2).sum(-1)
    batch = Trajectories(obs, actions, rewards, torch.ones(n, 1))
    estimate = torch.autograd.grad(
        -surrogate_loss(policy, None, batch, rewards - rewards.mean()), list(policy.parameters())
    )
    for e, x in zip(estimate, exact):
        assert torch.allclose(e, x, atol=0.02 + 0.03 * x.abs().max().item())


def test_one_inner_step_raises_the_expected_return_on_a_fixed_task():
    torch.manual_seed(0)
    family, task = FAMILIES["navigation-2d"], np.array([0.4, 0.3])
    policy = GaussianMLPPolicy(2, 2)
    g = torch.Generator().manual_seed(0)
    params = {k: v.detach().requires_grad_() for k, v in policy.params().items()}
    batch = rollouts(family, task, policy, params, 40, g)
    adapted = adapted_params(policy, params, batch, lr=0.5, create_graph=False)
    before = rollouts(family, task, policy, params, 200, torch.Generator().manual_seed(1)).returns().mean()
    after = rollouts(family, task, policy, adapted, 200, torch.Generator().manual_seed(1)).returns().mean()
    assert after > before + 10.0, (before, after)  # measured: -98 before, -65 after


def test_a_meta_training_iteration_writes_a_policy_that_adapts_on_new_tasks(tmp_path):
    from kshot.rl.evaluate import adaptation_returns
    from kshot.rl.meta import MetaRLSettings, load_policy, train

    settings = MetaRLSettings(family="goal-velocity", iterations=2, meta_batch=2, trajectories=3)
    before = {k: v.clone() for k, v in train(settings, tmp_path, progress=lambda row: None).state_dict().items()}
    policy, meta = load_policy(tmp_path / "policy.safetensors")
    assert meta["settings"]["kind"] == "maml" and len(meta["log"]) == 2
    assert all(torch.equal(v, policy.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(before["log_std"], torch.zeros(1))  # the outer step moved the initialisation
    result = adaptation_returns("goal-velocity", policy, np.array([[0.5], [-0.5]]), steps=1, trajectories=3)
    assert result.returns.shape == (2, 2) and np.isfinite(result.returns).all()
    assert len(result.summary()) == 2


def test_meta_training_with_more_inner_steps_samples_after_each_and_learns_otherwise(tmp_path, monkeypatch):
    from kshot.errors import ConfigError
    from kshot.rl import meta

    calls = []
    real = meta.rollouts
    monkeypatch.setattr(meta, "rollouts", lambda *a, **k: calls.append(1) or real(*a, **k))
    weights = {}
    for steps in (1, 2):
        calls.clear()
        settings = meta.MetaRLSettings(iterations=1, meta_batch=1, trajectories=2, inner_steps=steps)
        weights[steps] = meta.train(settings, tmp_path / str(steps), progress=lambda row: None).state_dict()
        assert len(calls) == steps + 1  # trajectories before the first step and after each
    assert any(not torch.equal(weights[1][k], weights[2][k]) for k in weights[1])
    with pytest.raises(ConfigError, match="--inner-steps"):
        meta.MetaRLSettings(inner_steps=0)


@pytest.mark.parametrize("name", ["navigation-2d", "goal-velocity"])
def test_the_batched_copies_step_exactly_as_the_gymnasium_environment(name):
    from kshot.rl.navigation import EnvFamily

    family = FAMILIES[name]
    task = family.sample(1, np.random.default_rng(3))[0]
    rng = np.random.default_rng(4)
    actions = rng.uniform(-0.2, 0.2, (30, 3) + family.make(task).action_space.shape)
    for vector in (family.make_vector(task, 3), EnvFamily.make_vector(family, task, 3)):  # numpy, and SyncVectorEnv
        obs, _ = vector.reset(seed=0)
        singles = [family.make(task) for _ in range(3)]
        for env in singles:
            env.reset(seed=0)
        for a in actions:
            obs, rewards, terminated, truncated, _ = vector.step(a)
            expected = [env.step(a[i]) for i, env in enumerate(singles)]
            assert np.allclose(obs, [e[0] for e in expected], atol=1e-6)
            assert np.allclose(rewards, [e[1] for e in expected])
            assert list(terminated) == [e[2] for e in expected]


def test_rl_commands_train_evaluate_record_and_draw(tmp_path, capsys):
    import json

    from kshot.cli import main

    out, record, figure = tmp_path / "run", tmp_path / "rows.jsonl", tmp_path / "rl.png"
    assert (
        main(
            ["rl", "train", "--family", "goal-velocity", "--out", str(out), "--iterations", "1"]
            + ["--meta-batch", "2", "--trajectories", "3", "--inner-steps", "2"]
        )
        == 0
    )
    assert json.loads((out / "policy.json").read_text())["settings"]["inner_steps"] == 2
    args = ["rl", "eval", str(out / "policy.safetensors"), "--random", "--tasks", "2", "--steps", "1"]
    assert main(args + ["--trajectories", "3", "--record", str(record), "--plot", str(figure)]) == 0
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r.get("train_inner_steps") for r in rows] == [2, 2, None, None]
    assert [(r["method"], r["inner_steps"]) for r in rows] == [
        ("meta-rl maml", 0),
        ("meta-rl maml", 1),
        ("meta-rl random", 0),
        ("meta-rl random", 1),
    ]
    assert figure.stat().st_size > 10_000
    assert main(["rl", "eval", "--tasks", "2"]) == 2  # nothing to evaluate: one clear line
    assert "give policy files, or --random" in capsys.readouterr().err
