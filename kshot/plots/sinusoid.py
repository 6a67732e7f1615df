"""The MAML paper's figure 2: on a held-out sine wave, the curves of the meta-learned and
the pretrained regressor after 1 and 10 gradient steps on K points, against the truth."""

from __future__ import annotations

from pathlib import Path

import torch

from ..learners.gradient import GradientLearner
from ..regression.sinusoid import SinusoidTasks


def adapted_curve(learner: GradientLearner, sx, sy, grid, steps: int):
    params = {k: v.detach() for k, v in learner.f.params().items()}
    return learner.f(learner.inner_loop(params, sx, sy, steps), grid).detach().squeeze(1)


def plot_sinusoid(models: dict[int, dict[str, GradientLearner]], path: str | Path, seed: int = 777) -> Path:
    """`models[K][kind]`, kind "maml" or "pretrained": one panel per K, one held-out task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = sorted(models)
    fig, axes = plt.subplots(len(shots), 2, figsize=(10, 3.2 * len(shots)), squeeze=False)
    grid = torch.linspace(-5, 5, 200).unsqueeze(1)
    for row, k in enumerate(shots):
        b = SinusoidTasks(seed).batch(k, 1, k, 0)
        truth = SinusoidTasks.curve(b.amplitude, b.phase, grid.unsqueeze(0))[0, :, 0]
        for col, kind in enumerate(("maml", "pretrained")):
            ax = axes[row, col]
            ax.plot(grid[:, 0], truth, color="black", lw=2, label="ground truth")
            for steps, style in ((0, ":"), (1, "--"), (10, "-")):
                curve = adapted_curve(models[k][kind], b.support_x[0], b.support_y[0], grid, steps)
                ax.plot(grid[:, 0], curve, style, label=f"after {steps} step{'s' if steps != 1 else ''}")
            ax.scatter(
                b.support_x[0, :, 0],
                b.support_y[0, :, 0],
                marker="^",
                color="crimson",
                zorder=3,
                label=f"{k} points used for gradient",
            )
            ax.set_title(f"{'MAML' if kind == 'maml' else 'pretrained, fine-tuned'}, K={k}")
            ax.set_ylim(-6, 6)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
