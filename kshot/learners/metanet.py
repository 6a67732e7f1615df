"""Meta Networks (Munkhdalai & Yu, ICML 2017).

A base learner (the backbone and an output layer) and a meta learner that turns loss gradients
into fast weights:
- meta information: for each support example, the gradient of the base learner's loss with
  respect to its output layer, with the log-and-sign preprocessing the paper takes from
  Andrychowicz et al. (the same `preprocess` as the LSTM meta-learner);
- example-level fast weights: a coordinate-wise MLP `m` maps each example's preprocessed gradient
  to fast weights W*_i for the output layer; they are kept in a memory, keyed by that example's
  representation r_i;
- a query reads the memory by attention over the support keys, softmax of cosine similarities:
  W*_q = sum_i a_i W*_i;
- task-level fast weights: a representation network u (a second backbone) ends in a key layer
  whose fast weights K* come, through a coordinate-wise MLP `d`, from the gradient of an
  embedding loss on the support;
- each augmented layer adds its slow and fast outputs: keys = ReLU(K u(x)) + ReLU(K* u(x)),
  logits = W h(x) + W*_q h(x) + b.

Departures, and why: the embedding loss for the task-level weights is the prototypical loss of
the support keys (the paper samples pairs for a contrastive loss; the prototype loss uses every
support item at once); the attention has a learned temperature (softmax over raw cosines is
nearly uniform over many support items); gradients are inputs to the meta learner (no second
derivatives), as in the paper.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets import output_features
from .base import Classifier, Learner, class_means
from .meta_lstm import preprocess
from .registry import METHODS


class CoordinateMLP(nn.Module):
    """A small MLP applied to each coordinate's preprocessed gradient [..., 2] -> fast weight [...]."""

    def __init__(self, hidden: int = 20):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, gradient: Tensor) -> Tensor:
        return self.net(preprocess(gradient)).squeeze(-1)


@METHODS.register("metanet")
class MetaNet(Learner):
    needs_input_shape = True  # the output layer and the key layer are sized from the backbone
    fixed_way = True  # the slow output layer has `way` units

    def __init__(self, encoder: nn.Module, way: int, input_shape: Sequence[int], key_dim: int = 64, hidden: int = 20):
        super().__init__()
        self.way, self.encoder = way, encoder
        self.representation = copy.deepcopy(encoder)  # u: same architecture, its own weights
        for module in self.representation.modules():
            if module is not self.representation and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        width = output_features(encoder, input_shape)
        self.output = nn.Linear(width, way)  # slow weights of the base learner's output layer
        self.key = nn.Linear(width, key_dim, bias=False)  # slow weights of u's key layer
        self.example_weights = CoordinateMLP(hidden)  # m
        self.task_weights = CoordinateMLP(hidden)  # d
        self.log_scale = nn.Parameter(torch.tensor(10.0).log())  # attention temperature

    def keys(self, features: Tensor, fast: Tensor) -> Tensor:
        """Augmented key layer: slow and fast outputs, each through a ReLU, added."""
        return F.relu(features @ self.key.weight.T) + F.relu(features @ fast.T)

    def task_fast_weights(self, features: Tensor, labels: Tensor, way: int) -> Tensor:
        """K* from the gradient of the support's prototypical loss with respect to K."""
        with torch.enable_grad():
            k = self.key.weight.detach().requires_grad_()
            keys = F.relu(features.detach() @ k.T)
            distances = torch.cdist(keys, class_means(keys, labels, way)).pow(2)
            (gradient,) = torch.autograd.grad(F.cross_entropy(-distances, labels), k)
        return self.task_weights(gradient)

    def example_fast_weights(self, h: Tensor, labels: Tensor, way: int) -> Tensor:
        """[n, way, width]: W*_i from each support example's output-layer gradient (a meta input,
        so detached): d CE(W h_i + b, y_i) / dW = (softmax - onehot(y_i)) h_i^T."""
        h = h.detach()
        probabilities = torch.softmax(self.output(h), dim=1).detach()
        gradient = (probabilities - F.one_hot(labels, way).to(h.dtype)).unsqueeze(2) * h.unsqueeze(1)
        return self.example_weights(gradient)

    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
        self.check_way(way)
        h = self.encoder(support).flatten(1)
        u = self.representation(support).flatten(1)
        fast_key = self.task_fast_weights(u, support_labels, way)
        memory_keys = F.normalize(self.keys(u, fast_key), dim=1)  # [n, key_dim]
        memory = self.example_fast_weights(h, support_labels, way)  # [n, way, width]

        def classify(query: Tensor) -> Tensor:
            hq = self.encoder(query).flatten(1)
            rq = F.normalize(self.keys(self.representation(query).flatten(1), fast_key), dim=1)
            attention = torch.softmax(self.log_scale.exp() * rq @ memory_keys.T, dim=1)  # [q, n]
            fast = torch.einsum("qn,nwd->qwd", attention, memory)  # W*_q
            return self.output(hq) + torch.einsum("qwd,qd->qw", fast, hq)

        return classify
