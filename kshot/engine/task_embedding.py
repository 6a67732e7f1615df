"""Task embeddings: a whole task (a group of classes, such as one Omniglot alphabet) as one vector.

The vector is the first and second moments of the task's images under a fixed probe network (a
trained metric learner): the mean and the per-dimension standard deviation of their L2-normalised
embeddings. Task2Vec (Achille et al. 2019) uses the diagonal Fisher information of a probe
fine-tuned on each task instead; the moments need one forward pass per image and no training per
task, which keeps embedding fifty alphabets a matter of seconds on a CPU, and the Fisher's
diagonal is itself a second-moment statistic of the probe's gradients. Similarity is the cosine of
the task vectors after the mean over all embedded tasks is removed (uncentred, every pair of tasks
under one probe looks alike).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.dataset import ClassIndexedDataset
from ..learners import MetricLearner


def class_groups(dataset: ClassIndexedDataset, group_size: int | None = None) -> dict[str, list[int]]:
    """Classes grouped into tasks: by the part of the class name before "/" (an Omniglot alphabet),
    or, with `group_size`, consecutive blocks of that many classes (mini-ImageNet's class groups)."""
    groups: dict[str, list[int]] = {}
    for c, name in enumerate(dataset.class_names):
        key = f"classes {c // group_size * group_size}-" if group_size else name.split("/")[0]
        groups.setdefault(key, []).append(c)
    if group_size:
        groups = {f"{k}{v[-1]}": v for k, v in groups.items()}
    return groups


@torch.no_grad()
def task_vector(probe: MetricLearner, images: Tensor, batch: int = 500) -> Tensor:
    """images [n, ...] of one task -> [2 * dim]: mean and std of their normalised embeddings."""
    probe.eval()
    z = torch.cat(
        [F.normalize(probe.embed(images[i : i + batch]).flatten(1), dim=1) for i in range(0, len(images), batch)]
    )
    return torch.cat([z.mean(0), z.std(0)])


def embed_tasks(probe: MetricLearner, dataset: ClassIndexedDataset, groups: dict[str, list[int]]) -> dict[str, Tensor]:
    return {
        name: task_vector(probe, torch.cat([dataset.class_items(c) for c in classes]))
        for name, classes in groups.items()
    }


def similarity(vectors: dict[str, Tensor], centre: Tensor | None = None) -> Tensor:
    """[tasks, tasks] cosine similarity of the task vectors less `centre` (default: their mean)."""
    v = torch.stack(list(vectors.values()))
    v = v - (v.mean(0) if centre is None else centre)
    v = F.normalize(v, dim=1)
    return v @ v.T
