"""The one interface every few-shot method implements:

    classifier = learner.adapt(support, support_labels, way)   # support [n, *input_shape], labels [n]
    logits = classifier(query)                                  # query [q, *input_shape] -> [q, way]

Meta-training back-propagates `learner.loss(task)` (or a meta-batch's `meta_step`) through
`adapt`; a method overrides `loss` only where its paper does.

Everything the trainer, the evaluator, the builder and the enrollment store learn about a
method is declared here, as typed class attributes or as the base class it derives from;
they never probe a method with getattr/hasattr or test its name:

- `method`: the registry name (stamped by `@METHODS.register`).
- `backbone_needs`: backbone options the method depends on (Relation Networks keep feature
  maps; MAML needs batch-statistics normalisation); the user's backbone options go on top.
- `needs_input_shape`: the constructor takes `input_shape=[C, H, W]` and sizes its own layers
  from the backbone's output for it (`kshot.nets.output_shape`): no width is typed by hand.
- `fixed_way`: the constructor takes `way=N`; the model has an N-unit output layer and
  classifies N-way tasks only.
- `trains_on`: "episodes" (meta-training, the default) or "batches" (ordinary mini-batches over
  all training classes through `batch_logits`, as the fine-tuning baselines pretrain).
- `needs_base_classes`: the constructor takes `base_classes=N`, the number of training classes
  (the pretraining classifier's width).
- `paper_preset`: the shipped config (kshot/configs/NAME.toml) with its paper's training
  settings, the base layer under the user's settings.
- `transductive` (a property, as it may depend on options): a query's prediction depends on
  the other queries of its batch.
- `MetricLearner`: embeds each input independently, so embeddings can be computed once and
  reused across episodes (the evaluator) or stored (the enrollment store).
- `PrototypeLearner`: a metric learner that scores queries against one prototype per class,
  so a store of many classes needs one prototype each.
- `SemiSupervisedLearner`: a prototype learner that can also refine its prototypes with unlabelled
  items of the episode (`head_with_unlabelled`); semi-supervised episodes train and test it.
- `SequenceLearner`: reads an episode as one labelled sequence (Santoro et al.'s protocol: step t
  sees input t with label t-1), so it can also be scored by how often a class has been seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..errors import ConfigError

Classifier = Callable[[Tensor], Tensor]
"""query [q, ...] -> logits [q, way] (higher is more likely)."""


class Learner(nn.Module):
    method: ClassVar[str] = ""
    backbone_needs: ClassVar[Mapping[str, object]] = MappingProxyType({})
    needs_input_shape: ClassVar[bool] = False
    fixed_way: ClassVar[bool] = False
    trains_on: ClassVar[str] = "episodes"
    needs_base_classes: ClassVar[bool] = False
    paper_preset: ClassVar[str | None] = None

    @property
    def transductive(self) -> bool:
        return False

    def check_way(self, way: int) -> None:
        """A `fixed_way` learner (which keeps its way in `self.way`) classifies only tasks of that way."""
        if self.fixed_way and way != self.way:
            raise ConfigError(
                f"this {self.method} model has a {self.way}-way output layer and cannot classify "
                f"{way}-way tasks; evaluate with --way {self.way} or train a {way}-way model"
            )

    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
        """support [n, *input] with labels [n] in 0..way-1 -> a classifier of queries. `generator`
        carries the episode's randomness (`Task.generator()`) to methods that shuffle; without one
        they use a fixed seed."""
        raise NotImplementedError

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        """(scalar loss, query logits [q, way]) of one episode."""
        logits = self.adapt(task.support, task.support_labels, task.way, task.generator())(task.query)
        return F.cross_entropy(logits, task.query_labels), logits

    def batch_logits(self, inputs: Tensor) -> Tensor:
        """inputs [n, *input] -> logits over the training classes [n, base_classes]; for learners that
        declare `trains_on = "batches"`."""
        raise NotImplementedError

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        """Accumulate the gradient of the meta-batch's mean loss into `.grad`; returns (loss value,
        detached query logits [tasks, q, way]). Gradient learners do it task by task or vmapped."""
        pairs = [self.loss(t) for t in tasks]
        loss = torch.stack([l for l, _ in pairs]).mean()
        loss.backward()
        return loss.item(), torch.stack([z.detach() for _, z in pairs])


class MetricLearner(Learner):
    """A method that embeds every input independently and compares embeddings.

    `head(support_features, labels, way)` returns a classifier over query *features*, so the
    evaluator may embed each test image once and reuse it across episodes (valid in eval mode,
    where an embedding does not depend on its batch).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def embed(self, x: Tensor) -> Tensor:
        """inputs [n, *input] -> features [n, *feature_shape]."""
        return self.encoder(x)

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        raise NotImplementedError

    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
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


def class_means(features: Tensor, labels: Tensor, way: int) -> Tensor:
    """features [n, dim], labels [n] -> [way, dim] mean feature of each class (unequal shots too)."""
    onehot = F.one_hot(labels, way).to(features.dtype)  # [n, way]
    return (onehot.T @ features) / onehot.sum(0).clamp_min(1).unsqueeze(1)


class PrototypeLearner(MetricLearner):
    """A metric learner whose classifier scores queries against one prototype per class (the
    mean support embedding). The enrollment store keeps one prototype per enrolled class and
    scores a query against all of them with `prototype_classifier`."""

    prototype_metric: ClassVar[str] = "squared_euclidean"
    """How `prototype_classifier` compares: "squared_euclidean" (minus squared distance, which an
    approximate nearest-neighbour index can serve) or "cosine"; subclasses may make it a property."""

    def prototype_classifier(self, prototypes: Tensor) -> Classifier:
        """prototypes [classes, dim] -> classifier of query features [q, dim] -> scores [q, classes]."""
        raise NotImplementedError

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        return self.prototype_classifier(class_means(support_features, support_labels, way))


class SemiSupervisedLearner(PrototypeLearner):
    """A prototype learner whose prototypes may also use unlabelled items of the episode, some of
    which may belong to none of its classes (distractors). Without unlabelled items it is an
    ordinary prototype learner (so the enrollment store and the evaluator use it as one)."""

    def head_with_unlabelled(
        self, support_features: Tensor, support_labels: Tensor, way: int, unlabelled_features: Tensor
    ) -> Classifier:
        raise NotImplementedError

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        if task.unlabelled is None:
            return super().loss(task)
        n, q = task.support.shape[0], task.query.shape[0]
        features = self.embed(torch.cat([task.support, task.query, task.unlabelled]))
        head = self.head_with_unlabelled(features[:n], task.support_labels, task.way, features[n + q :])
        logits = head(features[n : n + q])
        return F.cross_entropy(logits, task.query_labels), logits


class SequenceLearner(Learner):
    """A method that reads an episode as one sequence in which step t sees input t and the label
    of step t-1 (never its own), and predicts every step; `kshot instances` scores it by how many
    times each class has been seen."""

    def sequence_logits(self, inputs: Tensor, labels: Tensor) -> Tensor:
        """inputs [B, T, *input], labels [B, T] in 0..way-1 -> logits [B, T, way]."""
        raise NotImplementedError
