"""Relation Networks (Sung et al., CVPR 2018).

The embedding module keeps spatial maps (Conv-4 with pooling in the first two
blocks only); a class's feature is the sum of its support maps (K > 1); the
relation module scores each (query, class) pair of concatenated maps with two
conv blocks and two fully connected layers ending in a sigmoid. Trained with
the paper's mean squared error against one-hot targets.
"""

from __future__ import annotations

from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets import output_shape
from ..nets.conv4 import conv_block
from .base import Classifier, MetricLearner
from .registry import METHODS


class RelationModule(nn.Module):
    def __init__(self, in_channels: int, channels: int = 64, hidden: int = 8, fc_spatial: int = 1):
        super().__init__()
        # On 28x28 Omniglot the maps are already 1x1 here, so the adaptive pool is the identity;
        # it lets other image sizes use the same fully connected layers.
        self.convs = nn.Sequential(
            conv_block(2 * in_channels, channels), conv_block(channels, channels), nn.AdaptiveMaxPool2d(fc_spatial)
        )
        self.fc = nn.Sequential(
            nn.Linear(channels * fc_spatial**2, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )

    def forward(self, pairs: Tensor) -> Tensor:
        """Scores of concatenated (class, query) maps [n, 2C, h, w] -> [n]."""
        return torch.sigmoid(self.fc(self.convs(pairs).flatten(1))).squeeze(1)

    def score_all_pairs(self, classes: Tensor, queries: Tensor) -> Tensor:
        """forward() of every (query, class) pair, [q, k], without building the q*k concatenated
        maps: the first convolution is linear in its input, so conv([c; x]) = conv_c(c) +
        conv_x(x), each part computed once per class and once per query and added per pair.
        That convolution was nine tenths of the module's work; at 20-way with 15 queries per
        class it ran on 6,000 pairs of 7x7x128 maps per episode."""
        first = self.convs[0]
        conv: nn.Conv2d = first[0]
        c = classes.shape[1]
        per_class = F.conv2d(classes, conv.weight[:, :c], None, conv.stride, conv.padding)
        per_query = F.conv2d(queries, conv.weight[:, c:], conv.bias, conv.stride, conv.padding)
        q, k = per_query.shape[0], per_class.shape[0]
        summed = (per_query.unsqueeze(1) + per_class.unsqueeze(0)).flatten(0, 1)
        rest = self.convs[1:](first[1:](summed))
        return torch.sigmoid(self.fc(rest.flatten(1))).view(q, k)


@METHODS.register("relation")
class RelationNet(MetricLearner):
    # The embedding keeps feature maps: the backbone must not pool them all away.
    backbone_needs = MappingProxyType({"pooled_blocks": 2, "flatten": False})
    needs_input_shape = True  # the relation module reads the backbone's feature maps

    def __init__(self, encoder: nn.Module, input_shape: list[int], channels: int = 64, hidden: int = 8):
        super().__init__(encoder)
        feature_channels = output_shape(encoder, input_shape)[0]
        self.relation = RelationModule(feature_channels, channels, hidden)
        # The paper sums a class's K support maps, so the relation module learns maps of K times one
        # item's magnitude. The K it trained with is kept, and a class is its mean map times that K:
        # the paper's sum at the training shot, and the same scale at any other shot.
        self.register_buffer("trained_shot", torch.zeros(()))

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        onehot = F.one_hot(support_labels, way).to(support_features.dtype)
        per_class = onehot.sum(0).clamp_min(1).view(-1, 1, 1, 1)
        # 0: not trained yet, the plain sum. A new tensor, not the buffer: later episodes may update it.
        scale = torch.where(self.trained_shot > 0, self.trained_shot, per_class).to(support_features.dtype)
        classes = torch.einsum("nk,nchw->kchw", onehot, support_features) / per_class * scale

        return lambda query_features: self.relation.score_all_pairs(classes, query_features)

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        if self.training:
            self.trained_shot.fill_(task.support.shape[0] // task.way)
        support, query = self.episode_features(task)
        scores = self.head(support, task.support_labels, task.way)(query)
        return F.mse_loss(scores, F.one_hot(task.query_labels, task.way).to(scores.dtype)), scores
