"""Prototypical Networks with an N+1-th "fake" class (the data-augmentation family; after Zhang et
al. 2018, "MetaGAN").

A generator conditioned on the episode (the mean support embedding, plus noise) makes fake
images; the classifier learns to put them in an extra class and the episode's real queries in
their own. The fake class's logit is one learned scalar beside the N prototype logits (the
semi-supervised GAN's trick, Salimans et al. 2016, with a learned threshold because prototype
logits are minus distances, all below zero). The generator is trained against the classifier
through a gradient-reversal layer, so one loss and one optimizer train both: the classifier
descends the fake-class cross-entropy, the generator ascends it (it learns fakes the classifier
takes for real classes), which sharpens the classes' boundaries. At test time nothing changes:
`adapt` gives the N-way ProtoNet classifier.

Departures, and why: MetaGAN trains its generator with feature matching and a separate
optimizer; the reversal layer keeps kshot's one-trainer loop (the saturating GAN objective is
weaker early, the price of that). The generator is a small MLP, sized for Omniglot's 28x28
characters; on 84x84 colour images it would hold millions of weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets import output_features
from .protonet import ProtoNet
from .registry import METHODS


class ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


class TaskGenerator(nn.Module):
    """(task code [dim], noise [n, noise_dim]) -> images [n, *input_shape] in [0, 1]."""

    def __init__(self, code_dim: int, input_shape: Sequence[int], noise_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.input_shape, self.noise_dim = tuple(input_shape), noise_dim
        self.net = nn.Sequential(
            nn.Linear(code_dim + noise_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(input_shape)),
            nn.Sigmoid(),
        )

    def forward(self, code: Tensor, noise: Tensor) -> Tensor:
        x = torch.cat([code.expand(noise.shape[0], -1), noise], 1)
        return self.net(x).view(noise.shape[0], *self.input_shape)


@METHODS.register("protonet-fake")
class FakeClassProtoNet(ProtoNet):
    needs_input_shape = True
    paper_preset = "paper-protonet"

    def __init__(self, encoder: nn.Module, input_shape: Sequence[int], fakes: int = 10, noise_dim: int = 32):
        super().__init__(encoder)
        if fakes < 1:
            raise ValueError(f"fakes (fake images per episode) must be at least 1, got {fakes}")
        self.fakes = fakes
        self.generator = TaskGenerator(output_features(encoder, input_shape), input_shape, noise_dim)
        # The fake class's logit; NaN until the first episode sets it from the real logits' scale.
        self.fake_logit = nn.Parameter(torch.tensor(float("nan")))

    def episode_losses(self, task: Task, reverse: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """(real queries' cross-entropy over N+1 classes, fakes' cross-entropy towards the fake
        class, real query logits [q, N]). `reverse=False` leaves out the gradient reversal."""
        support, query = self.episode_features(task)
        classify = self.head(support, task.support_labels, task.way)
        real = classify(query)
        if torch.isnan(self.fake_logit):  # data-dependent start: just under the real logits' level
            with torch.no_grad():
                self.fake_logit.fill_(real.logsumexp(1).mean().item() - 2.0)
        g = task.generator()
        noise = torch.randn(self.fakes, self.generator.noise_dim, generator=g).to(support.device)
        fakes = self.generator(support.flatten(1).mean(0, keepdim=True).detach(), noise)
        fakes = ReverseGradient.apply(fakes) if reverse else fakes
        fake = classify(self.embed(fakes))
        extra = lambda logits: torch.cat([logits, self.fake_logit.expand(logits.shape[0], 1)], 1)
        real_loss = F.cross_entropy(extra(real), task.query_labels)
        fake_loss = F.cross_entropy(extra(fake), task.query_labels.new_full((self.fakes,), task.way))
        return real_loss, fake_loss, real

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        real_loss, fake_loss, logits = self.episode_losses(task)
        return real_loss + fake_loss, logits
