"""Triplet-loss embedding (as in FaceNet, Schroff et al. 2015), classified by nearest prototype.

Within an episode every query is an anchor; positives are the support items of
its class, negatives those of the other classes. The loss averages
max(0, d(a, p) - d(a, n) + margin) over all such triplets, with squared
Euclidean distances between L2-normalised embeddings.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from .base import Classifier, PrototypeLearner
from .protonet import nearest_prototype_scores, squared_euclidean
from .registry import METHODS


def triplet_loss(anchors: Tensor, anchor_labels: Tensor, others: Tensor, other_labels: Tensor, margin: float) -> Tensor:
    d = squared_euclidean(anchors, others)  # [a, o]
    same = anchor_labels.unsqueeze(1) == other_labels.unsqueeze(0)
    # [a, p, n] hinge for every (positive, negative) combination; invalid ones masked out
    hinge = (d.unsqueeze(2) - d.unsqueeze(1) + margin).clamp_min(0)
    valid = same.unsqueeze(2) & ~same.unsqueeze(1)
    return (hinge * valid).sum() / valid.sum().clamp_min(1)


@METHODS.register("triplet")
class TripletNet(PrototypeLearner):
    def __init__(self, encoder: nn.Module, margin: float = 0.2):
        super().__init__(encoder)
        self.margin = margin

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(self.encoder(x), dim=1)

    def prototype_classifier(self, prototypes: Tensor) -> Classifier:
        return nearest_prototype_scores(prototypes)

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        s, q = self.episode_features(task)
        loss = triplet_loss(q, task.query_labels, s, task.support_labels, self.margin)
        return loss, self.head(s, task.support_labels, task.way)(q)
