"""A 2x2 max-pool for channels-last maps on the CPU, through kshot's C kernel (pool2x2.c).

Conv-4's first block pools 64-channel 28x28 (or 84x84) maps. PyTorch's pool spends most of its
time on memory traffic there: int64 indices, and a backward pass that zero-fills the input
gradient before scattering into it (22% of a bf16 Matching Networks step, BENCHMARKS.md). The
kernel keeps one byte per output and writes the gradient in one pass: 7x faster for a bf16 batch
of 100 such maps on one thread. Values and gradients are bit-identical to `F.max_pool2d(x, 2)`,
to any order (the pool's gradient is a scatter by the stored choice, and that scatter's gradient
is the matching gather). Anywhere else (other devices or dtypes, odd sizes, other layouts, under
torch.func transforms, or without a C compiler) `max_pool_2x2` is `F.max_pool2d(x, 2)`."""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Function

from .. import native

SOURCE = Path(__file__).with_name("pool2x2.c")
# Outputs per thread below which another OpenMP thread is not worth waking: about 15 µs of
# pooling on this CPU (0.2 ns an output). An order of magnitude, not a tuned figure.
OUTPUTS_PER_THREAD = 65536
_ARGS = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p) + (ctypes.c_int64,) * 3 + (ctypes.c_int, ctypes.c_int)


def library() -> ctypes.CDLL | None:
    lib = native.load(SOURCE)
    if lib is not None and lib.kshot_pool2x2.argtypes is None:
        for fn in (lib.kshot_pool2x2, lib.kshot_scatter2x2, lib.kshot_gather2x2):
            fn.argtypes, fn.restype = _ARGS, None
    return lib


def in_transform(x: Tensor) -> bool:
    """Inside torch.func (vmap, grad): tensors there have no plain storage to hand to C."""
    functorch = torch._C._functorch
    return functorch.peek_interpreter_stack() is not None or functorch.is_functorch_wrapped_tensor(x)


def fused_applies(x: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and x.dim() == 4
        and x.shape[2] % 2 == 0
        and x.shape[3] % 2 == 0
        and x.numel() > 0
        and not in_transform(x)
        and x.is_contiguous(memory_format=torch.channels_last)
        and library() is not None
    )


def _call(kernel, first: Tensor, second: Tensor, third: Tensor, full_shape: torch.Size) -> None:
    """Run a kernel over [N, C, H, W] = full_shape (the pool's input shape), rows = N*H/2."""
    n, c, h, w = full_shape
    rows = n * h // 2
    threads = min(torch.get_num_threads(), 1 + rows * (w // 2) * c // OUTPUTS_PER_THREAD)
    kernel(first.data_ptr(), second.data_ptr(), third.data_ptr(), rows, w, c, first.element_size(), threads)


def _pooled_empty(like: Tensor, full_shape: torch.Size) -> Tensor:
    n, c, h, w = full_shape
    return torch.empty((n, c, h // 2, w // 2), dtype=like.dtype, memory_format=torch.channels_last)


def _channels_last(t: Tensor) -> Tensor:
    return t.contiguous(memory_format=torch.channels_last)


class _Pool(Function):
    @staticmethod
    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        out = _pooled_empty(x, x.shape)
        n, c, h, w = x.shape
        choice = torch.empty((n, h // 2, w // 2, c), dtype=torch.uint8)  # which pixel of each window won
        _call(library().kshot_pool2x2, x, out, choice, x.shape)
        return out, choice

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])
        ctx.full_shape = inputs[0].shape

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_choice) -> Tensor:
        (choice,) = ctx.saved_tensors
        return _Scatter.apply(grad_out, choice, ctx.full_shape)


class _ByChoice(Function):
    """A linear map of (tensor, choice, pool input shape); its gradient is its partner map."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.full_shape = inputs[2]

    @staticmethod
    def partner_of(ctx, grad: Tensor, partner: type[Function]):
        (choice,) = ctx.saved_tensors
        return partner.apply(grad, choice, ctx.full_shape), None, None


class _Scatter(_ByChoice):
    """Each window's gradient onto the pixel that won it, zero elsewhere."""

    @staticmethod
    def forward(g: Tensor, choice: Tensor, full_shape: torch.Size) -> Tensor:
        g = _channels_last(g)
        gx = torch.empty(full_shape, dtype=g.dtype, memory_format=torch.channels_last)
        _call(library().kshot_scatter2x2, g, choice, gx, full_shape)
        return gx

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _ByChoice.partner_of(ctx, grad, _Gather)


class _Gather(_ByChoice):
    """The value at each window's winning pixel (the scatter's gradient)."""

    @staticmethod
    def forward(gx: Tensor, choice: Tensor, full_shape: torch.Size) -> Tensor:
        gx = _channels_last(gx)
        g = _pooled_empty(gx, full_shape)
        _call(library().kshot_gather2x2, gx, choice, g, full_shape)
        return g

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _ByChoice.partner_of(ctx, grad, _Scatter)


def max_pool_2x2(x: Tensor) -> Tensor:
    """F.max_pool2d(x, 2), through the C kernel where it applies."""
    return _Pool.apply(x)[0] if fused_applies(x) else F.max_pool2d(x, 2)


class MaxPool2x2(nn.MaxPool2d):
    """nn.MaxPool2d(2) (same module, no state) whose forward pass uses `max_pool_2x2`."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: Tensor) -> Tensor:
        return max_pool_2x2(x)
