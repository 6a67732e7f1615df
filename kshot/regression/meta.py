"""Meta-train the MAML paper's regressor (MLP 1-40-40-1, ReLU) on sine waves, and the
baseline it is compared with: the same network pretrained on all tasks at once, then
fine-tuned on each new task's K points by gradient descent.

Paper settings (Finn et al. 2017, section 5.1): MSE loss, one inner step of 0.01 with K
points, meta-batch 25, Adam 1e-3, 70,000 iterations; at test time 1 or 10 steps of 0.01.
Tasks run under torch.func.vmap (a small MLP: no BatchNorm, and vmap pays here).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ..engine import checkpoint
from ..engine.evaluator import mean_ci95
from ..engine.trainer import optimizer_tensors, restore_optimizer, stop_requests
from ..errors import CheckpointError
from ..learners.functional import Functional, Params, gradient_steps
from ..nets.mlp import MLP
from .sinusoid import SinusoidTasks


def sine_regressor() -> nn.Module:
    return MLP(1, [40, 40], 1)


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

    def settings(self) -> dict:
        return dict(self.__dict__)


def fine_tune(f: Functional, params: Params, x: Tensor, y: Tensor, steps: int, lr: float,
              first_order: bool = False) -> Params:
    """`steps` plain gradient steps on the MSE of the K points (x, y): MAML's inner loop, and
    the test-time adaptation of both regressors."""
    return gradient_steps(lambda p: F.mse_loss(f(p, x), y), params, steps, lr, first_order)


def adapted_loss(f: Functional, params: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor,
                 steps: int, lr: float) -> Tensor:
    """Query MSE after `steps` gradient steps on the support MSE (second order)."""
    return F.mse_loss(f(fine_tune(f, params, sx, sy, steps, lr), qx), qy)


def train_regressor(run: RegressionRun, path: str | Path | None = None, progress: bool = True,
                    save_seconds: float = 60.0) -> tuple[nn.Module, float]:
    """Train (or resume from `path`), saving model + optimizer there atomically; returns the
    network and the training seconds. A finished run at `path` is loaded, not retrained."""
    torch.manual_seed(run.seed)
    net = sine_regressor()
    f = Functional(net)
    opt = torch.optim.Adam(net.parameters(), lr=run.lr)
    start, seconds = 0, 0.0
    if path is not None and Path(path).exists():
        tensors, meta = checkpoint.load(path, expect_method=f"sinusoid-{run.kind}")
        ours, theirs = run.settings(), dict(meta["run"])
        ours.pop("iterations"), theirs.pop("iterations")  # extending a run is allowed
        if ours != theirs:
            raise CheckpointError(f"{path} was trained with other settings {meta['run']}; use another --out")
        net.load_state_dict(checkpoint.split_prefix(tensors, "model."))
        restore_optimizer(opt, tensors, meta["optimizer"])
        start, seconds = min(meta["iteration"], run.iterations), meta["train_seconds"]

    def save(iteration: int) -> None:
        if path is not None:
            opt_tensors, opt_info = optimizer_tensors(opt)
            checkpoint.save(path, {**{f"model.{k}": v for k, v in net.state_dict().items()}, **opt_tensors},
                            {"method": f"sinusoid-{run.kind}", "kind": "training-state", "run": run.settings(),
                             "iteration": iteration, "train_seconds": seconds, "optimizer": opt_info})

    tasks = SinusoidTasks(run.seed)
    per_task = torch.func.vmap(adapted_loss, in_dims=(None, None, 0, 0, 0, 0, None, None))
    last_save = time.perf_counter()
    with stop_requests() as flag:
        for it in tqdm(range(start, run.iterations), initial=start, total=run.iterations,
                       desc=f"sinusoid {run.kind} K={run.shots}", disable=not progress):
            if flag["stop"]:
                save(it)
                raise KeyboardInterrupt
            t0 = time.perf_counter()
            b = tasks.batch(it, run.meta_batch, run.shots, run.shots)
            if run.kind == "maml":
                loss = per_task(f, f.params(), b.support_x, b.support_y, b.query_x, b.query_y,
                                run.inner_steps, run.inner_lr).mean()
            else:  # plain regression on every point of every task
                loss = F.mse_loss(net(torch.cat([b.support_x, b.query_x], 1).view(-1, 1)),
                                  torch.cat([b.support_y, b.query_y], 1).view(-1, 1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seconds += time.perf_counter() - t0
            if time.perf_counter() - last_save > save_seconds:
                save(it + 1)
                last_save = time.perf_counter()
    save(run.iterations)
    return net, seconds


@dataclass
class AdaptationResult:
    steps: int
    mse: float
    ci95: float
    tasks: int


def evaluate_adaptation(net: nn.Module, shots: int, steps: list[int], tasks: int = 600, lr: float = 0.01,
                        query: int = 100, seed: int = 12345) -> list[AdaptationResult]:
    """Mean query MSE (and 1.96 std/sqrt(n)) after each number of plain gradient steps on K
    points, over `tasks` held-out sine waves (a seed never used in training)."""
    f = Functional(net)
    params = {k: v.detach() for k, v in f.params().items()}
    b = SinusoidTasks(seed).batch(0, tasks, shots, query)

    def errors(sx, sy, qx, qy, n):
        return F.mse_loss(f(fine_tune(f, params, sx, sy, n, lr, first_order=True), qx), qy)

    out = []
    for n in steps:
        mse = torch.func.vmap(errors, in_dims=(0, 0, 0, 0, None))(b.support_x, b.support_y, b.query_x, b.query_y, n)
        out.append(AdaptationResult(n, *mean_ci95(mse), tasks))
    return out
