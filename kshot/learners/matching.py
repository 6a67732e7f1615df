"""Matching Networks (Vinyals et al., NeurIPS 2016).

classify: softmax attention over the support by cosine similarity between the
query embedding f(x) and each support embedding g(x_i); the class probability
is the attention mass on that class's support items.

Full context embeddings (`fce=True`): g is a bidirectional LSTM over the
support embeddings (plus a skip connection), and f reads the support with an
attention LSTM for `fce_steps` steps (paper, appendix A.2). As in common
reimplementations, the read-out r is added to the LSTM's hidden state rather
than concatenated with it, which keeps the state size equal to the embedding size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets import output_features
from .base import Classifier, MetricLearner
from .registry import METHODS


class SupportContext(nn.Module):
    """g(x_i, S): bidirectional LSTM over the support sequence, with a skip connection."""

    def __init__(self, dim: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)

    def forward(self, support: Tensor) -> Tensor:
        out, _ = self.lstm(support.unsqueeze(0))
        forward, backward = out[0].chunk(2, dim=1)
        return support + forward + backward


class QueryAttentionLSTM(nn.Module):
    """f(x, S): K steps of an LSTM whose state attends over the contextual support embeddings."""

    def __init__(self, dim: int, steps: int):
        super().__init__()
        self.cell = nn.LSTMCell(dim, dim)
        self.steps = steps

    def forward(self, query: Tensor, support: Tensor) -> Tensor:
        # self.cell's function, step by step, except that the input (the query embedding) is the
        # same at every step: its projection is computed once, and its gradient summed once.
        cell = self.cell
        from_query = F.linear(query, cell.weight_ih, cell.bias_ih + cell.bias_hh)
        h = c = r = torch.zeros_like(query)
        for step in range(self.steps):
            i, f, g, o = (from_query + F.linear(h + r, cell.weight_hh)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c) + query
            if step + 1 < self.steps:  # the last read-out would feed no further step
                r = torch.softmax(h @ support.T, dim=1) @ support
        return h


@METHODS.register("matching")
class MatchingNet(MetricLearner):
    needs_input_shape = True  # the context LSTMs are as wide as the embedding

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: list[int],
        fce: bool = False,
        fce_steps: int = 5,
        learn_scale: bool = True,
    ):
        super().__init__(encoder)
        dim = output_features(encoder, input_shape)
        self.fce = fce
        self.support_context = SupportContext(dim) if fce else None
        self.query_attention = QueryAttentionLSTM(dim, fce_steps) if fce else None
        # The paper's softmax over raw cosines (scale 1); a learned scale starting there lets it sharpen.
        self.log_scale = nn.Parameter(torch.zeros(())) if learn_scale else None

    def head(self, support_features: Tensor, support_labels: Tensor, way: int) -> Classifier:
        g = self.support_context(support_features) if self.fce else support_features
        g_unit = F.normalize(g, dim=1)
        onehot = F.one_hot(support_labels, way).to(g.dtype)
        scale = self.log_scale.exp() if self.log_scale is not None else 1.0

        def classify(query_features: Tensor) -> Tensor:
            f = self.query_attention(query_features, g) if self.fce else query_features
            attention = torch.softmax(scale * F.normalize(f, dim=1) @ g_unit.T, dim=1)
            # log of the attention mass per class: cross-entropy on these is the paper's loss
            return (attention @ onehot).clamp_min(1e-8).log()

        return classify
