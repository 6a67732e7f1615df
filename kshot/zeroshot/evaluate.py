"""Zero-shot and text-prior accuracy on seeded episodes of precomputed image features, with the
same episodes (EpisodeSampler) for every way of building prototypes, so rows compare like for like."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.sampler import EpisodeSampler
from ..engine.evaluator import EvalResult, summarize
from .model import RidgeBaseline, TextPrototypes

MODES = ("text", "hybrid", "images", "ridge")


@dataclass
class FeatureSet:
    """Image features sorted by class (class c owns a contiguous block), and one text vector a class."""

    features: Tensor  # [n, feature_dim]
    class_sizes: Tensor  # [classes]
    texts: Tensor  # [classes, text_dim]
    name: str = "features"

    @property
    def labels(self) -> Tensor:
        return torch.repeat_interleave(torch.arange(len(self.class_sizes)), self.class_sizes)


@torch.no_grad()
def evaluate_prototypes(
    model: TextPrototypes | RidgeBaseline,
    data: FeatureSet,
    mode: str,
    way: int = 5,
    shot: int = 0,
    query: int = 15,
    episodes: int = 1000,
    seed: int = 0,
) -> EvalResult:
    """mode: "text" (zero-shot, no support), "hybrid" (text prior + `shot` images), "images" (the
    `shot` images alone, in the learned space) or "ridge" (RidgeBaseline, zero-shot)."""
    sampler = EpisodeSampler(data.class_sizes, way, shot, query, episodes, seed, source=data.name)
    labels = torch.arange(way)
    s_labels, q_labels = labels.repeat_interleave(shot), labels.repeat_interleave(query)
    accs, start = torch.empty(episodes), time.perf_counter()
    for i in range(episodes):
        classes, idx = sampler.draw(i)
        idx = torch.from_numpy(idx)
        support, queries = data.features[idx[:, :shot].reshape(-1)], data.features[idx[:, shot:].reshape(-1)]
        texts = data.texts[torch.from_numpy(classes)]
        if mode in ("text", "ridge"):  # from the class texts alone: no image of these classes is read
            prototypes = model.prototypes(texts)
        elif mode == "hybrid":
            prototypes = model.prototypes(texts, support, s_labels)
        else:
            prototypes = model.image_prototypes(support, s_labels, way)
        accs[i] = (model.logits(queries, prototypes).argmax(1) == q_labels).float().mean()
    return summarize(accs, time.perf_counter() - start)
