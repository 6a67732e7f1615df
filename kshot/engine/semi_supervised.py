"""Evaluation on semi-supervised episodes (data/semi_supervised.py): every image is embedded
once, then each episode refines its prototypes with its unlabelled items. A metric learner
that cannot use unlabelled items is scored on the same episodes without them (the supervised
baseline), so rows of different methods share their episodes."""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from ..data.dataset import ClassIndexedDataset
from ..data.semi_supervised import SemiSupervisedSampler
from ..errors import ConfigError
from ..learners import Learner, MetricLearner, SemiSupervisedLearner
from .evaluator import EvalResult, embed_all, summarize


@torch.no_grad()
def evaluate_semi_supervised(
    learner: Learner,
    dataset: ClassIndexedDataset,
    way: int,
    shot: int,
    query: int,
    unlabelled: int,
    distractors: int = 0,
    episodes: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> EvalResult:
    if not isinstance(learner, MetricLearner):
        raise ConfigError(f"semi-supervised episodes are scored for metric learners; {learner.method} is not one")
    sampler = SemiSupervisedSampler(dataset, way, shot, query, unlabelled, distractors, 1.0, seed)
    was_training = learner.training
    learner.eval()
    start = time.perf_counter()
    features = embed_all(learner, dataset)
    labels = torch.arange(way, device=features.device)
    s_labels, q_labels = labels.repeat_interleave(shot), labels.repeat_interleave(query)
    accs = torch.empty(episodes)
    desc = f"eval {way}-way {shot}-shot, {unlabelled} unlabelled, {distractors} distractors"
    for i in tqdm(range(episodes), desc=desc, disable=not progress, leave=False):
        d = sampler.draw(i)
        support = features[torch.from_numpy(d.support.reshape(-1))]
        if isinstance(learner, SemiSupervisedLearner):
            head = learner.head_with_unlabelled(support, s_labels, way, features[torch.from_numpy(d.unlabelled)])
        else:
            head = learner.head(support, s_labels, way)
        logits = head(features[torch.from_numpy(d.query.reshape(-1))])
        accs[i] = (logits.argmax(1) == q_labels).float().mean()
    learner.train(was_training)
    return summarize(accs, time.perf_counter() - start)
