"""Antoniou, Edwards & Storkey (ICLR 2019, "How to train your MAML"): MAML's improvements that
work per inner step, as options of MAML and first-order MAML, each off by default and usable alone.

- `step_lrs=True` (LSLR): an inner learning rate per parameter tensor (layer) and inner step,
  learned with the initialisation, starting at `inner_lr`.
- `per_step_bn=True` (BNWB): each inner step, and the query pass after the last, has its own
  BatchNorm weights and biases, learned in the outer loop and not adapted in the inner loop. (Their
  per-step running statistics, BNRS, have nothing to act on here: kshot's MAML normalises with the
  batch's statistics at test time too, as Finn et al. do.)
- `multi_step_loss=E` (MSL): meta-train on the query loss after every inner step, weighted, the
  weight moving to the last step over the first E meta-steps; after that the last step's loss
  alone counts.

Test steps beyond the trained ones reuse the last trained step's rates and BatchNorm parameters.
The outer cosine annealing is a trainer setting (`kshot train --lr-schedule cosine`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..nets.norm import TaskBatchNorm2d
from .functional import LearningRate, Params, gradient_steps
from .gradient import GradientLearner


class PerStepOptions(GradientLearner):
    def __init__(
        self,
        encoder: nn.Module,
        step_lrs: bool = False,
        per_step_bn: bool = False,
        multi_step_loss: int = 0,
        **options,
    ):
        super().__init__(encoder, **options)
        if multi_step_loss < 0:
            raise ValueError(f"multi_step_loss (meta-steps of annealing) must be >= 0, not {multi_step_loss}")
        steps = max(self.inner_steps, 1)
        self.multi_step_loss = multi_step_loss
        # ParameterLists in a fixed name order, as Meta-SGD's (dotted names cannot key a ParameterDict).
        self.step_lr_list = None
        if step_lrs:
            self.step_lr_list = nn.ParameterList(
                [nn.Parameter(torch.full((steps,), float(self.inner_lr))) for _ in self.net.parameters()]
            )
        self.norm_names: list[str] = []
        self.step_norm_list = None
        if per_step_bn:
            norms = [n for n, m in self.net.named_modules() if isinstance(m, (TaskBatchNorm2d, nn.BatchNorm2d))]
            if not norms:
                raise ValueError("per_step_bn needs a backbone with BatchNorm layers")
            self.norm_names = [f"{n}.{p}" for n in norms for p in ("weight", "bias")]
            current = dict(self.net.named_parameters())
            self.step_norm_list = nn.ParameterList(
                [nn.Parameter(current[k].detach().expand(steps + 1, -1).clone()) for k in self.norm_names]
            )
        if multi_step_loss:
            self.register_buffer("meta_steps_taken", torch.zeros((), dtype=torch.long))

    # ---- per-step parameters ---------------------------------------------------------
    def step_sizes(self, step: int = 0) -> LearningRate:
        if self.step_lr_list is None:
            return self.inner_lr
        step = min(step, len(self.step_lr_list[0]) - 1)
        return {name: rates[step] for name, rates in zip(self.f.params(), self.step_lr_list)}

    def with_step_norms(self, params: Params, step: int) -> Params:
        """params with step `step`'s BatchNorm weights and biases (as they are without per_step_bn)."""
        if self.step_norm_list is None:
            return params
        step = min(step, self.step_norm_list[0].shape[0] - 1)
        return {**params, **{k: v[step] for k, v in zip(self.norm_names, self.step_norm_list)}}

    def adapted_names(self) -> list[str] | None:
        if self.step_norm_list is None:
            return None
        return [k for k in self.f.params() if k not in self.norm_names]

    # ---- the inner loop, one step at a time ---------------------------------------------
    def inner_path(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Iterator[Params]:
        """The adapted parameters after each inner step, carrying the next pass's BatchNorm."""
        loss_of = lambda p: self.inner_loss(self.f(p, support), labels)
        for step in range(steps):
            params = self.with_step_norms(params, step)
            params = gradient_steps(loss_of, params, 1, self.step_sizes(step), self.first_order, self.adapted_names())
            yield self.with_step_norms(params, step + 1)

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        if self.step_norm_list is None:
            return super().inner_loop(params, support, labels, steps)
        path = [self.with_step_norms(params, 0), *self.inner_path(params, support, labels, steps)]
        return path[-1]

    # ---- the multi-step loss ----------------------------------------------------------
    def step_loss_weights(self) -> list[float] | None:
        """MSL's weights of the query losses after inner steps 1..N, or None (the last step only):
        uniform at first; the earlier steps' fall linearly to 0.03/N over the annealing, the last's
        rises to take the rest (Antoniou et al.'s schedule, per meta-step instead of per epoch)."""
        n = self.inner_steps
        if not self.multi_step_loss or n < 2 or int(self.meta_steps_taken) >= self.multi_step_loss:
            return None
        t = int(self.meta_steps_taken)
        decay, floor = 1 / n / self.multi_step_loss, 0.03 / n
        earlier = max(1 / n - t * decay, floor)
        return [earlier] * (n - 1) + [min(1 / n + t * (n - 1) * decay, 1 - (n - 1) * floor)]

    def task_loss(self, params: Params, support: Tensor, s_labels: Tensor, query: Tensor, q_labels: Tensor):
        weights = self.step_loss_weights() if self.training else None
        if weights is None:
            return super().task_loss(params, support, s_labels, query, q_labels)
        total = 0.0
        for weight, adapted in zip(weights, self.inner_path(params, support, s_labels, len(weights))):
            logits = self.predict(adapted, support, query)
            total = total + weight * self.inner_loss(logits, q_labels)
        return total, logits

    def meta_step(self, tasks):
        result = super().meta_step(tasks)
        if self.multi_step_loss:
            self.meta_steps_taken += 1
        return result
