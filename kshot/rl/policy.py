"""The Gaussian MLP policy of Finn et al. 2017's reinforcement-learning experiments: two hidden
layers of 100 ReLU units give the mean action, and a learned log standard deviation per action
dimension (state-independent). Actions live in [-1, 1] units; the sampler scales them to the
environment's action box, as the paper code's normalised environments do."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Normal
from torch.func import functional_call

Params = dict[str, Tensor]


class GaussianMLPPolicy(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (100, 100)):
        super().__init__()
        layers, width = [], obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.mean = nn.Sequential(*layers, nn.Linear(width, act_dim))
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(obs), self.log_std.expand(obs.shape[:-1] + self.log_std.shape)

    def params(self) -> Params:
        return dict(self.named_parameters())

    def distribution(self, obs: Tensor, params: Params | None = None) -> Normal:
        mean, log_std = self(obs) if params is None else functional_call(self, params, (obs,))
        return Normal(mean, log_std.exp())
