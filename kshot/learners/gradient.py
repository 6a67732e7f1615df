"""The base of the optimization-based family (MAML and its siblings).

It owns the network (a backbone `body` and a linear `head` of `way` outputs, sized from the
backbone's output), the inner loop (gradient steps on a pluggable loss: cross-entropy for
classification, MSE for regression), prediction, and the MAML outer objective (the query loss
back-propagated through the inner loop). Siblings override only what their paper changes:
first-order MAML drops the second-order term, Meta-SGD learns the step sizes, ANIL adapts the
head only, Reptile replaces the outer update, the LSTM meta-learner the inner update. How a
meta-batch's tasks are run (vmap, loop, threads) is `batching.TaskBatching`'s business.

BatchNorm: the backbone uses `norm="task"`, statistics of the current batch at training and at
test time as in MAML. `bn="support"` instead normalises the query with the support statistics,
so no query statistics leak into a prediction (the method is then not transductive).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from types import MappingProxyType
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets import output_features
from ..nets.norm import reference_rows
from .base import Classifier, Learner
from .batching import TaskBatching
from .functional import Functional, LearningRate, Params, gradient_steps

INNER_LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


class GradientLearner(Learner):
    backbone_needs = MappingProxyType({"norm": "task"})
    needs_input_shape = True
    fixed_way = True
    vmappable: ClassVar[bool] = True
    """Whether a task's computation may run under torch.func.vmap (the batching strategy asks)."""
    extra_outputs: ClassVar[int] = 0
    """Output units beyond the task's `way` (an N+1-th "fake" class adds one)."""

    def __init__(
        self,
        encoder: nn.Module,
        way: int,
        input_shape: Sequence[int],
        inner_steps: int = 1,
        inner_lr: float = 0.4,
        test_steps: int = 3,
        first_order: bool = False,
        bn: str = "transductive",
        loss: str = "cross_entropy",
        vectorize: str = "auto",
        workers: int = 0,
    ):
        super().__init__()
        if bn not in ("transductive", "support"):
            raise ValueError(f"bn must be 'transductive' or 'support', not {bn!r}")
        if inner_steps < 0 or test_steps < 0:
            raise ValueError("inner_steps and test_steps must be >= 0")
        if inner_lr <= 0:
            raise ValueError(f"inner_lr must be > 0, not {inner_lr}")
        if loss not in INNER_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(INNER_LOSSES)}, not {loss!r}")
        self.way, self.input_shape = way, list(input_shape)
        self.inner_steps, self.test_steps, self.inner_lr = inner_steps, test_steps, inner_lr
        self.first_order, self.bn, self.inner_loss = first_order, bn, INNER_LOSSES[loss]
        self.batching = TaskBatching(vectorize, workers)
        self.net = nn.Sequential(
            OrderedDict(
                body=encoder,
                flatten=nn.Flatten(),
                head=nn.Linear(output_features(encoder, input_shape), way + self.extra_outputs),
            )
        )
        self.f = Functional(self.net)

    @property
    def transductive(self) -> bool:
        return self.bn == "transductive"

    # ---- the pure functions vmap sees ---------------------------------------------
    def step_sizes(self, step: int = 0) -> LearningRate:
        """The inner learning rate(s) of inner step `step`."""
        return self.inner_lr

    def adapted_names(self) -> list[str] | None:
        return None  # all parameters

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        loss_of = lambda p: self.inner_loss(self.f(p, support), labels)
        return gradient_steps(loss_of, params, steps, self.step_sizes, self.first_order, self.adapted_names())

    def predict(self, params: Params, support: Tensor, query: Tensor) -> Tensor:
        if self.bn == "transductive":
            return self.f(params, query)
        n = support.shape[0]
        with reference_rows(n):
            return self.f(params, torch.cat([support, query]))[n:]

    def task_loss(self, params: Params, support: Tensor, s_labels: Tensor, query: Tensor, q_labels: Tensor):
        """(query loss after `inner_steps` steps on the support, query predictions)."""
        adapted = self.inner_loop(params, support, s_labels, self.inner_steps)
        logits = self.predict(adapted, support, query)
        return self.inner_loss(logits, q_labels), logits

    # ---- the learner interface ----------------------------------------------------
    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
        self.check_way(way)
        params = self.f.params()
        if not self.training:  # no outer step will follow: no graph through the initialisation
            params = {k: v.detach() for k, v in params.items()}
        adapted = self.adapt_weights(params, support, support_labels, generator)
        return lambda query: self.predict(adapted, support, query)

    def adapt_weights(
        self, params: Params, support: Tensor, labels: Tensor, generator: torch.Generator | None = None
    ) -> Params:
        """The inner loop `adapt` runs: `inner_steps` in training, `test_steps` at test."""
        return self.inner_loop(params, support, labels, self.inner_steps if self.training else self.test_steps)

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        return self.task_loss(self.f.params(), task.support, task.support_labels, task.query, task.query_labels)

    def meta_loss(self, tasks: list[Task]) -> tuple[Tensor, Tensor]:
        """(mean query loss over the tasks, stacked predictions): the MAML objective, differentiable."""
        self.check_way(tasks[0].way)
        params = self.f.params()
        if self.batching.uses_vmap(self.net, len(tasks), self.vmappable):
            losses, logits = self.batching.vmapped(self.task_loss, params, tasks)
            return losses.mean(), logits
        pairs = [self.task_loss(params, t.support, t.support_labels, t.query, t.query_labels) for t in tasks]
        return torch.stack([l for l, _ in pairs]).mean(), torch.stack([z for _, z in pairs])

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        """Without vmap, differentiate each task as soon as its loss exists, so only one task's
        second-order graph per worker is alive at a time (not the whole meta-batch's). The
        per-task gradients are summed in task order: the result does not depend on `workers`."""
        if self.batching.uses_vmap(self.net, len(tasks), self.vmappable):
            loss, logits = self.meta_loss(tasks)
            loss.backward()
            return loss.item(), logits.detach()
        self.check_way(tasks[0].way)
        params = [p for p in self.parameters() if p.requires_grad]

        def one_task(task: Task) -> tuple[float, Tensor, tuple[Tensor | None, ...]]:
            loss, logits = self.loss(task)
            grads = torch.autograd.grad(loss / len(tasks), params, allow_unused=True)
            return loss.item(), logits.detach(), grads

        total, logits = 0.0, []
        for loss, z, grads in self.batching.each(one_task, tasks, self.net, self.f):
            accumulate_grads(params, grads)  # at once: no meta-batch of gradients is held
            total += loss
            logits.append(z)
        return total / len(tasks), torch.stack(logits)


def accumulate_grads(params: Sequence[Tensor], grads: Sequence[Tensor | None]) -> None:
    """p.grad += g for each pair (None gradients skipped)."""
    for p, g in zip(params, grads):
        if g is not None:
            p.grad = g if p.grad is None else p.grad.add_(g)
