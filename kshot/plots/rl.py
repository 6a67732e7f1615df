"""Meta-RL figure: trajectories on a few new tasks before and after 1 and 3 policy-gradient steps,
and the average return against steps with 95% intervals, one line per initialisation."""

from __future__ import annotations

from pathlib import Path

from ..rl.evaluate import AdaptationResult


def plot_adaptation(family: str, results: dict[str, AdaptationResult], out: str | Path, shown: str) -> None:
    """`shown`: the label whose example trajectories are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    example = results[shown]
    stages = [s for s in (0, 1, 3) if s < example.returns.shape[1]]
    n = min(3, len(example.examples))
    fig, axes = plt.subplots(1, n + 1, figsize=(4 * (n + 1), 3.8), dpi=110)
    for ax, task, kept in zip(axes[:n], example.tasks, example.examples):
        for stage, color in zip(stages, ("C7", "C1", "C2")):
            batch = kept[stage]
            for j in range(2):  # two trajectories per stage
                steps = int(batch.mask[j].sum())
                label = f"after {stage} step{'s' if stage != 1 else ''}" if j == 0 else None
                if family == "navigation-2d":
                    ax.plot(batch.obs[j, :steps, 0], batch.obs[j, :steps, 1], color=color, lw=1, label=label)
                else:
                    ax.plot(batch.obs[j, :steps, 1], color=color, lw=1, label=label)
        if family == "navigation-2d":
            ax.plot(*task, "k*", ms=12, label="goal")
            ax.plot(0, 0, "ko", ms=4)
            ax.set_xlim(-0.7, 0.7), ax.set_ylim(-0.7, 0.7), ax.set_aspect("equal")
            ax.set_title(f"goal ({task[0]:.2f}, {task[1]:.2f})", fontsize=9)
        else:
            ax.axhline(task[0], color="k", ls="--", lw=1, label="goal velocity")
            ax.set_xlabel("step"), ax.set_ylabel("velocity")
            ax.set_title(f"goal velocity {task[0]:.2f}", fontsize=9)
        ax.legend(fontsize=7)
    curve = axes[n]
    for label, r in results.items():
        means, cis = zip(*r.summary())
        curve.errorbar(range(len(means)), means, yerr=cis, marker="o", capsize=3, label=label)
    curve.set_xlabel("policy-gradient steps on the new task")
    curve.set_ylabel("average return (95% interval over tasks)")
    curve.set_xticks(range(example.returns.shape[1]))
    curve.grid(alpha=0.3)
    curve.legend(fontsize=8)
    # The trajectories' policy is named once here: in each panel's title it overran its neighbours.
    fig.suptitle(f"{family}: adaptation to new tasks (trajectories: {shown})", fontsize=11)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
