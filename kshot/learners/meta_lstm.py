"""The LSTM meta-learner (Ravi & Larochelle, ICLR 2017).

The learner's parameters are the cell state of an LSTM: at each inner step the
meta-learner reads the learner's gradient and loss and writes
    theta_t = f_t * theta_{t-1} - i_t * grad_t,
with forget gate f_t and input gate i_t (a learned step size) computed per coordinate.
Parameters are shared across coordinates (the paper's section 3.3): a first LSTM of
hidden size 20 reads the preprocessed (gradient, loss) of each coordinate; the gates are
linear in [its hidden state, theta, previous gate]. The initial cell state is the learner's
learned initialisation. As in the paper, the gradients the meta-learner reads are treated
as inputs (no second derivatives), and BatchNorm uses batch statistics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .functional import Params, gradient_and_value
from .gradient import GradientLearner
from .registry import METHODS


def preprocess(x: Tensor, p: float = 10.0) -> Tensor:
    """[..., 2] scale and sign of x (Andrychowicz et al. 2016, appendix A), used by the paper
    so gradients of very different magnitudes reach the LSTM on one scale."""
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, x.abs().clamp_min(1e-38).log() / p, torch.full_like(x, -1.0))
    second = torch.where(big, x.sign(), x * math.exp(p))
    return torch.stack([first, second], dim=-1)


class MetaLSTMCell(nn.Module):
    """theta_t = f * theta_{t-1} - i * grad, gates from [h, theta_{t-1}, gate_{t-1}]."""

    def __init__(self, hidden: int = 20):
        super().__init__()
        self.forget = nn.Linear(hidden + 2, 1)
        self.input = nn.Linear(hidden + 2, 1)
        for gate in (self.forget, self.input):
            nn.init.uniform_(gate.weight, -0.01, 0.01)
        # Start near "keep theta, take a small step": forget gate ~1, input gate ~0.01.
        nn.init.uniform_(self.forget.bias, 4.0, 6.0)
        nn.init.uniform_(self.input.bias, -5.0, -4.0)

    def forward(self, h: Tensor, theta: Tensor, grad: Tensor, f_prev: Tensor, i_prev: Tensor):
        f = torch.sigmoid(self.forget(torch.cat([h, theta[:, None], f_prev[:, None]], 1))).squeeze(1)
        i = torch.sigmoid(self.input(torch.cat([h, theta[:, None], i_prev[:, None]], 1))).squeeze(1)
        return f * theta - i * grad, f, i


@METHODS.register("metalstm")
class MetaLSTM(GradientLearner):
    paper_preset = "paper-metalstm"
    # Its inner loop feeds detached gradients through LSTM cells: run per task, not under vmap.
    vmappable = False

    def __init__(self, encoder: nn.Module, inner_steps: int = 5, test_steps: int = 5, hidden: int = 20, **options):
        super().__init__(encoder, inner_steps=inner_steps, test_steps=test_steps, **options)
        self.reader = nn.LSTMCell(4, hidden)
        self.writer = MetaLSTMCell(hidden)

    def inner_loop(self, params: Params, support: Tensor, labels: Tensor, steps: int) -> Params:
        names = list(params)
        shapes = [params[k].shape for k in names]
        sizes = [s.numel() for s in shapes]
        unflatten = lambda flat: {k: v.view(s) for k, v, s in zip(names, flat.split(sizes), shapes)}
        theta = torch.cat([params[k].reshape(-1) for k in names])
        loss_of = lambda p: self.inner_loss(self.f(unflatten(p["theta"]), support), labels)
        state, f_prev, i_prev = None, torch.zeros_like(theta), torch.zeros_like(theta)
        for _ in range(steps):
            # The gradient and loss are inputs to the meta-learner: no second derivatives.
            grads, loss = gradient_and_value(loss_of, {"theta": theta.detach()}, create_graph=False)
            grad, loss = grads["theta"], loss.detach()
            inputs = torch.cat([preprocess(grad), preprocess(loss).expand(theta.numel(), 2)], 1)
            state = self.reader(inputs, state)
            theta, f_prev, i_prev = self.writer(state[0], theta, grad, f_prev, i_prev)
        return unflatten(theta)
