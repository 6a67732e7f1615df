"""Few-shot methods, one file each, looked up by name in METHODS."""
from .base import Classifier, Learner, MetricLearner
from .registry import METHODS
from . import maml, matching, meta_lstm, protonet, relation, reptile, siamese, triplet  # noqa: F401  (each registers itself)

__all__ = ["METHODS", "Classifier", "Learner", "MetricLearner"]
