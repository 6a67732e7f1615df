"""The inner loop of gradient-based meta-learning, written with `torch.func` so that any
`nn.Module` works unchanged: the module is called as a pure function of a parameter dict.

Second order is the default: the inner gradients stay in the autograd graph, so the outer
`backward()` differentiates through them (MAML). `first_order=True` detaches them, which
drops exactly the Hessian term (first-order MAML).
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]
LearningRate = float | Tensor | Mapping[str, Tensor]


class Functional:
    """`f(params, x)`: the module's forward with the given parameters (buffers as they are)."""

    def __init__(self, module: nn.Module):
        self.module = module

    def params(self) -> Params:
        return dict(self.module.named_parameters())

    def __call__(self, params: Params, x: Tensor) -> Tensor:
        return functional_call(self.module, {**dict(self.module.named_buffers()), **params}, (x,))


def step_size(lr: LearningRate, name: str) -> float | Tensor:
    return lr[name] if isinstance(lr, Mapping) else lr


def gradient_steps(loss_of: Callable[[Params], Tensor], params: Params, steps: int, lr: LearningRate,
                   first_order: bool = False, adapted: list[str] | None = None) -> Params:
    """`steps` plain gradient-descent steps on `loss_of`, over the names in `adapted` (all by
    default; ANIL adapts the head only). `lr` is a number or, for Meta-SGD, one tensor per name."""
    names = list(params) if adapted is None else adapted
    for _ in range(steps):
        fixed = {k: v for k, v in params.items() if k not in names}
        grads = torch.func.grad(lambda sub: loss_of({**fixed, **sub}))({k: params[k] for k in names})
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        params = {**params, **{k: params[k] - step_size(lr, k) * grads[k] for k in names}}
    return params
