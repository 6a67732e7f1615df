"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017) and the siblings that change
one piece of it: first-order MAML, Meta-SGD and ANIL. The shared machinery is in gradient.py.

adapt: a few gradient steps from the learned initialisation on the support loss; the
classifier is the network with the adapted weights. Meta-training back-propagates the query
loss through those steps (second order unless `first_order`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import LearningRate, Params, gradient_steps
from .gradient import GradientLearner
from .registry import METHODS


@METHODS.register("maml")
class MAML(GradientLearner):
    """Finn et al. 2017: second order, one inner step of 0.4 (3 at test) on Omniglot 5-way.

    Two of Antoniou et al.'s (ICLR 2019) improvements, each an option, off by default:
    `step_lrs=True` learns an inner learning rate per parameter tensor (layer) and inner step,
    starting at `inner_lr` (LSLR; test steps beyond the trained ones reuse the last step's rates);
    `multi_step_loss=E` meta-trains on the query loss after every inner step, weighted, the weight
    moving to the last step over the first E meta-steps, after which the last step's loss alone
    counts (MSL). The outer cosine annealing is `kshot train --lr-schedule cosine`."""

    paper_preset = "paper-maml"

    def __init__(self, encoder: nn.Module, step_lrs: bool = False, multi_step_loss: int = 0, **options):
        super().__init__(encoder, **options)
        if multi_step_loss < 0:
            raise ValueError(f"multi_step_loss (meta-steps of annealing) must be >= 0, not {multi_step_loss}")
        self.multi_step_loss = multi_step_loss
        self.step_lr_list = None
        if step_lrs:  # a ParameterList in net's parameter order, as Meta-SGD's (dotted names cannot key a dict)
            steps = max(self.inner_steps, 1)
            self.step_lr_list = nn.ParameterList(
                [nn.Parameter(torch.full((steps,), float(self.inner_lr))) for _ in self.net.parameters()]
            )
        if multi_step_loss:
            self.register_buffer("meta_steps_taken", torch.zeros((), dtype=torch.long))

    def step_sizes(self, step: int = 0) -> LearningRate:
        if self.step_lr_list is None:
            return self.inner_lr
        step = min(step, len(self.step_lr_list[0]) - 1)
        return {name: rates[step] for name, rates in zip(self.f.params(), self.step_lr_list)}

    def step_loss_weights(self) -> list[float] | None:
        """MSL's weights of the query losses after inner steps 1..N, or None (the last step only):
        uniform at first; the earlier steps' fall linearly to 0.03/N over the annealing, the last's
        rises to take the rest (Antoniou et al.'s schedule, per meta-step instead of per epoch)."""
        n, t = self.inner_steps, int(self.meta_steps_taken) if self.multi_step_loss else 0
        if not self.multi_step_loss or n < 2 or t >= self.multi_step_loss:
            return None
        decay, floor = 1 / n / self.multi_step_loss, 0.03 / n
        earlier = max(1 / n - t * decay, floor)
        return [earlier] * (n - 1) + [min(1 / n + t * (n - 1) * decay, 1 - (n - 1) * floor)]

    def task_loss(self, params: Params, support: Tensor, s_labels: Tensor, query: Tensor, q_labels: Tensor):
        weights = self.step_loss_weights() if self.training else None
        if weights is None:
            return super().task_loss(params, support, s_labels, query, q_labels)
        loss_of = lambda p: self.inner_loss(self.f(p, support), s_labels)
        total = 0.0
        for step, weight in enumerate(weights):
            params = gradient_steps(loss_of, params, 1, self.step_sizes(step), self.first_order, self.adapted_names())
            logits = self.predict(params, support, query)
            total = total + weight * self.inner_loss(logits, q_labels)
        return total, logits

    def meta_step(self, tasks):
        result = super().meta_step(tasks)
        if self.multi_step_loss:
            self.meta_steps_taken += 1
        return result


@METHODS.register("fomaml")
class FirstOrderMAML(MAML):
    """MAML without the second-order term (Finn et al. 2017, section 5.2)."""

    paper_preset = "paper-maml"

    def __init__(self, encoder: nn.Module, first_order: bool = True, **options):
        super().__init__(encoder, first_order=first_order, **options)


@METHODS.register("metasgd")
class MetaSGD(GradientLearner):
    """Meta-SGD (Li et al. 2017): one learned step size per parameter, meta-trained with the
    initialisation. The inner update is theta - alpha * grad, alpha elementwise."""

    paper_preset = "paper-maml"

    def __init__(self, encoder: nn.Module, inner_lr: float = 0.1, test_steps: int = 1, **options):
        super().__init__(encoder, inner_lr=inner_lr, test_steps=test_steps, **options)
        # A ParameterList in the order of net's parameters (names with dots cannot key a ParameterDict).
        self.step_size_list = nn.ParameterList(
            [nn.Parameter(torch.full_like(p, inner_lr)) for p in self.net.parameters()]
        )

    def step_sizes(self, step: int = 0) -> LearningRate:
        return dict(zip(self.f.params(), self.step_size_list))


@METHODS.register("anil")
class ANIL(GradientLearner):
    """Almost No Inner Loop (Raghu et al. 2020): the inner loop adapts the `head` only; the
    `body` is meta-learned by the outer loop alone, and runs once per task."""

    paper_preset = "paper-maml"

    def adapted_names(self) -> list[str] | None:
        return [f"head.{name}" for name, _ in self.net.head.named_parameters()]

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        body = {name[len("body.") :]: v for name, v in params.items() if name.startswith("body.")}
        features = torch.func.functional_call(self.f.module.body, body, (support,)).flatten(1)
        loss_of = lambda p: self.inner_loss(F.linear(features, p["head.weight"], p["head.bias"]), labels)
        return gradient_steps(loss_of, params, steps, self.step_sizes, self.first_order, self.adapted_names())
