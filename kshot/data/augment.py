"""The standard training augmentation of mini-ImageNet few-shot work: random crop with zero padding,
horizontal flip, colour jitter (brightness, contrast, saturation). Applied to a batch of training
images with a seeded generator, so a resumed run sees the same augmented images."""

from __future__ import annotations

import torch
from torch import Tensor

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


def augment(x: Tensor, generator: torch.Generator, normalize: list[list[float]] | None = None) -> Tensor:
    """A batch of images as the data set fetched them (standardised with `normalize`, if given)."""
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
