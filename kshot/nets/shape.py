"""The one place that asks a backbone what it outputs: learners size their layers from this."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def output_shape(encoder: nn.Module, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the encoder's output for one input of `input_shape` ([C, H, W], or [D]).
    Probed in eval mode on two zero inputs, without gradients; the encoder's mode is restored."""
    was_training = encoder.training
    try:
        with torch.no_grad():
            out = encoder.eval()(torch.zeros(2, *input_shape))
    finally:
        encoder.train(was_training)
    return tuple(out.shape[1:])


def output_features(encoder: nn.Module, input_shape: Sequence[int]) -> int:
    """Width of the encoder's flattened output for one input of `input_shape`."""
    return int(torch.Size(output_shape(encoder, input_shape)).numel())
