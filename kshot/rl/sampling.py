"""Trajectories of a policy on one task: K copies of the task's environment stepped side by side
(the family's vector environment), the policy evaluated once per time step for all of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .navigation import HORIZON, EnvFamily
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
    family: EnvFamily,
    task: np.ndarray,
    policy: GaussianMLPPolicy,
    params: Params | None,
    k: int,
    generator: torch.Generator,
    horizon: int = HORIZON,
) -> Trajectories:
    envs = family.make_vector(task, k)
    high = torch.as_tensor(envs.single_action_space.high, dtype=torch.float32)
    obs = torch.as_tensor(envs.reset(seed=0)[0], dtype=torch.float32)
    alive = torch.ones(k, dtype=torch.bool)
    steps: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    for _ in range(horizon):
        dist = policy.distribution(obs, params)
        action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
        o, r, terminated, truncated, _ = envs.step((action.clamp(-1, 1) * high).numpy())
        running = alive.clone()
        steps.append((obs, action, torch.as_tensor(r, dtype=torch.float32) * running, running.float()))
        alive &= ~torch.as_tensor(terminated | truncated)
        obs = torch.as_tensor(o, dtype=torch.float32)
        if not alive.any():
            break
    return Trajectories(*(torch.stack(parts, 1) for parts in zip(*steps)))
