"""Prototypes from text (Snell et al. 2017, section 2.7), over the frozen features of a trained
kshot model.

    f(x) = A phi(x)                  phi: the image model's features, frozen; A learned
    g(v) = B v / |B v|               v: the class text's vector; unit-length prototypes, as Snell et al.
    zero-shot prototype  p_c = g(v_c)
    text-prior prototype p_c = (lambda g(v_c) + sum_k f(x_ck)) / (lambda + K)   (the hybrid)
    logits = -|f(x) - p_c|^2

`RidgeBaseline` is the fixed alternative: a ridge regression from text vectors to the class
means of phi, fitted in closed form on the training classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..learners.base import class_means
from ..learners.protonet import squared_euclidean


class TextPrototypes(nn.Module):
    def __init__(self, feature_dim: int, text_dim: int, dim: int = 512):
        super().__init__()
        self.image = nn.Linear(feature_dim, dim)
        self.text = nn.Linear(text_dim, dim)
        self.log_prior = nn.Parameter(torch.zeros(()))  # log lambda, the text prototype's weight in shots

    def embed(self, features: Tensor) -> Tensor:
        return self.image(features)

    def text_prototypes(self, text_vectors: Tensor) -> Tensor:
        return F.normalize(self.text(text_vectors), dim=1)

    def prototypes(self, text_vectors: Tensor, support: Tensor | None = None, labels: Tensor | None = None) -> Tensor:
        """[way, dim]: from text alone, or with support image features [n, feature_dim] (labels [n])
        averaged in, the text counting as `lambda` extra shots."""
        p = self.text_prototypes(text_vectors)
        if support is None or support.shape[0] == 0:
            return p
        way, prior = p.shape[0], self.log_prior.exp()
        counts = F.one_hot(labels, way).sum(0).to(p.dtype)
        image_sum = class_means(self.embed(support), labels, way) * counts.unsqueeze(1)
        return (prior * p + image_sum) / (prior + counts).unsqueeze(1)

    def image_prototypes(self, support: Tensor, labels: Tensor, way: int) -> Tensor:
        """The plain few-shot prototypes in the same space (no text), for comparison."""
        return class_means(self.embed(support), labels, way)

    def logits(self, query: Tensor, prototypes: Tensor) -> Tensor:
        return -squared_euclidean(self.embed(query), prototypes)


class RidgeBaseline:
    """Text vectors -> class means of the image features by ridge regression (closed form)."""

    def __init__(self, weight: Tensor, alpha: float):
        self.weight, self.alpha = weight, alpha

    @classmethod
    def fit(cls, text_vectors: Tensor, class_features: Tensor, alpha: float) -> RidgeBaseline:
        v, m = text_vectors.double(), class_features.double()
        weight = torch.linalg.solve(v.T @ v + alpha * torch.eye(v.shape[1], dtype=v.dtype), v.T @ m)
        return cls(weight.float(), alpha)

    def prototypes(self, text_vectors: Tensor) -> Tensor:
        return text_vectors @ self.weight

    def logits(self, query: Tensor, prototypes: Tensor) -> Tensor:
        return -squared_euclidean(query, prototypes)
