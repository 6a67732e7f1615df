"""A class-indexed data set held in memory as one tensor, so that sampling is indexing."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import DataError


def image_floats(images: Tensor, normalize: list[list[float]] | None = None) -> Tensor:
    """uint8 images [n, C, H, W] -> float in [0, 1], standardised per channel with `normalize`
    ([mean per channel, std per channel]) where a data set (and so its models) uses it."""
    x = images.float().div_(255.0)
    if normalize is not None:
        mean, std = (torch.tensor(v).view(-1, 1, 1) for v in normalize)
        x = x.sub_(mean).div_(std)
    return x


@dataclass
class ClassIndexedDataset:
    """Items sorted by class: class `c` owns rows `offsets[c]:offsets[c+1]` of `items`.

    `items` is uint8 [n, C, H, W] for images (converted to float in [0, 1] on access, then
    standardised per channel when `meta["normalize"]` holds [mean per channel, std per channel],
    the training split's statistics) or float [n, D] for feature vectors. `name` says where it
    came from (for messages).
    """

    items: Tensor
    offsets: Tensor
    class_names: list[str]
    name: str = "dataset"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.offsets.numel() != len(self.class_names) + 1:
            raise ValueError("offsets must have one entry per class plus one")
        if int(self.offsets[-1]) != self.items.shape[0]:
            raise ValueError("offsets do not cover the items")

    @classmethod
    def from_class_list(cls, per_class: list[Tensor], class_names: list[str], name: str, meta: dict | None = None):
        sizes = torch.tensor([len(t) for t in per_class], dtype=torch.long)
        offsets = torch.zeros(len(per_class) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(sizes, 0)
        return cls(torch.cat(per_class), offsets, list(class_names), name, meta or {})

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_sizes(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def labels(self) -> Tensor:
        return torch.repeat_interleave(torch.arange(self.num_classes), self.class_sizes)

    def __len__(self) -> int:
        return self.items.shape[0]

    def fetch(self, index: Tensor) -> Tensor:
        """Items at `index` as float (images scaled to [0, 1], then standardised if the data set says so)."""
        x = self.items[index]
        return image_floats(x, self.meta.get("normalize")) if x.dtype == torch.uint8 else x

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        label = int(torch.searchsorted(self.offsets, torch.tensor(int(i)), right=True)) - 1
        return self.fetch(torch.tensor([i]))[0], label

    def class_items(self, c: int) -> Tensor:
        return self.fetch(torch.arange(int(self.offsets[c]), int(self.offsets[c + 1])))

    def subset(self, classes: list[int], name: str | None = None) -> ClassIndexedDataset:
        parts = [self.items[int(self.offsets[c]) : int(self.offsets[c + 1])] for c in classes]
        return ClassIndexedDataset.from_class_list(
            parts, [self.class_names[c] for c in classes], name or self.name, dict(self.meta)
        )

    def with_rotations(self, turns: int) -> ClassIndexedDataset:
        """Each class and its rotations by 360/turns degrees, each rotation a class of its own
        (named class/rot090, ...): a character turned on its side is another character."""
        if self.items.dim() != 4:
            raise DataError(f"{self.name} holds feature vectors, not images: rotations do not apply")
        parts, names = [], []
        for c, name in enumerate(self.class_names):
            items = self.items[int(self.offsets[c]) : int(self.offsets[c + 1])]
            for k in range(turns):
                parts.append(torch.rot90(items, k * 4 // turns, dims=(-2, -1)))
                names.append(name if k == 0 else f"{name}/rot{k * 360 // turns:03d}")
        return ClassIndexedDataset.from_class_list(parts, names, f"{self.name} with rotations", dict(self.meta))

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.items.shape[1:])
