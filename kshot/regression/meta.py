"""The MAML paper's sine regression on the one trainer: the regressor is the MAML learner with
an MSE inner loss on an MLP body (1-40-40, ReLU) and a 1-unit head; the baseline is the same
network pretrained on every point of every task (no inner step), fine-tuned at test time by the
same gradient steps.

Paper settings (Finn et al. 2017, section 5.1): MSE loss, one inner step of 0.01 with K
points, meta-batch 25, Adam 1e-3, 70,000 iterations; at test time 1 or 10 steps of 0.01.
Tasks run under torch.func.vmap (a small MLP: no BatchNorm, and vmap pays here).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..engine.build import build_learner, learner_meta
from ..engine.config import TrainConfig
from ..engine.evaluator import mean_ci95
from ..engine.tasks import StepResult
from ..engine.trainer import Trainer
from ..learners.gradient import GradientLearner
from .sinusoid import SinusoidTasks

BODY = {"in_features": 1, "hidden": [40, 40], "out_features": None, "dropout": 0.0}


@dataclass
class RegressionRun:
    kind: str  # "maml" or "pretrained"
    shots: int
    iterations: int = 70000
    meta_batch: int = 25
    inner_lr: float = 0.01
    inner_steps: int = 1
    lr: float = 1e-3
    seed: int = 0

    def method_args(self) -> dict:
        return {
            "way": 1,
            "input_shape": [1],
            "loss": "mse",
            "inner_lr": self.inner_lr,
            "vectorize": "vmap",
            "inner_steps": self.inner_steps if self.kind == "maml" else 0,
        }

    def settings(self) -> TrainConfig:
        return TrainConfig(
            method="maml",
            backbone="mlp",
            backbone_args=BODY,
            method_args=self.method_args(),
            dataset="sinusoid",
            way=1,
            shot=self.shots,
            query=self.shots,
            episodes=self.iterations,
            meta_batch=self.meta_batch,
            lr=self.lr,
            lr_step=10**9,
            val_split=None,
            log_every=1000,
            checkpoint_seconds=60.0,
            seed=self.seed,
        )


class SineWaves:
    """The task family: batch i is `size` sine waves with K support and K query points each. For
    the pretrained baseline every point is a query point, so training fits all of them."""

    # A step's waves come from one generator seeded by the step, not one per task.
    shardable: ClassVar[bool] = False

    def __init__(self, shots: int, seed: int = 0, all_points_are_queries: bool = False):
        self.shots, self.tasks, self.all_points = shots, SinusoidTasks(seed), all_points_are_queries

    def step(self, learner: GradientLearner, index: int, size: int) -> StepResult:
        b = self.tasks.batch(index, size, self.shots, self.shots)
        query_x = torch.cat([b.support_x, b.query_x], 1) if self.all_points else b.query_x
        query_y = torch.cat([b.support_y, b.query_y], 1) if self.all_points else b.query_y
        tasks = [SineTask(sx, sy, qx, qy) for sx, sy, qx, qy in zip(b.support_x, b.support_y, query_x, query_y)]
        loss, _ = learner.meta_step(tasks)
        return StepResult(loss, None)


@dataclass
class SineTask:
    """A regression task in the shape the learners read (targets in place of labels)."""

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    way: int = 1


def train_regressor(
    run: RegressionRun, out_dir: str | Path | None = None, progress: bool = True
) -> tuple[GradientLearner, float]:
    """Train (or resume from `out_dir/last.safetensors`) with the one trainer; returns the learner
    and its training seconds. A finished run is loaded, not retrained."""
    torch.manual_seed(run.seed)
    settings = run.settings()
    learner = build_learner("maml", "mlp", BODY, settings.method_args)
    meta = {**learner_meta("maml", "mlp", BODY, settings.method_args), "data": {"dataset": "sinusoid"}}
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(
            learner,
            SineWaves(run.shots, run.seed, run.kind == "pretrained"),
            None,
            settings,
            out_dir or scratch,
            meta,
            progress,
        )
        trainer.resume()
        result = trainer.train()
    return learner.eval(), result["train_seconds"]


@dataclass
class AdaptationResult:
    steps: int
    mse: float
    ci95: float
    tasks: int


def evaluate_adaptation(
    learner: GradientLearner, shots: int, steps: list[int], tasks: int = 600, query: int = 100, seed: int = 12345
) -> list[AdaptationResult]:
    """Mean query MSE (and 1.96 std/sqrt(n)) after each number of the learner's inner steps on K
    points, over `tasks` held-out sine waves (a seed never used in training)."""
    params = {k: v.detach() for k, v in learner.f.params().items()}
    b = SinusoidTasks(seed).batch(0, tasks, shots, query)

    def errors(sx, sy, qx, qy, n):
        return F.mse_loss(learner.f(learner.inner_loop(params, sx, sy, n), qx), qy)

    out = []
    for n in steps:
        mse = torch.func.vmap(errors, in_dims=(0, 0, 0, 0, None))(b.support_x, b.support_y, b.query_x, b.query_y, n)
        out.append(AdaptationResult(n, *mean_ci95(mse), tasks))
    return out
