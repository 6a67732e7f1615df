"""Few-shot regression: the sine-wave task family of the MAML paper."""
from .sinusoid import SinusoidTasks
from .meta import RegressionRun, evaluate_adaptation, train_regressor

__all__ = ["SinusoidTasks", "RegressionRun", "evaluate_adaptation", "train_regressor"]
