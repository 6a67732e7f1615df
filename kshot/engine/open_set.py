"""Open-set calibration: when should an enrolled-class store answer "unknown"?

On classes held out from training, episodes mimic a store: `enrolled` classes with `shot`
examples each, queried with other photos of those classes (genuine) and with photos of
`strangers` (classes not enrolled). The best score a stranger reaches is what a threshold must
stay above: the threshold is the (1 - far) quantile of the strangers' best scores, so about
`far` of strangers are accepted. A logistic fit of "is a genuine, correctly matched photo"
against the best score turns raw scores (minus squared distances, log-attention, ...) into a
confidence in [0, 1] a person can read; the threshold is shown on the same scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..data.dataset import ClassIndexedDataset
from ..errors import DataError
from ..learners import MetricLearner
from .evaluator import embed_all, mean_ci95


@dataclass
class OpenSetCalibration:
    threshold: float  # raw score: accept a match at or above it
    far: float  # the false-accept rate it was set for
    slope: float  # confidence = sigmoid(slope * score + intercept)
    intercept: float
    measured_far: float  # on the calibration episodes
    measured_accept: float  # genuine photos matched correctly and accepted
    rounds: int
    shot: int
    classes: int  # held-out classes it was measured on
    data: str

    def confidence(self, score: float) -> float:
        z = self.slope * score + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def score_at(self, confidence: float) -> float:
        """The raw score whose confidence is `confidence` (in (0, 1)): the inverse of `confidence`."""
        if not 0 < confidence < 1:
            raise DataError(f"a confidence threshold must be between 0 and 1, not {confidence}")
        return (math.log(confidence / (1 - confidence)) - self.intercept) / self.slope

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> OpenSetCalibration:
        return cls(**values)


def best_scores(
    learner: MetricLearner, features: torch.Tensor, enrolled: list[np.ndarray], queries: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(best score, index of the best enrolled class) of each query against the enrolled classes,
    each given by the row indices of its examples."""
    support = torch.cat([features[torch.from_numpy(rows)] for rows in enrolled])
    labels = torch.cat([torch.full((len(rows),), c, device=support.device) for c, rows in enumerate(enrolled)])
    with torch.no_grad():
        scores = learner.head(support, labels, len(enrolled))(features[torch.from_numpy(queries)])
    best, index = scores.max(1)
    return best.cpu(), index.cpu()  # the calibration fits them on the CPU, wherever the learner ran


@dataclass
class StoreEpisodes:
    """Best scores of store-like episodes: genuine queries (with whether the best class was right)
    and strangers', concatenated over rounds, plus each round's slice bounds for per-round rates."""

    genuine: torch.Tensor
    correct: torch.Tensor
    strangers: torch.Tensor
    genuine_rounds: list[int]
    stranger_rounds: list[int]

    def strangers_accepted(self, threshold: float) -> torch.Tensor:
        """1.0 where a stranger's best score reaches the threshold (given a name), else 0.0."""
        return (self.strangers >= threshold).double()

    def identified(self, threshold: float) -> torch.Tensor:
        """1.0 where a genuine photo's best class is right and accepted at the threshold, else 0.0."""
        return ((self.genuine >= threshold) & self.correct).double()


def store_episodes(
    learner: MetricLearner, dataset: ClassIndexedDataset, shot: int, enrolled: int, rounds: int, seed: int
) -> StoreEpisodes:
    """Per round: `enrolled` classes with `shot` examples each, queried with their other images and
    with every image of as many other (stranger) classes."""
    n_enrolled = min(enrolled, dataset.num_classes // 2)
    sizes = dataset.class_sizes.numpy()
    if n_enrolled < 2 or (sizes < shot + 1).any():
        raise DataError(f"{dataset.name}: open-set episodes need at least 4 classes with {shot + 1}+ images each")
    learner.eval()
    features = embed_all(learner, dataset)
    starts = dataset.offsets[:-1].numpy()
    genuine, correct, strangers = [], [], []
    for r in range(rounds):
        rng = np.random.default_rng([seed, r])
        classes = rng.permutation(dataset.num_classes)[: 2 * n_enrolled]
        picks = [starts[c] + rng.permutation(sizes[c]) for c in classes[:n_enrolled]]
        support = [p[:shot] for p in picks]
        best, which = best_scores(learner, features, support, np.concatenate([p[shot:] for p in picks]))
        truth = np.concatenate([np.full(len(p) - shot, i) for i, p in enumerate(picks)])
        genuine.append(best)
        correct.append(torch.from_numpy(which.numpy() == truth))
        stranger_rows = np.concatenate([starts[c] + np.arange(sizes[c]) for c in classes[n_enrolled:]])
        strangers.append(best_scores(learner, features, support, stranger_rows)[0])
    return StoreEpisodes(
        torch.cat(genuine).double(),
        torch.cat(correct),
        torch.cat(strangers).double(),
        [len(g) for g in genuine],
        [len(s) for s in strangers],
    )


def calibrate(
    learner: MetricLearner,
    dataset: ClassIndexedDataset,
    far: float = 0.01,
    shot: int = 1,
    enrolled: int = 10,
    rounds: int = 200,
    seed: int = 0,
) -> OpenSetCalibration:
    """Threshold and confidence scale from `rounds` seeded store-like episodes on `dataset`, whose
    classes the learner never trained on. Half the drawn classes are enrolled, half are strangers."""
    if not 0 < far < 1:
        raise DataError(f"the false-accept rate must be between 0 and 1, not {far}")
    e = store_episodes(learner, dataset, shot, enrolled, rounds, seed)
    threshold = float(torch.quantile(e.strangers, 1 - far))
    slope, intercept = fit_logistic(e.genuine[e.correct], e.strangers)
    return OpenSetCalibration(
        threshold=threshold,
        far=far,
        slope=slope,
        intercept=intercept,
        measured_far=float(e.strangers_accepted(threshold).mean()),
        measured_accept=float(e.identified(threshold).mean()),
        rounds=rounds,
        shot=shot,
        classes=dataset.num_classes,
        data=dataset.name,
    )


@dataclass
class OpenSetResult:
    false_accept: float  # percent of strangers given a name
    false_accept_ci95: float
    identified: float  # percent of enrolled people's photos given their own name
    identified_ci95: float
    rounds: int


def measure(
    learner: MetricLearner,
    dataset: ClassIndexedDataset,
    threshold: float,
    shot: int = 1,
    enrolled: int = 10,
    rounds: int = 1000,
    seed: int = 0,
) -> OpenSetResult:
    """False accepts and correct identifications at `threshold`, as percentages with 95% intervals
    over `rounds` seeded store-like episodes (one rate per round)."""
    e = store_episodes(learner, dataset, shot, enrolled, rounds, seed)
    per_round = lambda values, sizes: torch.stack([part.mean() for part in values.split(sizes)])
    false_accept, far_ci = mean_ci95(100 * per_round(e.strangers_accepted(threshold), e.stranger_rounds))
    identified, id_ci = mean_ci95(100 * per_round(e.identified(threshold), e.genuine_rounds))
    return OpenSetResult(false_accept, far_ci, identified, id_ci, rounds)


def fit_logistic(positives: torch.Tensor, negatives: torch.Tensor, steps: int = 200) -> tuple[float, float]:
    """(slope, intercept) of P(positive | score) by class-balanced logistic regression (L-BFGS)."""
    x = torch.cat([positives, negatives])
    y = torch.cat([torch.ones_like(positives), torch.zeros_like(negatives)])
    weight = torch.where(y == 1, 0.5 / len(positives), 0.5 / len(negatives))
    centre, spread = x.mean(), x.std().clamp_min(1e-12)
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = params[0] * (x - centre) / spread + params[1]
        loss = (weight * torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")).sum()
        loss = loss + 1e-4 * params[0] ** 2  # keeps the slope finite when the two sets separate perfectly
        loss.backward()
        return loss

    opt.step(closure)
    a, b = params.detach().tolist()
    return a / float(spread), b - a * float(centre) / float(spread)
