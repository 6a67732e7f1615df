"""Accuracy by instance (Santoro et al.'s Figure 3 and Table 1): one line per model, with the
paper's Table 1 figures beside them."""

from __future__ import annotations

from pathlib import Path

from ..engine.instances import InstanceResult

# Santoro et al. 2016, Table 1: Omniglot, five classes, one-hot labels, test-set accuracy (%) at
# the 1st, 2nd, 3rd, 4th, 5th and 10th instance.
PAPER_TABLE_1 = {
    "MANN": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},
    "LSTM": {1: 24.4, 2: 49.5, 3: 55.3, 4: 61.0, 5: 63.6, 10: 62.5},
}


def plot_instances(results: dict[str, InstanceResult], out: str | Path, paper: bool = True) -> None:
    """results: a label per model (e.g. "MANN", "LSTM") -> its instance accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for i, (label, r) in enumerate(results.items()):
        ks = sorted(r.accuracy)
        color = f"C{i}"
        ax.errorbar(
            ks,
            [r.accuracy[k] for k in ks],
            yerr=[r.ci95[k] for k in ks],
            color=color,
            marker="o",
            markersize=4,
            capsize=2,
            label=f"{label} (kshot, {r.episodes} test episodes)",
        )
        if paper and label in PAPER_TABLE_1:
            ref = PAPER_TABLE_1[label]
            ax.plot(
                list(ref),
                list(ref.values()),
                color=color,
                linestyle="--",
                marker="s",
                markerfacecolor="none",
                label=f"{label} (Santoro et al. 2016, Table 1)",
            )
    way = next(iter(results.values())).way
    ax.axhline(100 / way, color="grey", linewidth=0.8, linestyle=":", label=f"chance ({100 / way:.0f}%)")
    ax.set_xlabel("instance (how many times the class has been shown, this one included)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Omniglot, {way} classes per episode, one-hot labels")
    ax.set_ylim(0, 100)
    ax.set_xticks(range(1, max(max(r.accuracy) for r in results.values()) + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
