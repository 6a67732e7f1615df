"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017) and its first-order
variant, on the learner interface.

adapt: a few gradient steps from the learned initialisation on the support loss; the
classifier is the network with the adapted weights. Meta-training back-propagates the
query loss through those steps (second order unless `first_order`).

BatchNorm: the backbone defaults to `norm="task"`, statistics of the current batch at
training and test time as in the paper. `bn="support"` instead normalises the query with
the support statistics, so no query statistics leak into a prediction.

A meta-batch of tasks runs under `torch.func.vmap` (`vectorize="vmap"`) or as a per-task
loop (`"loop"`); tests check both agree in float64. `"auto"` picks vmap on a GPU and the
loop on a CPU, where vmap's batched-weight convolutions measured 1.6-2.8x slower than the
loop (Conv-4, 5-way 1-shot, meta-batch 4, 1 thread; BENCHMARKS.md). On a CPU the loop runs
its tasks in `workers` threads (default: torch's thread count), one intra-op thread each.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sampler import Task
from ..errors import ConfigError
from ..nets.norm import reference_rows, vmap_safe
from .base import Classifier, Learner
from .functional import Functional, LearningRate, Params, gradient_steps, map_tasks
from .registry import METHODS


def stack_tasks(tasks: list[Task]) -> list[Tensor]:
    """[support, support labels, query, query labels], each stacked over the tasks (for vmap)."""
    return [torch.stack([getattr(t, name) for t in tasks])
            for name in ("support", "support_labels", "query", "query_labels")]


def output_features(encoder: nn.Module, input_shape: list[int]) -> int:
    """Width of the encoder's flattened output for one input of `input_shape`."""
    was_training = encoder.training
    with torch.no_grad():
        n = encoder.eval()(torch.zeros(2, *input_shape)).flatten(1).shape[1]
    encoder.train(was_training)
    return n


@METHODS.register("maml")
class MAML(Learner):
    method = "maml"
    backbone_defaults = {"norm": "task", "channels_last": False}
    # The head has `way` outputs, so the trainer passes its way and the input shape.
    needs_task_shape = True
    # Finn et al. 2017, Omniglot 5-way: meta-batch 32, 1 inner step of 0.4 (3 at test), Adam 1e-3.
    train_defaults = {"way": 5, "shot": 1, "query": 15, "meta_batch": 32, "episodes": 60000, "lr": 1e-3,
                      "lr_step": 10 ** 9, "val_every": 500, "val_episodes": 200}

    def __init__(self, encoder: nn.Module, way: int = 5, input_shape: list[int] | None = None,
                 inner_steps: int = 1, inner_lr: float = 0.4, test_steps: int = 3,
                 first_order: bool = False, bn: str = "transductive", vectorize: str = "auto",
                 workers: int = 0):
        super().__init__()
        if bn not in ("transductive", "support"):
            raise ValueError(f"bn must be 'transductive' or 'support', not {bn!r}")
        if vectorize not in ("auto", "vmap", "loop"):
            raise ValueError(f"vectorize must be 'auto', 'vmap' or 'loop', not {vectorize!r}")
        if inner_steps < 0 or test_steps < 0:
            raise ValueError("inner_steps and test_steps must be >= 0")
        if workers < 0:
            raise ValueError("workers must be >= 0 (0: one per torch thread on a CPU)")
        features = output_features(encoder, input_shape or [1, 28, 28])
        self.way, self.input_shape = way, input_shape
        self.inner_steps, self.test_steps, self.inner_lr = inner_steps, test_steps, inner_lr
        self.first_order, self.bn, self.vectorize, self.workers = first_order, bn, vectorize, workers
        self.net = nn.Sequential(encoder, nn.Flatten(), nn.Linear(features, way))
        self.f = Functional(self.net)

    # ---- the pure functions vmap sees ---------------------------------------------
    def step_sizes(self) -> LearningRate:
        return self.inner_lr

    def adapted_names(self) -> list[str] | None:
        return None  # all parameters

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        loss_of = lambda p: F.cross_entropy(self.f(p, support), labels)
        return gradient_steps(loss_of, params, steps, self.step_sizes(), self.first_order, self.adapted_names())

    def predict(self, params: Params, support: Tensor, query: Tensor) -> Tensor:
        if self.bn == "transductive":
            return self.f(params, query)
        n = support.shape[0]
        with reference_rows(n):
            return self.f(params, torch.cat([support, query]))[n:]

    def task_loss(self, params: Params, support: Tensor, s_labels: Tensor, query: Tensor, q_labels: Tensor):
        adapted = self.inner_loop(params, support, s_labels, self.inner_steps)
        logits = self.predict(adapted, support, query)
        return F.cross_entropy(logits, q_labels), logits

    # ---- the learner interface ----------------------------------------------------
    def check_way(self, way: int) -> None:
        if way != self.way:
            raise ConfigError(f"this {self.method} model has a {self.way}-way output layer and cannot classify "
                              f"{way}-way tasks; evaluate with --way {self.way} or train a {way}-way model")

    def adapt(self, support: Tensor, support_labels: Tensor, way: int) -> Classifier:
        self.check_way(way)
        params = self.f.params()
        if not self.training:  # no outer step will follow: no graph through the initialisation
            params = {k: v.detach() for k, v in params.items()}
        adapted = self.adapt_weights(params, support, support_labels)
        return lambda query: self.predict(adapted, support, query)

    def adapt_weights(self, params: Params, support: Tensor, labels: Tensor) -> Params:
        """The inner loop `adapt` runs: `inner_steps` in training, `test_steps` at test."""
        return self.inner_loop(params, support, labels, self.inner_steps if self.training else self.test_steps)

    def loss(self, task: Task) -> tuple[Tensor, Tensor]:
        loss, logits = self.meta_loss([task])
        return loss, logits[0]

    def vectorizable(self) -> bool:
        """Whether to vmap over tasks. Never with a torch BatchNorm layer: its fused kernel gives
        wrong second-order gradients under vmap (measured, torch 2.13), and its running statistics
        are updated in place. The backbone's TaskBatchNorm2d avoids both inside `vmap_safe()`."""
        batchnorm = any(isinstance(m, nn.modules.batchnorm._NormBase) for m in self.net.modules())
        on_gpu = next(self.net.parameters()).is_cuda
        wanted = self.vectorize == "vmap" or (self.vectorize == "auto" and on_gpu)
        return wanted and not batchnorm

    def task_workers(self) -> int:
        """Threads for the per-task loop: one per torch thread on a CPU unless set. Never with
        buffers (a torch BatchNorm's running statistics would be updated in a thread's copy)."""
        if any(True for _ in self.net.buffers()) or next(self.net.parameters()).is_cuda:
            return 1
        return self.workers or torch.get_num_threads()

    def meta_loss(self, tasks: list[Task]) -> tuple[Tensor, Tensor]:
        self.check_way(tasks[0].way)
        params = self.f.params()
        if self.vectorizable() and len(tasks) > 1:
            with vmap_safe():
                losses, logits = torch.func.vmap(self.task_loss, in_dims=(None, 0, 0, 0, 0))(params, *stack_tasks(tasks))
            return losses.mean(), logits
        pairs = [self.task_loss(params, t.support, t.support_labels, t.query, t.query_labels) for t in tasks]
        return torch.stack([l for l, _ in pairs]).mean(), torch.stack([z for _, z in pairs])

    def meta_step(self, tasks: list[Task]) -> tuple[float, Tensor]:
        """Without vmap, differentiate each task as soon as its loss exists, so only one task's
        second-order graph per worker is alive at a time (not the whole meta-batch's). The
        per-task gradients are summed in task order: the result does not depend on `workers`."""
        if self.vectorizable() and len(tasks) > 1:
            return super().meta_step(tasks)
        params = [p for p in self.parameters() if p.requires_grad]

        def one_task(task: Task) -> tuple[float, Tensor, tuple[Tensor | None, ...]]:
            loss, logits = self.meta_loss([task])
            grads = torch.autograd.grad(loss / len(tasks), params, allow_unused=True)
            return loss.item(), logits[0].detach(), grads

        total, logits = 0.0, []
        for loss, z, grads in map_tasks(one_task, tasks, self.task_workers(), self.f):
            for p, g in zip(params, grads):  # accumulated at once: no meta-batch of gradients held
                if g is not None:
                    p.grad = g if p.grad is None else p.grad.add_(g)
            total += loss
            logits.append(z)
        return total / len(tasks), torch.stack(logits)


@METHODS.register("fomaml")
class FirstOrderMAML(MAML):
    """MAML without the second-order term (Finn et al. 2017, section 5.2)."""
    method = "fomaml"

    def __init__(self, encoder: nn.Module, first_order: bool = True, **kw):
        super().__init__(encoder, first_order=first_order, **kw)


@METHODS.register("metasgd")
class MetaSGD(MAML):
    """Meta-SGD (Li et al. 2017): one learned step size per parameter, meta-trained with the
    initialisation. The inner update is theta - alpha * grad, alpha elementwise."""
    method = "metasgd"

    def __init__(self, encoder: nn.Module, inner_lr: float = 0.1, test_steps: int = 1, **kw):
        super().__init__(encoder, inner_lr=inner_lr, test_steps=test_steps, **kw)
        # A ParameterList in the order of net's parameters (names with dots cannot key a ParameterDict).
        self.step_size_list = nn.ParameterList([nn.Parameter(torch.full_like(p, inner_lr)) for p in self.net.parameters()])

    def step_sizes(self) -> LearningRate:
        return dict(zip(self.f.params(), self.step_size_list))


@METHODS.register("anil")
class ANIL(MAML):
    """Almost No Inner Loop (Raghu et al. 2020): the inner loop adapts the final linear layer
    only; the body is meta-learned by the outer loop alone. The body runs once per task."""
    method = "anil"

    def adapted_names(self) -> list[str] | None:
        return ["2.weight", "2.bias"]

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        body = {k[2:]: v for k, v in params.items() if k.startswith("0.")}
        features = torch.func.functional_call(self.f.module[0], body, (support,)).flatten(1)
        loss_of = lambda p: F.cross_entropy(F.linear(features, p["2.weight"], p["2.bias"]), labels)
        return gradient_steps(loss_of, params, steps, self.step_sizes(), self.first_order, self.adapted_names())
