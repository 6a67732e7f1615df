"""Few-shot methods, one file each, looked up by name in METHODS."""
from .base import Classifier, Learner, MetricLearner
from .registry import METHODS
from . import protonet  # noqa: F401  (registers "protonet")

__all__ = ["METHODS", "Classifier", "Learner", "MetricLearner"]
