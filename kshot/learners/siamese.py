"""Siamese networks (Koch, Zemel & Salakhutdinov, ICML deep learning workshop 2015).

Twin encoders with shared weights; a pair is scored by a weighted L1 distance of
the two embeddings followed by a sigmoid ("same class?"). Trained with binary
cross-entropy on pairs from the episode: every (query, support) pair, with the
positive and the negative pairs weighted equally, which balances them as
sampling equal numbers would, without the sampling noise. For a few-shot task
each class scores as its best-matching support item.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets import output_features
from .base import Classifier, MetricLearner
from .registry import METHODS


@METHODS.register("siamese")
class SiameseNet(MetricLearner):
    needs_input_shape = True  # one weight per embedding coordinate in the L1 head

    def __init__(self, encoder: nn.Module, input_shape: list[int]):
        super().__init__(encoder)
        self.pair_head = nn.Linear(
            output_features(encoder, input_shape), 1
        )  # the weighted L1 distance; sigmoid gives P(same)

    def same_logits(self, a: Tensor, b: Tensor) -> Tensor:
        """Pre-sigmoid 'same class' score of embeddings a and b (broadcast against each other)."""
        return self.pair_head((a - b).abs()).squeeze(-1)

    def pair_logits(self, a: Tensor, b: Tensor) -> Tensor:
        """[len(a), len(b)] scores of every pair."""
        return self.same_logits(a.unsqueeze(1), b.unsqueeze(0))

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        def classify(query_features: Tensor) -> Tensor:
            scores = self.pair_logits(query_features, support_features)  # [q, n_support]
            per_class = torch.full((scores.shape[0], way), float("-inf"), dtype=scores.dtype, device=scores.device)
            return per_class.scatter_reduce(1, support_labels.expand_as(scores), scores, "amax")

        return classify

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        s, q = self.episode_features(task)
        pair = self.pair_logits(q, s)
        same = (task.query_labels.unsqueeze(1) == task.support_labels.unsqueeze(0)).to(pair.dtype)
        bce = F.binary_cross_entropy_with_logits(pair, same, reduction="none")
        loss = 0.5 * (bce * same).sum() / same.sum() + 0.5 * (bce * (1 - same)).sum() / (1 - same).sum().clamp_min(1)
        return loss, self.head(s, task.support_labels, task.way)(q)
