"""Reptile (Nichol, Achiam & Schulman 2018).

Each task's weights are trained from the initialisation theta by plain SGD on its support
set (phi = theta after `inner_steps` steps, first order by construction); the
initialisation then moves toward their mean: theta <- theta + eps * (mean(phi) - theta).

To use the trainer's optimizer unchanged, `meta_step` sets the gradient of theta to
(theta - mean(phi)): with SGD of learning rate eps that is the paper's update (the paper anneals
eps linearly to 0: `--lr-schedule linear`). The loss it reports is the query loss after
adaptation, for the log.

`inner_batch` / `test_batch` > 0 make each step use a mini-batch of that many support
examples, as the paper's experiments do (e.g. Omniglot 5-shot: batches of 6 at test): the
support set is visited in shuffled passes, each example once per pass. The order comes from
the episode's own generator (`Task.generator()`), so an episode always gets the same order
(reproducible evaluation, resumable training). 0 (the default) uses the whole support set.

`inner_optimizer="adam"` trains each task with Adam instead, as the paper's code does: no
momentum (beta1 = 0) and second moments that carry over from task to task through meta-
training (they are saved with the weights, and test-time adaptation starts from them). So
that a meta-batch's result does not depend on the order its tasks run in, every task of a
meta-batch starts from the same moments, and the next meta-batch from their mean.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..data.sampler import Task
from .functional import Params, gradient_and_value
from .gradient import GradientLearner, accumulate_grads
from .registry import METHODS


@METHODS.register("reptile")
class Reptile(GradientLearner):
    # Nichol et al., Omniglot: 5 inner steps in training, 50 at test, meta-batch 5, meta step 1 -> 0.
    # (Their code's inner optimizer is Adam: `inner_optimizer="adam"`; SGD, the algorithm as the paper
    # states it, is the default.)
    paper_preset = "paper-reptile"

    def __init__(
        self,
        encoder: nn.Module,
        inner_steps: int = 5,
        inner_lr: float = 0.1,
        test_steps: int = 50,
        inner_batch: int = 0,
        test_batch: int = 0,
        inner_optimizer: str = "sgd",
        adam_beta2: float = 0.999,
        adam_eps: float = 1e-8,
        **options,
    ):
        if inner_batch < 0 or test_batch < 0:
            raise ValueError("inner_batch and test_batch must be >= 0 (0: the whole support set)")
        if inner_optimizer not in ("sgd", "adam"):
            raise ValueError(f"inner_optimizer must be 'sgd' or 'adam', not {inner_optimizer!r}")
        super().__init__(encoder, inner_steps=inner_steps, inner_lr=inner_lr, test_steps=test_steps, **options)
        self.inner_batch, self.test_batch = inner_batch, test_batch
        self.inner_optimizer, self.adam_beta2, self.adam_eps = inner_optimizer, adam_beta2, adam_eps
        if inner_optimizer == "adam":
            self.adam_state = AdamMoments(self.f.params())

    def train_task(
        self, params: Params, support: Tensor, labels: Tensor, steps: int, batches: list[Tensor] | None
    ) -> tuple[Params, Params]:
        """phi after `steps` steps on the support set (one per index batch of `batches` when
        given), and with Adam the second moments it ended with (none with SGD: {}, which vmap accepts)."""

        def batch_of(i: int) -> tuple[Tensor, Tensor]:
            return (support, labels) if batches is None else (support[batches[i]], labels[batches[i]])

        if self.inner_optimizer == "sgd":
            if batches is None:
                return self.inner_loop(params, support, labels, steps), {}
            for i in range(steps):
                params = self.inner_loop(params, *batch_of(i), 1)
            return params, {}
        # Adam with beta1 = 0 (torch.optim.Adam's formula): p -= lr * g / (sqrt(v / (1 - beta2^t)) + eps)
        moments, t, b2 = self.adam_state.moments(), self.adam_state.count(), self.adam_beta2
        for i in range(steps):
            x, y = batch_of(i)
            grads, _ = gradient_and_value(
                lambda p, x=x, y=y: self.inner_loss(self.f(p, x), y), params, create_graph=False
            )
            t += 1
            moments = {k: b2 * moments[k] + (1 - b2) * g * g for k, g in grads.items()}
            correction = math.sqrt(1 - b2**t)
            params = {
                k: params[k] - self.inner_lr * grads[k] / (moments[k].sqrt() / correction + self.adam_eps)
                for k in params
            }
        return params, moments

    def adapt_weights(
        self, params: Params, support: Tensor, labels: Tensor, generator: torch.Generator | None = None
    ) -> Params:
        steps, batch = (self.inner_steps, self.inner_batch) if self.training else (self.test_steps, self.test_batch)
        return self.train_task(params, support, labels, steps, batch_order(generator, support.shape[0], steps, batch))[
            0
        ]

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        """theta.grad += theta - mean(phi), phi each task's adapted weights (no graph is kept)."""
        self.check_way(tasks[0].way)
        theta = self.f.params()
        start = {k: v.detach() for k, v in theta.items()}
        order = lambda task: batch_order(task.generator(), task.support.shape[0], self.inner_steps, self.inner_batch)

        def adapt_and_score(batches, params, support, s_labels, query, q_labels):
            phi, moments = self.train_task(params, support, s_labels, self.inner_steps, batches)
            logits = self.predict(phi, support, query)
            return phi, moments, self.inner_loss(logits, q_labels).detach(), logits.detach()

        if self.batching.uses_vmap(self.net, len(tasks), self.vmappable):  # one batch order: the first task's
            batches = order(tasks[0])
            phis, moments, losses, logits = self.batching.vmapped(lambda *a: adapt_and_score(batches, *a), start, tasks)
        else:
            one = lambda t: adapt_and_score(order(t), start, t.support, t.support_labels, t.query, t.query_labels)
            outs = list(self.batching.each(one, tasks, self.net, self.f))
            phis = {k: torch.stack([o[0][k] for o in outs]) for k in theta}
            moments = {k: torch.stack([o[1][k] for o in outs]) for k in outs[0][1]}
            losses, logits = torch.stack([o[2] for o in outs]), torch.stack([o[3] for o in outs])
        if moments and self.training:  # only meta-training moves the carried moments
            self.adam_state.advance({k: v.mean(0) for k, v in moments.items()}, self.inner_steps)
        accumulate_grads(list(theta.values()), [(theta[k].detach() - phis[k].mean(0)).detach() for k in theta])
        return losses.mean().item(), logits


class AdamMoments(nn.Module):
    """Reptile's inner-Adam state carried across tasks: one second-moment tensor per network
    parameter (buffers, so they are saved in checkpoints) and the step count."""

    def __init__(self, params: Params):
        super().__init__()
        self.names = list(params)
        for i, p in enumerate(params.values()):
            self.register_buffer(f"moment_{i}", torch.zeros_like(p.detach()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def moments(self) -> Params:
        return {k: getattr(self, f"moment_{i}") for i, k in enumerate(self.names)}

    def count(self) -> int:
        return int(self.steps)

    @torch.no_grad()
    def advance(self, moments: Params, steps: int) -> None:
        for i, k in enumerate(self.names):
            getattr(self, f"moment_{i}").copy_(moments[k])
        self.steps += steps


def batch_order(generator: torch.Generator | None, n: int, steps: int, batch: int) -> list[Tensor] | None:
    """Index batches for `steps` mini-batch steps over `n` support rows, in shuffled passes (each
    row once per pass) drawn from the episode's `generator` (seed 0 without one); None when a
    batch would be all rows."""
    if batch == 0 or batch >= n:
        return None
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-steps * batch // n))])
    return [order[i * batch : (i + 1) * batch] for i in range(steps)]
