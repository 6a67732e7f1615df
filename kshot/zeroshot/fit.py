"""Fitting the text-prototype maps on the training classes' frozen features, selecting on the
validation classes; and the ridge baseline's penalty, selected the same way."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .evaluate import FeatureSet, evaluate_prototypes
from .model import RidgeBaseline, TextPrototypes


@dataclass
class FitSettings:
    way: int = 20  # classes per training episode
    query: int = 10  # query images per class; one more per class is the hybrid's support
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.1  # 64 training classes are few examples for a map from text (0.1 chosen on val)
    dim: int = 512
    val_every: int = 250
    val_episodes: int = 300
    seed: int = 0


def class_means_of(data: FeatureSet) -> torch.Tensor:
    starts = torch.cat([torch.zeros(1, dtype=torch.long), data.class_sizes.cumsum(0)])
    return torch.stack([data.features[a:b].mean(0) for a, b in zip(starts[:-1], starts[1:])])


def fit_text_prototypes(train: FeatureSet, val: FeatureSet, s: FitSettings) -> tuple[TextPrototypes, list[dict]]:
    """Each step: `way` training classes, zero-shot loss on their queries plus the loss of the
    text-prior prototypes with one support image each (so lambda is learned). The model with the
    best validation zero-shot accuracy is kept."""
    torch.manual_seed(s.seed)
    model = TextPrototypes(train.features.shape[1], train.texts.shape[1], s.dim)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    starts = np.concatenate([[0], np.cumsum(train.class_sizes.numpy())])
    way = min(s.way, len(train.class_sizes))
    labels = torch.arange(way)
    best, best_acc, log = copy.deepcopy(model), -1.0, []
    for step in range(1, s.steps + 1):
        rng = np.random.default_rng([s.seed, step])
        classes = rng.choice(len(train.class_sizes), way, replace=False)
        picks = np.stack(
            [starts[c] + rng.choice(starts[c + 1] - starts[c], s.query + 1, replace=False) for c in classes]
        )
        support = train.features[torch.from_numpy(picks[:, 0])]
        query = train.features[torch.from_numpy(picks[:, 1:].reshape(-1))]
        q_labels = labels.repeat_interleave(s.query)
        texts = train.texts[torch.from_numpy(classes)]
        zero_shot = F.cross_entropy(model.logits(query, model.prototypes(texts)), q_labels)
        hybrid = F.cross_entropy(model.logits(query, model.prototypes(texts, support, labels)), q_labels)
        opt.zero_grad()
        (zero_shot + hybrid).backward()
        opt.step()
        if step % s.val_every == 0 or step == s.steps:
            acc = evaluate_prototypes(model, val, "text", episodes=s.val_episodes, seed=s.seed + 1).accuracy
            log.append({"step": step, "loss": zero_shot.item(), "hybrid_loss": hybrid.item(), "val_zero_shot": acc})
            if acc > best_acc:
                best, best_acc = copy.deepcopy(model), acc
    return best.eval(), log


def fit_ridge(train: FeatureSet, val: FeatureSet, alphas=(0.01, 0.1, 1.0, 10.0, 100.0)) -> tuple[RidgeBaseline, dict]:
    """The ridge penalty with the best validation zero-shot accuracy."""
    means = class_means_of(train)
    scores = {
        alpha: evaluate_prototypes(
            RidgeBaseline.fit(train.texts, means, alpha), val, "ridge", episodes=300, seed=1
        ).accuracy
        for alpha in alphas
    }
    alpha = max(scores, key=scores.get)
    return RidgeBaseline.fit(train.texts, means, alpha), {"alpha": alpha, "val_zero_shot_by_alpha": scores}
