"""Semi-supervised Prototypical Networks (Ren et al., ICLR 2018, "Meta-learning for
semi-supervised few-shot classification").

The support's class means are refined with the episode's unlabelled items, then queries are
scored against the refined prototypes as in ProtoNet. `refine` picks the paper's variant:

- "none": the supervised ProtoNet (unlabelled items ignored), the paper's baseline;
- "soft-kmeans": each unlabelled item joins every class with its softmax(-distance) weight,
  and each prototype becomes the weighted mean of its support and its share of the unlabelled;
- "cluster": soft k-means with one more cluster for distractors, fixed at the origin with a
  learned radius (class clusters have radius 1); the distractor cluster's share is discarded;
- "masked": soft k-means whose weights are also multiplied by a soft mask per class,
  sigmoid(-gamma_c (d_jc / mean_j d_jc - beta_c)), where a small network reads statistics of
  the class's normalised distances (min, max, variance, skewness, kurtosis) and outputs
  beta_c and gamma_c, so items far from every class are masked out.

`steps` refinement steps (the paper uses one). A model trained with "none" can be evaluated
with `--method-arg refine=soft-kmeans` (the paper's "semi-supervised inference").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Classifier, SemiSupervisedLearner, class_means
from .protonet import nearest_prototype_scores, squared_euclidean
from .registry import METHODS

REFINEMENTS = ("none", "soft-kmeans", "cluster", "masked")


def distance_statistics(distances: Tensor) -> Tensor:
    """distances [m, way] (unlabelled to prototype) -> [way, 5]: min, max, variance, skewness and
    kurtosis of each class's distances, normalised by their mean (the masked variant's input)."""
    d = distances / distances.mean(0, keepdim=True).clamp_min(1e-8)
    mean, var = d.mean(0), d.var(0, unbiased=False)
    var = torch.where(var == 0, torch.ones_like(var), var)
    centred = d - mean
    skew = (centred**3).mean(0) / var**1.5
    kurt = (centred**4).mean(0) / var**2 - 3
    return torch.stack([d.min(0).values, d.max(0).values, var, skew, kurt], 1)


@METHODS.register("semi-protonet")
class SemiProtoNet(SemiSupervisedLearner):
    paper_preset = "paper-semi-protonet"

    def __init__(
        self, encoder: nn.Module, refine: str = "soft-kmeans", steps: int = 1, distractor_radius: float = 100.0
    ):
        super().__init__(encoder)
        if refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {', '.join(REFINEMENTS)}, not {refine!r}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.refine, self.steps = refine, steps
        # Weights exist only for the variant that uses them, so a checkpoint says which it was.
        if refine == "cluster":
            self.log_distractor_radius = nn.Parameter(torch.tensor(math.log(distractor_radius)))
        if refine == "masked":
            # Ren et al.: 5 statistics -> 20 tanh units -> (log beta, log gamma), small initial weights.
            self.mask_net = nn.Sequential(nn.Linear(5, 20), nn.Tanh(), nn.Linear(20, 2))
            for layer in self.mask_net[::2]:
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.zeros_(layer.bias)

    def prototype_classifier(self, prototypes: Tensor) -> Classifier:
        return nearest_prototype_scores(prototypes)

    def assignments(self, prototypes: Tensor, unlabelled: Tensor) -> Tensor:
        """unlabelled [m, dim] -> weights [m, way] of each item in each class's prototype; with
        "cluster" a row may sum to less than 1 (the rest went to the distractor cluster)."""
        d = squared_euclidean(unlabelled, prototypes)  # [m, way]
        if self.refine == "cluster":
            # Gaussian log-likelihoods with radius 1 per class and a learned one at the origin.
            r = self.log_distractor_radius.exp()
            to_origin = unlabelled.pow(2).sum(1, keepdim=True)
            logits = torch.cat([-d / 2, -to_origin / (2 * r**2) - self.log_distractor_radius], 1)
            return logits.softmax(1)[:, :-1]
        weights = (-d).softmax(1)
        if self.refine == "masked":
            beta_gamma = self.mask_net(distance_statistics(d).detach())  # [way, 2]
            beta, gamma = beta_gamma.exp().unbind(1)
            normalised = d / d.mean(0, keepdim=True).clamp_min(1e-8)
            weights = weights * torch.sigmoid(-gamma * (normalised - beta))
        return weights

    def refined_prototypes(self, support: Tensor, labels: Tensor, way: int, unlabelled: Tensor) -> Tensor:
        onehot = F.one_hot(labels, way).to(support.dtype)  # [n, way]
        prototypes = class_means(support, labels, way)
        if self.refine == "none" or unlabelled.shape[0] == 0:
            return prototypes
        for _ in range(self.steps):
            w = self.assignments(prototypes, unlabelled)  # [m, way]
            total = onehot.sum(0) + w.sum(0)
            prototypes = (onehot.T @ support + w.T @ unlabelled) / total.clamp_min(1e-8).unsqueeze(1)
        return prototypes

    def head_with_unlabelled(
        self, support_features: Tensor, support_labels: Tensor, way: int, unlabelled_features: Tensor
    ) -> Classifier:
        return self.prototype_classifier(
            self.refined_prototypes(support_features, support_labels, way, unlabelled_features)
        )
