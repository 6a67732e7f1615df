"""Accuracy curves of one model: against the number of ways (at a fixed shot) and against the
number of shots (at a fixed way), each point a seeded evaluation with its 95% interval. Points the
test classes cannot hold (more ways than classes, more shots than a class has images) are skipped
and said."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..data.dataset import ClassIndexedDataset
from ..learners import Learner, MetricLearner
from .evaluator import embed_all, evaluate

DEFAULT_WAYS = (5, 10, 20, 50, 100)
DEFAULT_SHOTS = (1, 2, 5, 10, 20)
QUERY = 15  # queries per class, fewer where a class is too small


@dataclass
class CurvePoint:
    curve: str  # "ways" or "shots"
    way: int
    shot: int
    query: int
    episodes: int
    accuracy: float
    ci95: float
    seconds: float


def curve_points(
    learner: Learner,
    dataset: ClassIndexedDataset,
    ways: tuple[int, ...],
    shots: tuple[int, ...],
    way_shot: int,
    shot_way: int,
    episodes: int,
    seed: int = 0,
) -> tuple[list[CurvePoint], list[str]]:
    """(points, notes): accuracy at each of `ways` with `way_shot` shots, and at each of `shots`
    with `shot_way` ways."""
    smallest, classes = int(dataset.class_sizes.min()), dataset.num_classes
    plan = [("ways", w, way_shot) for w in ways] + [("shots", shot_way, k) for k in shots]
    points, notes = [], []
    learner.eval()
    features = embed_all(learner, dataset) if isinstance(learner, MetricLearner) else None  # once for all points
    for curve, way, shot in plan:
        query = min(QUERY, smallest - shot)
        if way > classes or query < 1:
            reason = f"{classes} test classes" if way > classes else f"the smallest class has {smallest} images"
            notes.append(f"skipped {way}-way {shot}-shot: {reason}")
            continue
        r = evaluate(learner, dataset, way, shot, query, episodes, seed, progress=False, features=features)
        points.append(CurvePoint(curve, way, shot, query, r.episodes, r.accuracy, r.ci95, r.seconds))
    return points, notes


def points_json(points: list[CurvePoint]) -> list[dict]:
    return [asdict(p) for p in points]
