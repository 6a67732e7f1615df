"""Reptile (Nichol, Achiam & Schulman 2018).

Each task's weights are trained from the initialisation theta by plain SGD on its support
set (phi = theta after `inner_steps` steps, first order by construction); the
initialisation then moves toward their mean: theta <- theta + eps * (mean(phi) - theta).

To use the trainer's optimizer unchanged, `meta_loss` returns a surrogate whose gradient
with respect to theta is exactly (theta - mean(phi)): with SGD of learning rate eps that is
the paper's update (the paper anneals eps linearly to 0: `--lr-schedule linear`).
Its value is the query loss after adaptation, for the log.

`inner_batch` / `test_batch` > 0 make each step use a mini-batch of that many support
examples, as the paper's experiments do (e.g. Omniglot 5-shot: batches of 6 at test): the
support set is visited in shuffled passes, each example once per pass. The order is seeded by
the support images, so an episode always gets the same order (reproducible evaluation,
resumable training). 0 (the default) uses the whole support set in every step.

`inner_optimizer="adam"` trains each task with Adam instead, as the paper's code does: no
momentum (beta1 = 0) and second moments that carry over from task to task through meta-
training (they are saved with the weights, and test-time adaptation starts from them). So
that a meta-batch's result does not depend on the order its tasks run in, every task of a
meta-batch starts from the same moments, and the next meta-batch from their mean.
"""
from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets.norm import vmap_safe
from .base import Learner
from .functional import Params, gradient_and_value, map_tasks
from .maml import MAML, stack_tasks
from .registry import METHODS


@METHODS.register("reptile")
class Reptile(MAML):
    method = "reptile"
    # Nichol et al., Omniglot: 5 inner steps in training, 50 at test, meta-batch 5, meta step 1 -> 0.
    # (Their code's inner optimizer is Adam: `inner_optimizer="adam"`; SGD, the algorithm as the paper
    # states it, is the default.)
    train_defaults = {"way": 5, "shot": 5, "query": 5, "meta_batch": 5, "episodes": 100000, "optimizer": "sgd",
                      "lr": 1.0, "lr_schedule": "linear", "val_every": 1000, "val_episodes": 200}

    def __init__(self, encoder, inner_steps: int = 5, inner_lr: float = 0.1, test_steps: int = 50,
                 inner_batch: int = 0, test_batch: int = 0, inner_optimizer: str = "sgd",
                 adam_beta2: float = 0.999, adam_eps: float = 1e-8, **kw):
        if inner_batch < 0 or test_batch < 0:
            raise ValueError("inner_batch and test_batch must be >= 0 (0: the whole support set)")
        if inner_optimizer not in ("sgd", "adam"):
            raise ValueError(f"inner_optimizer must be 'sgd' or 'adam', not {inner_optimizer!r}")
        super().__init__(encoder, inner_steps=inner_steps, inner_lr=inner_lr, test_steps=test_steps,
                         first_order=True, **kw)
        self.inner_batch, self.test_batch = inner_batch, test_batch
        self.inner_optimizer, self.adam_beta2, self.adam_eps = inner_optimizer, adam_beta2, adam_eps
        if inner_optimizer == "adam":
            self.adam_state = AdamMoments(self.f.params())

    def train_task(self, params: Params, support: Tensor, labels: Tensor, steps: int,
                   batches: list[Tensor] | None) -> tuple[Params, Params]:
        """phi after `steps` steps on the support set (one per index batch of `batches` when
        given), and with Adam the second moments it ended with (none with SGD: {}, which vmap accepts)."""
        batch_of = (lambda i: (support, labels)) if batches is None else (lambda i: (support[batches[i]], labels[batches[i]]))
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
            grads, _ = gradient_and_value(lambda p: F.cross_entropy(self.f(p, x), y), params, create_graph=False)
            t += 1
            moments = {k: b2 * moments[k] + (1 - b2) * g * g for k, g in grads.items()}
            correction = math.sqrt(1 - b2 ** t)
            params = {k: params[k] - self.inner_lr * grads[k] / (moments[k].sqrt() / correction + self.adam_eps)
                      for k in params}
        return params, moments

    def adapt_weights(self, params: Params, support: Tensor, labels: Tensor) -> Params:
        steps, batch = (self.inner_steps, self.inner_batch) if self.training else (self.test_steps, self.test_batch)
        return self.train_task(params, support, labels, steps, batch_order(support, steps, batch))[0]

    def meta_loss(self, tasks: list[Task]) -> tuple[Tensor, Tensor]:
        self.check_way(tasks[0].way)
        theta = self.f.params()
        start = {k: v.detach() for k, v in theta.items()}

        def adapt_and_score(batches, support, s_labels, query, q_labels):
            phi, moments = self.train_task(start, support, s_labels, self.inner_steps, batches)
            logits = self.predict(phi, support, query)
            return phi, moments, F.cross_entropy(logits, q_labels), logits

        args = stack_tasks(tasks)
        if self.vectorizable() and len(tasks) > 1:  # one batch order for all tasks, from the first's images
            batches = batch_order(args[0][0], self.inner_steps, self.inner_batch)
            with vmap_safe():
                phis, moments, losses, logits = torch.func.vmap(lambda *a: adapt_and_score(batches, *a))(*args)
        else:
            one = lambda i: adapt_and_score(batch_order(args[0][i], self.inner_steps, self.inner_batch),
                                            *(a[i] for a in args))
            outs = list(map_tasks(one, range(len(tasks)), self.task_workers(), self.f))
            phis = {k: torch.stack([o[0][k] for o in outs]) for k in theta}
            moments = {k: torch.stack([o[1][k] for o in outs]) for k in outs[0][1]}
            losses, logits = torch.stack([o[2] for o in outs]), torch.stack([o[3] for o in outs])
        if moments and self.training:  # only meta-training moves the carried moments
            self.adam_state.advance({k: v.mean(0) for k, v in moments.items()}, self.inner_steps)
        direction = {k: (theta[k].detach() - phis[k].mean(0)).detach() for k in theta}
        surrogate = sum((theta[k] * direction[k]).sum() for k in theta)
        query_loss = losses.mean().detach()
        return surrogate - surrogate.detach() + query_loss, logits.detach()

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        # The surrogate needs the mean over all tasks; Reptile keeps no graph, so memory is small anyway.
        return Learner.meta_step(self, tasks)


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


def batch_order(support: Tensor, steps: int, batch: int) -> list[Tensor] | None:
    """Index batches for `steps` mini-batch steps over the rows of `support`, in shuffled passes
    (each row once per pass), seeded by the rows' bytes; None when a batch would be all rows."""
    n = support.shape[0]
    if batch == 0 or batch >= n:
        return None
    raw = support.detach().cpu().contiguous().flatten().view(torch.uint8)  # any dtype, bfloat16 included
    g = torch.Generator().manual_seed(zlib.crc32(raw.numpy().tobytes()))
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-steps * batch // n))])
    return [order[i * batch:(i + 1) * batch] for i in range(steps)]
