"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

adapt: embed the support, average each class into a prototype.
classify: logits are minus the squared Euclidean distance to each prototype
(or a scaled cosine similarity, as an option).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Classifier, PrototypeLearner
from .registry import METHODS


def squared_euclidean(a: Tensor, b: Tensor, b_norms: Tensor | None = None) -> Tensor:
    """[n, m] squared distances, via the expansion |a|^2 - 2ab + |b|^2 (one matmul);
    `b_norms` ([1, m], |b|^2) may be passed in when b is scored against many times. Always in
    float32: in bfloat16 (mixed-precision training) the expansion's cancellation loses the distances."""
    if torch.amp.is_autocast_available(a.device.type) and torch.is_autocast_enabled(a.device.type):
        with torch.autocast(a.device.type, enabled=False):
            return squared_euclidean(a.float(), b.float(), None if b_norms is None else b_norms.float())
    if b_norms is None:
        b_norms = b.pow(2).sum(1).unsqueeze(0)
    return (a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b_norms).clamp_min(0)


def nearest_prototype_scores(prototypes: Tensor) -> Classifier:
    """Minus squared distances to the prototypes. |p|^2 is computed once per classifier, not
    per query batch: with 100k enrolled classes that read of every prototype is half the cost
    of a request."""
    norms = prototypes.pow(2).sum(1).unsqueeze(0)
    return lambda q: -squared_euclidean(q, prototypes, norms)


@METHODS.register("protonet")
class ProtoNet(PrototypeLearner):
    paper_preset = "paper-protonet"

    def __init__(self, encoder: nn.Module, distance: str = "euclidean", cosine_scale: float = 10.0):
        super().__init__(encoder)
        if distance not in ("euclidean", "cosine"):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', not {distance!r}")
        self.distance = distance
        # Cosine similarities lie in [-1, 1]; a learned scale lets the softmax become sharp.
        self.log_scale = nn.Parameter(torch.tensor(float(cosine_scale)).log()) if distance == "cosine" else None

    @property
    def prototype_metric(self) -> str:
        return "squared_euclidean" if self.distance == "euclidean" else "cosine"

    def prototype_classifier(self, prototypes: Tensor) -> Classifier:
        if self.distance == "euclidean":
            return nearest_prototype_scores(prototypes)
        protos = F.normalize(prototypes, dim=1)
        return lambda q: self.log_scale.exp() * F.normalize(q, dim=1) @ protos.T
