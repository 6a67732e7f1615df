"""Trajectories of a policy on one task: K copies of the task's environment stepped side by side,
the policy evaluated once per time step for all of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .navigation import HORIZON, TaskFamily
from .policy import GaussianMLPPolicy, Params


@dataclass
class Trajectories:
    obs: Tensor  # [K, T, obs_dim]
    actions: Tensor  # [K, T, act_dim], in the policy's [-1, 1] units (before clipping)
    rewards: Tensor  # [K, T]
    mask: Tensor  # [K, T] 1 while the episode runs

    def returns(self) -> Tensor:
        """Undiscounted return of each trajectory [K]."""
        return (self.rewards * self.mask).sum(1)


@torch.no_grad()
def rollouts(
    family: TaskFamily,
    task: np.ndarray,
    policy: GaussianMLPPolicy,
    params: Params | None,
    k: int,
    generator: torch.Generator,
    horizon: int = HORIZON,
) -> Trajectories:
    envs = [family.make(task) for _ in range(k)]
    high = torch.as_tensor(envs[0].action_space.high, dtype=torch.float32)
    obs = torch.as_tensor(np.stack([env.reset(seed=0)[0] for env in envs]), dtype=torch.float32)
    alive = torch.ones(k, dtype=torch.bool)
    steps: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    for _ in range(horizon):
        dist = policy.distribution(obs, params)
        action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
        rewards, next_obs, running = torch.zeros(k), obs.clone(), alive.clone()
        for i in torch.nonzero(alive).flatten().tolist():
            o, r, terminated, truncated, _ = envs[i].step((action[i].clamp(-1, 1) * high).numpy())
            next_obs[i], rewards[i] = torch.as_tensor(o), r
            alive[i] = not (terminated or truncated)
        steps.append((obs, action, rewards, running.float()))
        obs = next_obs
        if not alive.any():
            break
    return Trajectories(*(torch.stack(parts, 1) for parts in zip(*steps)))
