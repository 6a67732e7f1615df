"""BatchNorm of a convolution over few input channels, folded into the convolution's weights.

A convolution is linear in its input patches: channel c's output is w_c . p + b_c. Its batch
mean is therefore w_c . mu + b_c and its (biased) batch variance w_c' S w_c, where mu and S are
the mean and covariance of the input's patches (padding included). With those, BatchNorm(conv(x))
is one convolution with weights w_c * g_c / sqrt(var_c + eps) and a matching bias: the same
function, differentiable the same way (first and second order), without the normalisation's
forward and backward passes over the full-resolution output.

It pays where the patch is short: Conv-4's first block on 1- or 3-channel images (9 or 27 values
per patch, against 64 output channels), whose 28x28 or 84x84 maps make normalisation the largest
single cost of a training step (see BENCHMARKS.md, "Speed and scale").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .norm import TaskBatchNorm2d, statistics_rows

MAX_PATCH_LENGTH = 27  # a 3x3 patch of an RGB image; longer patches make the covariance costly


def foldable(conv: nn.Module, norm: nn.Module) -> bool:
    """Whether `norm(conv(x))` can be computed as one convolution by `conv_norm`."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, (nn.BatchNorm2d, TaskBatchNorm2d)):
        return False
    patch = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    return (
        patch <= MAX_PATCH_LENGTH
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and norm.weight is not None
        and norm.bias is not None
    )


def patch_moments(x: Tensor, conv: nn.Conv2d) -> tuple[Tensor, Tensor, int]:
    """Mean [D] and biased covariance [D, D] of the patches the convolution sees, and their count."""
    patches = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # [N, D, L]
    rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    mean = rows.mean(0)
    centred = rows - mean
    return mean, centred.T @ centred / rows.shape[0], rows.shape[0]


def conv_norm(
    conv: nn.Conv2d, norm: nn.BatchNorm2d | TaskBatchNorm2d, x: Tensor, channels_last: bool = False
) -> Tensor:
    """norm(conv(x)), computed as one convolution (requires `foldable(conv, norm)`); with
    `channels_last`, its output is laid out channels-last even where x (one channel) is ambiguous."""
    w = conv.weight.flatten(1)  # [C_out, D]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.bias)
    batch_statistics = isinstance(norm, TaskBatchNorm2d) or norm.training or not norm.track_running_stats
    if batch_statistics:
        rows = statistics_rows(x) if isinstance(norm, TaskBatchNorm2d) else x
        mean_patch, cov, count = patch_moments(rows, conv)
        centre = w @ mean_patch + bias
        var = ((w @ cov) * w).sum(1)
        if isinstance(norm, nn.BatchNorm2d) and norm.training and norm.track_running_stats:
            update_running_statistics(norm, centre.detach(), var.detach(), count)
    else:
        centre, var = norm.running_mean, norm.running_var
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    if channels_last:
        weight = channels_last_weight(weight)
    return F.conv2d(x, weight, norm.bias + (bias - centre) * scale, conv.stride, conv.padding, conv.dilation)


def channels_last_weight(weight: Tensor) -> Tensor:
    """The weight laid out channels-last, so that the convolution's output is too. A one-channel
    weight's strides fit both layouts, and the convolution then picks the default one for its
    output (and the max-pool after it runs 12x slower on 28x28 maps): its channel stride is set."""
    weight = weight.contiguous(memory_format=torch.channels_last)
    if weight.shape[1] == 1 and weight.stride(1) != 1:
        weight = weight.as_strided(weight.shape, (weight.stride(0), 1, weight.stride(2), weight.stride(3)))
    return weight


@torch.no_grad()
def update_running_statistics(norm: nn.BatchNorm2d, mean: Tensor, var: Tensor, count: int) -> None:
    """What nn.BatchNorm2d does in training: an exponential (or, with momentum None, cumulative)
    average of the batch mean and of the unbiased batch variance."""
    norm.num_batches_tracked.add_(1)
    momentum = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
    norm.running_mean.lerp_(mean, momentum)
    norm.running_var.lerp_(var * count / max(count - 1, 1), momentum)
