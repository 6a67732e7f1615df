"""Few-shot methods, one file each, looked up by name in METHODS. Every module of this package
is imported here, so a new file with `@METHODS.register("name")` needs no other edit."""

from ..registry import import_submodules
from .base import Classifier, Learner, MetricLearner, PrototypeLearner, SemiSupervisedLearner, SequenceLearner
from .registry import METHODS

import_submodules(__name__, __path__)

__all__ = [
    "METHODS",
    "Classifier",
    "Learner",
    "MetricLearner",
    "PrototypeLearner",
    "SemiSupervisedLearner",
    "SequenceLearner",
]
