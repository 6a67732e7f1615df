"""The one interface every few-shot method implements:

    classifier = learner.adapt(support, support_labels, way)
    logits = classifier(query)            # [n_query, way]

Meta-training back-propagates `learner.loss(task)` through `adapt`; a method
overrides `loss` only where its paper does.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task

Classifier = Callable[[Tensor], Tensor]


class Learner(nn.Module):
    method: str = ""

    def adapt(self, support: Tensor, support_labels: Tensor, way: int) -> Classifier:
        raise NotImplementedError

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        """(scalar loss, query logits) of one episode."""
        logits = self.adapt(task.support, task.support_labels, task.way)(task.query)
        return F.cross_entropy(logits, task.query_labels), logits

    def meta_loss(self, tasks: list[Task]) -> tuple[Tensor, Tensor]:
        """(mean loss, stacked query logits [tasks, n_query, way]) of a meta-batch of episodes;
        optimization-based learners override it to batch the tasks."""
        pairs = [self.loss(t) for t in tasks]
        return torch.stack([l for l, _ in pairs]).mean(), torch.stack([z for _, z in pairs])

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        """Accumulate the gradient of the meta-batch's mean loss into `.grad`; returns
        (loss value, detached query logits). Learners may do it task by task to save memory."""
        loss, logits = self.meta_loss(tasks)
        loss.backward()
        return loss.item(), logits.detach()


class MetricLearner(Learner):
    """A method that embeds every input independently and compares embeddings.

    `head(support_features, labels, way)` returns a classifier over query
    *features*, so the evaluator may embed each test image once and reuse it
    across episodes (valid in eval mode, where an embedding does not depend on
    its batch).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def embed(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        raise NotImplementedError

    def adapt(self, support: Tensor, support_labels: Tensor, way: int) -> Classifier:
        classify = self.head(self.embed(support), support_labels, way)
        return lambda query: classify(self.embed(query))

    def episode_features(self, task: Task) -> tuple[Tensor, Tensor]:
        """(support features, query features) from one forward pass over the whole episode,
        as the papers' code does: batch statistics cover the episode, and it beats two passes."""
        n = task.support.shape[0]
        features = self.embed(torch.cat([task.support, task.query]))
        return features[:n], features[n:]

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        support, query = self.episode_features(task)
        logits = self.head(support, task.support_labels, task.way)(query)
        return F.cross_entropy(logits, task.query_labels), logits
