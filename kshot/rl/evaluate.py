"""Average return on new tasks after 0, 1, 2, ... policy-gradient steps from an initialisation,
with 95% intervals over tasks (Finn et al. 2017, figure 5's measure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..engine.evaluator import mean_ci95
from .navigation import FAMILIES
from .policy import GaussianMLPPolicy
from .policy_gradient import adapted_params
from .sampling import Trajectories, rollouts


@dataclass
class AdaptationResult:
    returns: np.ndarray  # [tasks, steps + 1]: mean return of K trajectories after each number of steps
    tasks: np.ndarray  # [tasks, task_dim]
    examples: list[list[Trajectories]]  # for the first few tasks, the trajectories after each step

    def summary(self) -> list[tuple[float, float]]:
        """(mean, 95% half-width) over tasks, per number of steps."""
        return [mean_ci95(torch.from_numpy(self.returns[:, s])) for s in range(self.returns.shape[1])]


def adaptation_returns(
    family_name: str,
    policy: GaussianMLPPolicy,
    tasks: np.ndarray,
    steps: int = 3,
    trajectories: int = 20,
    inner_lr: float = 0.5,
    seed: int = 0,
    keep_examples: int = 4,
) -> AdaptationResult:
    family = FAMILIES[family_name]
    out = np.zeros((len(tasks), steps + 1))
    examples = []
    for i, task in enumerate(tasks):
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        params = {k: v.detach().requires_grad_() for k, v in policy.params().items()}
        kept = []
        for step in range(steps + 1):
            batch = rollouts(family, task, policy, params, trajectories, g)
            out[i, step] = batch.returns().mean().item()
            kept.append(batch)
            if step < steps:
                params = {
                    k: v.detach().requires_grad_()
                    for k, v in adapted_params(policy, params, batch, inner_lr, False).items()
                }
        if i < keep_examples:
            examples.append(kept)
    return AdaptationResult(out, np.asarray(tasks), examples)
