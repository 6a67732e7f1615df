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
from .maml_options import PerStepOptions
from .registry import METHODS


@METHODS.register("maml")
class MAML(PerStepOptions):
    """Finn et al. 2017: second order, one inner step of 0.4 (3 at test) on Omniglot 5-way; with
    Antoniou et al.'s per-step options (maml_options.py) as method arguments."""

    paper_preset = "paper-maml"


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
