"""The fine-tuning baselines: a network pretrained as one classifier of all the training classes,
with ordinary mini-batches (`trains_on = "batches"`); at test time its features are frozen and a
new last layer is fitted on the support set.

    --method baseline --method-arg head=linear   Chen et al. 2019, "Baseline": a new linear layer
    --method baseline --method-arg head=cosine   "Baseline++": cosine similarity to class weights
    --method baseline --method-arg head=logreg   Tian et al. 2020: logistic regression on
                                                 L2-normalised features
    --method finetune                            the whole network fine-tuned on the support too

Departures, and why: the new layer is trained on the whole support set at each step (Chen et al.
take mini-batches of 4 from it; a 5-way support set has 5 to 25 images); it starts at zero (linear,
logreg) or at the support's normalised class means (cosine), so its prediction does not depend on
a random draw and permuting the support's labels permutes its output exactly; logistic regression
is fitted with L-BFGS in torch rather than scikit-learn's solver, with the same L2 penalty (C = 1).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets import output_features
from .base import Classifier, Learner, MetricLearner
from .registry import METHODS

HEADS = ("linear", "cosine", "logreg")
COSINE_SCALE = 10.0  # logits = scale * cosine (a softmax over raw cosines in [-1, 1] is nearly flat)


class CosineClassifier(nn.Module):
    def __init__(self, weight: Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, features: Tensor) -> Tensor:
        return COSINE_SCALE * F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).T


def fit_head(kind: str, features: Tensor, labels: Tensor, way: int, steps: int, lr: float) -> nn.Module:
    """A new last layer for `way` classes fitted on frozen support features [n, dim]."""
    features, dim = features.detach(), features.shape[1]
    with torch.enable_grad():
        if kind == "logreg":
            head = nn.Linear(dim, way, device=features.device)
            nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
            x = F.normalize(features, dim=1)
            solver = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

            def objective():
                solver.zero_grad()
                # scikit-learn's C = 1: sum of losses + half the squared weights
                loss = F.cross_entropy(head(x), labels, reduction="sum") + 0.5 * head.weight.pow(2).sum()
                loss.backward()
                return loss

            solver.step(objective)
            return nn.Sequential(Normalize(), head)
        if kind == "cosine":
            means = features.new_zeros(way, dim).index_add_(0, labels, F.normalize(features, dim=1))
            head = CosineClassifier(means)
        else:
            head = nn.Linear(dim, way, device=features.device)
            nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
        # Chen et al.: SGD, lr 0.01, momentum 0.9, dampening 0.9, weight decay 0.001, 100 steps.
        opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, dampening=0.9, weight_decay=1e-3)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(head(features), labels).backward()
            opt.step()
    return head


class Normalize(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1)


class Pretrained:
    """What both baselines share: a backbone and a classifier of the `base_classes` training classes,
    pretrained on mini-batches."""

    trains_on = "batches"
    needs_input_shape = True
    needs_base_classes = True
    paper_preset = "paper-baseline"

    def init_classifier(self, input_shape: Sequence[int], base_classes: int, head: str, steps: int, lr: float) -> None:
        """The pretraining classifier; `steps` and `lr` fit the new last layer at test time."""
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, not {head!r}")
        width = output_features(self.encoder, input_shape)
        self.head_kind, self.base_classes, self.steps, self.lr = head, base_classes, steps, lr
        # Baseline++ pretrains with a cosine classifier too; the others with a linear one.
        self.classifier = (
            CosineClassifier(torch.randn(base_classes, width) * 0.01)
            if head == "cosine"
            else nn.Linear(width, base_classes)
        )

    def batch_logits(self, inputs: Tensor) -> Tensor:
        return self.classifier(self.encoder(inputs).flatten(1))


@METHODS.register("baseline")
class Baseline(Pretrained, MetricLearner):
    def __init__(
        self,
        encoder: nn.Module,
        input_shape: Sequence[int],
        base_classes: int,
        head: str = "linear",
        steps: int = 100,
        lr: float = 0.01,
    ):
        MetricLearner.__init__(self, encoder)
        self.init_classifier(input_shape, base_classes, head, steps, lr)

    def embed(self, x: Tensor) -> Tensor:
        return self.encoder(x).flatten(1)

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        return fit_head(self.head_kind, support_features, support_labels, way, self.steps, self.lr)


@METHODS.register("finetune")
class FineTune(Pretrained, Learner):
    """The pretrained network with a new last layer, then all of it fine-tuned on the support set
    (SGD, `steps` steps), BatchNorm keeping its pretrained statistics (5 to 25 images are too few)."""

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: Sequence[int],
        base_classes: int,
        head: str = "linear",
        steps: int = 100,
        lr: float = 0.01,
        network_lr: float = 0.001,
        network_steps: int = 20,
    ):
        Learner.__init__(self)
        self.encoder = encoder
        self.init_classifier(input_shape, base_classes, head, steps, lr)
        self.network_lr, self.network_steps = network_lr, network_steps

    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
        encoder = copy.deepcopy(self.encoder).eval()
        head = fit_head(self.head_kind, encoder(support).flatten(1), support_labels, way, self.steps, self.lr)
        with torch.enable_grad():
            opt = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=self.network_lr, momentum=0.9)
            for _ in range(self.network_steps):
                opt.zero_grad()
                F.cross_entropy(head(encoder(support).flatten(1)), support_labels).backward()
                opt.step()
        return lambda query: head(encoder(query).flatten(1))
