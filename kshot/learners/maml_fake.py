"""MAML with an N+1-th "fake" class (the data-augmentation family; Zhang et al. 2018, "MetaGAN",
whose MAML variant this is).

The network has one output unit more than the task's way. Per episode a generator, conditioned
on the task (its mean support image, plus noise), makes fake images: `fakes` join the support,
labelled N, so the inner loop adapts to reject them, and `fakes` more are scored after
adaptation, where the query loss asks them to land in class N too. Real queries are scored
over all N+1 outputs. As in protonet-fake, the generator learns through a gradient-reversal
layer, so one loss and one optimizer train both sides. At test time `adapt` adapts as in
training, to the support and its task's fakes, and the classifier returns the N real logits.

Departures, and why: MetaGAN trains its generator with feature matching and its own optimizer;
the reversal keeps kshot's single trainer loop. The task code is the mean support image rather
than a learned support embedding, because MAML has no embedding outside its adapted weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..nets.norm import reference_rows
from .base import Classifier
from .fake_class import ReverseGradient, TaskGenerator
from .functional import Params
from .gradient import GradientLearner
from .registry import METHODS


@METHODS.register("maml-fake")
class FakeClassMAML(GradientLearner):
    paper_preset = "paper-maml"
    extra_outputs: ClassVar[int] = 1
    vmappable: ClassVar[bool] = False  # the generator draws from each task's own random stream

    def __init__(
        self, encoder: nn.Module, way: int, input_shape: Sequence[int], fakes: int = 5, noise_dim: int = 32, **options
    ):
        if fakes < 1:
            raise ValueError(f"fakes (fake images per episode, each side) must be at least 1, got {fakes}")
        super().__init__(encoder, way, input_shape, **options)
        self.fakes = fakes
        self.generator = TaskGenerator(math.prod(input_shape), input_shape, noise_dim)

    def make_fakes(self, support: Tensor, generator: torch.Generator, reverse: bool = True) -> tuple[Tensor, Tensor]:
        """(fakes that join the support, fakes scored after adaptation), each [fakes, C, H, W]."""
        noise = torch.randn(2 * self.fakes, self.generator.noise_dim, generator=generator).to(support.device)
        images = self.generator(support.flatten(1).mean(0, keepdim=True), noise)
        images = ReverseGradient.apply(images) if reverse else images
        return images[: self.fakes], images[self.fakes :]

    def adapted_weights(
        self, params: Params, support: Tensor, labels: Tensor, fakes: Tensor, way: int, steps: int
    ) -> Params:
        """The inner loop on the support plus the fakes labelled `way`. BatchNorm takes its
        statistics from the real images only: fakes far from them would otherwise shift every
        real image's normalised features (measured: on the contract suite's toy task MAML then
        stalled at 50% while the fakes were rejected perfectly)."""
        fake_labels = labels.new_full((fakes.shape[0],), way)
        with reference_rows(support.shape[0]):
            return self.inner_loop(params, torch.cat([support, fakes]), torch.cat([labels, fake_labels]), steps)

    def scores(self, adapted: Params, support: Tensor, query: Tensor, fake_query: Tensor) -> tuple[Tensor, Tensor]:
        """(real queries' logits [q, N+1], fakes' logits), statistics again from real rows only."""
        with reference_rows(query.shape[0]):  # the support-statistics mode sets its own rows
            both = self.predict(adapted, support, torch.cat([query, fake_query]))
        return both[: query.shape[0]], both[query.shape[0] :]

    def episode_losses(self, task: Task, reverse: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """(real queries' cross-entropy over N+1 classes, post-adaptation fakes' cross-entropy
        towards class N, real query logits [q, N+1])."""
        fakes, fake_query = self.make_fakes(task.support, task.generator(), reverse)
        adapted = self.adapted_weights(
            self.f.params(), task.support, task.support_labels, fakes, task.way, self.inner_steps
        )
        real, fake = self.scores(adapted, task.support, task.query, fake_query)
        fake_labels = task.query_labels.new_full((self.fakes,), task.way)
        return F.cross_entropy(real, task.query_labels), F.cross_entropy(fake, fake_labels), real

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        self.check_way(task.way)
        real_loss, fake_loss, logits = self.episode_losses(task)
        return real_loss + fake_loss, logits[:, : task.way]

    def adapt(
        self, support: Tensor, support_labels: Tensor, way: int, generator: torch.Generator | None = None
    ) -> Classifier:
        """As in training, the support is adapted to with fakes of its task beside it (the
        initialisation was meta-learned for that inner loop: in a first Omniglot run, adapting
        without them dropped validation from 89.5% to 57%); the classifier returns the N real
        classes' logits."""
        self.check_way(way)
        params = self.f.params()
        if not self.training:
            params = {k: v.detach() for k, v in params.items()}
        with torch.set_grad_enabled(self.training):
            fakes, fake_query = self.make_fakes(support, generator or torch.Generator().manual_seed(0), reverse=False)
        steps = self.inner_steps if self.training else self.test_steps
        adapted = self.adapted_weights(params, support, support_labels, fakes, way, steps)
        return lambda query: self.scores(adapted, support, query, fake_query)[0][:, :way]
