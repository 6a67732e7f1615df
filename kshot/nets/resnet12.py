"""ResNet-12, the deeper backbone of the metric-learning literature (Oreshkin et al. 2018, Lee et al.
2019, Tian et al. 2020): four residual blocks of widths 64-160-320-640, each three 3x3
convolutions with BatchNorm and LeakyReLU(0.1), a 1x1 convolution on the shortcut, then 2x2
max-pooling; DropBlock (Ghiasi et al. 2018) optional. The output is the global average of the last
maps (640 features), or the maps themselves with `flatten=False` (Relation Networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .norm import norm_layer
from .pool2x2 import MaxPool2x2
from .registry import BACKBONES


class DropBlock(nn.Module):
    """Drops square blocks of a feature map in training and rescales what is left."""

    def __init__(self, drop_rate: float, block_size: int):
        super().__init__()
        self.drop_rate, self.block_size = drop_rate, block_size

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_rate == 0:
            return x
        size = x.shape[-1]
        block = min(self.block_size, size)
        # Seed rate such that about `drop_rate` of the units end up dropped (Ghiasi et al., eq. 1).
        gamma = self.drop_rate / block**2 * size**2 / (size - block + 1) ** 2
        seeds = (torch.rand_like(x) < gamma).to(x.dtype)
        dropped = F.max_pool2d(seeds, block, stride=1, padding=block // 2)[..., :size, :size]
        keep = 1 - dropped
        return x * keep * keep.numel() / keep.sum().clamp_min(1)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, norm: str, pool: bool, drop: nn.Module):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False)]
            layers += [norm_layer(norm, out_channels)]
            if i < 2:
                layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), norm_layer(norm, out_channels)
        )
        self.pool = MaxPool2x2() if pool else nn.Identity()
        self.drop = drop

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.pool(F.leaky_relu(self.body(x) + self.shortcut(x), 0.1)))


class ResNet12(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 160, 320, 640),
        pooled_blocks: int | None = None,
        flatten: bool = True,
        norm: str = "batch",
        drop_rate: float = 0.0,
        drop_block: int = 5,
        channels_last: bool = True,
    ):
        super().__init__()
        pooled = len(widths) if pooled_blocks is None else pooled_blocks
        blocks, previous = [], in_channels
        for i, width in enumerate(widths):
            # DropBlock on the last two blocks, as in Lee et al.'s and Tian et al.'s code.
            drop = DropBlock(drop_rate, drop_block) if drop_rate and i >= len(widths) - 2 else nn.Identity()
            blocks.append(ResidualBlock(previous, width, norm, i < pooled, drop))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.flatten = flatten
        self.num_features = previous
        self.channels_last = channels_last
        if channels_last:  # as Conv-4: oneDNN convolutions without layout conversions
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        z = self.blocks(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)
        return z.mean((2, 3)) if self.flatten else z


@BACKBONES.register("resnet12")
def resnet12(in_channels: int = 3, widths: list[int] | None = None, **kw) -> ResNet12:
    return ResNet12(in_channels, tuple(widths or (64, 160, 320, 640)), **kw)
