"""The raw image as a vector: the input of Santoro et al.'s memory-augmented network, which reads
flattened 20x20 pixels straight into its controller."""

from __future__ import annotations

from torch import nn

from .registry import BACKBONES


@BACKBONES.register("pixels")
def pixels(in_channels: int | None = None, norm: str = "none", channels_last: bool = False) -> nn.Flatten:
    # The options every backbone takes are accepted and have nothing to set: the width is the
    # image's, which learners read with kshot.nets.output_features.
    return nn.Flatten()
