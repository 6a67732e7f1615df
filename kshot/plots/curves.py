"""Accuracy against ways and against shots, with 95% intervals, one line per model."""

from __future__ import annotations

from pathlib import Path

from ..engine.curves import CurvePoint


def plot_curves(models: dict[str, list[CurvePoint]], out: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, (by_way, by_shot) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for i, (label, points) in enumerate(models.items()):
        for ax, curve, x_of in ((by_way, "ways", lambda p: p.way), (by_shot, "shots", lambda p: p.shot)):
            pts = sorted((p for p in points if p.curve == curve), key=x_of)
            if pts:
                ax.errorbar(
                    [x_of(p) for p in pts],
                    [p.accuracy for p in pts],
                    yerr=[p.ci95 for p in pts],
                    color=f"C{i}",
                    marker="o",
                    markersize=4,
                    capsize=3,
                    label=f"{label} ({pts[0].shot}-shot)" if curve == "ways" else f"{label} ({pts[0].way}-way)",
                )
    for ax, name in ((by_way, "classes per episode (ways)"), (by_shot, "labelled examples per class (shots)")):
        ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("accuracy (%), 95% interval")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ticks = sorted({p.way for ps in models.values() for p in ps if p.curve == "ways"})
    by_way.set_xticks(ticks, [str(t) for t in ticks])
    ticks = sorted({p.shot for ps in models.values() for p in ps if p.curve == "shots"})
    by_shot.set_xticks(ticks, [str(t) for t in ticks])
    for ax in (by_way, by_shot):  # only the measured points are labelled, not log-scale minor ticks
        ax.xaxis.set_minor_formatter(NullFormatter())
    by_way.set_title("more classes")
    by_shot.set_title("more examples")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
