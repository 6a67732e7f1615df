"""Conv-4, the backbone of Matching/Prototypical/Relation Networks and MAML:
4 x [conv 3x3 (64 channels), BatchNorm, ReLU, max-pool 2].

`norm="batch"` keeps running statistics for test time (metric methods); `norm="task"`
always normalises with the statistics of the current batch, as MAML does (see norm.py)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .norm import norm_layer, vmapping
from .patch_moments import conv_norm, foldable
from .pool2x2 import MaxPool2x2
from .registry import BACKBONES


class ConvBlock(nn.Sequential):
    """conv, norm, [pool], ReLU. On few-channel inputs the first two run as one convolution
    (patch_moments.py); the modules, and so the checkpoints' keys, are those of the plain block."""

    def forward(self, x: Tensor, channels_last: bool = False) -> Tensor:
        conv, norm, *rest = self
        z = conv_norm(conv, norm, x, channels_last) if foldable(conv, norm) else norm(conv(x))
        for layer in rest:
            z = layer(z)
        return z


def conv_block(in_channels: int, out_channels: int, pool: bool = True, norm: str = "batch") -> ConvBlock:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1), norm_layer(norm, out_channels)]
    # Pooling before ReLU is exactly the same function (max-pool and ReLU commute, both
    # monotone) but runs ReLU and its backward on 4x fewer elements: ~15% faster on CPU.
    if pool:
        layers.append(MaxPool2x2())  # nn.MaxPool2d(2) through a C kernel where it applies
    layers.append(nn.ReLU(inplace=True))
    return ConvBlock(*layers)


class Conv4(nn.Module):
    def __init__(
        self,
        in_channels: int = 1,
        hidden: int = 64,
        out_channels: int = 64,
        depth: int = 4,
        pooled_blocks: int | None = None,
        flatten: bool = True,
        norm: str = "batch",
        channels_last: bool = True,
    ):
        super().__init__()
        pooled = depth if pooled_blocks is None else pooled_blocks
        widths = [in_channels] + [hidden] * (depth - 1) + [out_channels]
        self.blocks = nn.Sequential(
            *[conv_block(widths[i], widths[i + 1], pool=i < pooled, norm=norm) for i in range(depth)]
        )
        self.flatten = flatten
        self.num_features = out_channels  # channels of the output maps (the width when they are 1x1)
        # Channels-last runs the oneDNN convolutions without layout conversions (1.3-1.8x on CPU).
        # torch.func.vmap cannot query memory formats: under it (vmap_safe) the input keeps its layout.
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        channels_last = self.channels_last and not vmapping()
        z = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        for block in self.blocks:
            z = block(z, channels_last)
        return z.flatten(1) if self.flatten else z


@BACKBONES.register("conv4")
def conv4(in_channels: int = 1, hidden: int = 64, out_channels: int = 64, **kw) -> Conv4:
    return Conv4(in_channels, hidden, out_channels, **kw)
