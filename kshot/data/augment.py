"""Training augmentations, applied to a batch of training images with a seeded generator, so a
resumed run sees the same augmented images:

- "standard", of mini-ImageNet few-shot work: random crop with zero padding, horizontal flip,
  colour jitter (brightness, contrast, saturation);
- "affine", Koch et al. 2015's small distortions for characters: rotation within 10 degrees,
  shear within 0.3, scale within 0.8-1.2 per axis, translation within 2 pixels, each drawn per
  image (the paper applies each with probability 1/2; here every image gets one draw)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = ("none", "standard", "affine")
JITTER = 0.4  # brightness, contrast and saturation factors drawn from [1 - JITTER, 1 + JITTER]
GREY = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 luma weights


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Each image shifted by up to `padding` pixels each way, the uncovered border zero."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


def colour_jitter(x: Tensor, generator: torch.Generator) -> Tensor:
    """x in [0, 1], [n, 3, H, W]: brightness, contrast and saturation scaled per image."""
    n = x.shape[0]
    factor = lambda: (1 + JITTER * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)).to(x.dtype)
    x = x * factor()
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    grey = (x * GREY.to(x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = (x - grey) * factor() + grey
    return x.clamp(0, 1)


def affine_distort(x: Tensor, generator: torch.Generator) -> Tensor:
    """Each image of [n, C, H, W] under its own small random affine map; the border pixels fill
    what moves into view (the background of a character)."""
    n, _, h, w = x.shape
    u = lambda low, high: low + (high - low) * torch.rand(n, generator=generator, dtype=x.dtype)
    angle, shear_x, shear_y = u(-10, 10) * math.pi / 180, u(-0.3, 0.3), u(-0.3, 0.3)
    scale_x, scale_y = u(0.8, 1.2), u(0.8, 1.2)
    shift_x, shift_y = u(-2, 2) * 2 / w, u(-2, 2) * 2 / h  # pixels in the [-1, 1] grid's units
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    shear = torch.stack(
        [torch.stack([torch.ones_like(cos), shear_x], 1), torch.stack([shear_y, torch.ones_like(cos)], 1)], 1
    )
    linear = rotate @ shear @ torch.diag_embed(torch.stack([scale_x, scale_y], 1))
    theta = torch.cat([linear, torch.stack([shift_x, shift_y], 1).unsqueeze(2)], 2)  # [n, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def augment(
    x: Tensor, generator: torch.Generator, normalize: list[list[float]] | None = None, kind: str = "standard"
) -> Tensor:
    """A batch of images as the data set fetched them (standardised with `normalize`, if given)."""
    if kind == "affine":
        return affine_distort(x, generator)
    if normalize is not None:
        mean, std = (torch.tensor(v, dtype=x.dtype).view(1, -1, 1, 1) for v in normalize)
        x = x * std + mean
    if x.shape[1] == 3:
        x = colour_jitter(x, generator)
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if normalize is not None:
        x = (x - mean) / std  # the padding below is then the mean colour, as a zero of the standardised data
    return random_crop(x, max(1, x.shape[-1] // 10), generator)
