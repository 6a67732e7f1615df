"""Reptile (Nichol, Achiam & Schulman 2018).

Each task's weights are trained from the initialisation theta by plain SGD on its support
set (phi = theta after `inner_steps` steps, first order by construction); the
initialisation then moves toward their mean: theta <- theta + eps * (mean(phi) - theta).

To use the trainer's optimizer unchanged, `meta_loss` returns a surrogate whose gradient
with respect to theta is exactly (theta - mean(phi)): with SGD of learning rate eps that is
the paper's update (the paper anneals eps linearly to 0: `--lr-schedule linear`).
Its value is the query loss after adaptation, for the log.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.sampler import Task
from ..nets.norm import vmap_safe
from .base import Learner
from .functional import map_tasks
from .maml import MAML, stack_tasks
from .registry import METHODS


@METHODS.register("reptile")
class Reptile(MAML):
    method = "reptile"
    # Nichol et al., Omniglot: 5 inner steps in training, 50 at test, meta-batch 5, meta step 1 -> 0.
    # (Their inner optimizer is Adam; here it is SGD, the algorithm as the paper states it.)
    train_defaults = {"way": 5, "shot": 5, "query": 5, "meta_batch": 5, "episodes": 100000, "optimizer": "sgd",
                      "lr": 1.0, "lr_schedule": "linear", "val_every": 1000, "val_episodes": 200}

    def __init__(self, encoder, inner_steps: int = 5, inner_lr: float = 0.1, test_steps: int = 50, **kw):
        super().__init__(encoder, inner_steps=inner_steps, inner_lr=inner_lr, test_steps=test_steps,
                         first_order=True, **kw)

    def meta_loss(self, tasks: list[Task]) -> tuple[Tensor, Tensor]:
        self.check_way(tasks[0].way)
        theta = self.f.params()
        start = {k: v.detach() for k, v in theta.items()}

        def adapt_and_score(support, s_labels, query, q_labels):
            phi = self.inner_loop(start, support, s_labels, self.inner_steps)
            logits = self.predict(phi, support, query)
            return phi, F.cross_entropy(logits, q_labels), logits

        args = stack_tasks(tasks)
        if self.vectorizable() and len(tasks) > 1:
            with vmap_safe():
                phis, losses, logits = torch.func.vmap(adapt_and_score)(*args)
        else:
            outs = list(map_tasks(lambda i: adapt_and_score(*(a[i] for a in args)), range(len(tasks)),
                                  self.task_workers(), self.f))
            phis = {k: torch.stack([o[0][k] for o in outs]) for k in theta}
            losses, logits = torch.stack([o[1] for o in outs]), torch.stack([o[2] for o in outs])
        direction = {k: (theta[k].detach() - phis[k].mean(0)).detach() for k in theta}
        surrogate = sum((theta[k] * direction[k]).sum() for k in theta)
        query_loss = losses.mean().detach()
        return surrogate - surrogate.detach() + query_loss, logits.detach()

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        # The surrogate needs the mean over all tasks; Reptile keeps no graph, so memory is small anyway.
        return Learner.meta_step(self, tasks)
