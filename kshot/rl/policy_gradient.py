"""The inner loop of MAML for reinforcement learning (Finn et al. 2017, section 3.3): vanilla
policy gradient (REINFORCE) with a linear feature baseline fitted per task, as in their code
(rllab's LinearFeatureBaseline), and one gradient step on it that can be differentiated through."""

from __future__ import annotations

import torch
from torch import Tensor

from .policy import GaussianMLPPolicy, Params
from .sampling import Trajectories

DISCOUNT = 0.99


def discounted_returns(rewards: Tensor, mask: Tensor, discount: float = DISCOUNT) -> Tensor:
    """[K, T] reward-to-go at each step, summed with `discount` per step, zero after the end."""
    out, running = torch.zeros_like(rewards), torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        running = (rewards[:, t] + discount * running) * mask[:, t]
        out[:, t] = running
    return out


def baseline_features(obs: Tensor, mask: Tensor) -> Tensor:
    """[K, T, F]: observation, its square, time (steps / 100) to the third power, and 1."""
    o = obs.clamp(-10, 10)
    t = (torch.arange(obs.shape[1], dtype=obs.dtype) / 100).view(1, -1, 1).expand(obs.shape[0], -1, 1)
    return torch.cat([o, o**2, t, t**2, t**3, torch.ones_like(t)], 2) * mask.unsqueeze(2)


def linear_baseline(obs: Tensor, returns: Tensor, mask: Tensor, ridge: float = 1e-5) -> Tensor:
    """[K, T] the returns' least-squares fit on `baseline_features` (a task's own trajectories)."""
    f = baseline_features(obs, mask)
    f = f.reshape(-1, f.shape[2])
    y = (returns * mask).reshape(-1, 1)
    a = f.T @ f + ridge * torch.eye(f.shape[1])
    w = torch.linalg.solve(a, f.T @ y)
    return (f @ w).reshape(returns.shape) * mask


def advantages(batch: Trajectories, discount: float = DISCOUNT) -> Tensor:
    """Returns minus the baseline, standardised over the steps taken (rllab's `center_adv`, which
    the paper code keeps on), so the step size does not depend on the rewards' scale."""
    returns = discounted_returns(batch.rewards, batch.mask, discount)
    adv = returns - linear_baseline(batch.obs, returns, batch.mask)
    taken = batch.mask.bool()
    mean, std = adv[taken].mean(), adv[taken].std()
    return (adv - mean) / (std + 1e-8) * batch.mask


def surrogate_loss(policy: GaussianMLPPolicy, params: Params | None, batch: Trajectories, adv: Tensor) -> Tensor:
    """Minus the mean over the steps taken of log pi(a|s) * advantage: its gradient is the
    REINFORCE estimate of minus the expected return's gradient."""
    log_prob = policy.distribution(batch.obs, params).log_prob(batch.actions).sum(-1)  # [K, T]
    return -(log_prob * adv.detach() * batch.mask).sum() / batch.mask.sum()


def adapted_params(
    policy: GaussianMLPPolicy, params: Params, batch: Trajectories, lr: float, create_graph: bool
) -> Params:
    """One policy-gradient step of size `lr` from `params` on `batch` (differentiable with
    `create_graph`, as MAML's outer step needs)."""
    loss = surrogate_loss(policy, params, batch, advantages(batch))
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
