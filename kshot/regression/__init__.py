"""Few-shot regression: the sine-wave task family of the MAML paper."""

from .meta import RegressionRun, evaluate_adaptation, train_regressor
from .sinusoid import SinusoidTasks

__all__ = ["SinusoidTasks", "RegressionRun", "evaluate_adaptation", "train_regressor"]
