"""A heatmap of task similarities, tasks ordered along the similarity's leading eigenvector so
that similar tasks sit together."""

from __future__ import annotations

from pathlib import Path

import torch


def similarity_order(sim: torch.Tensor) -> list[int]:
    _, vectors = torch.linalg.eigh(sim.double())
    return torch.argsort(vectors[:, -1]).tolist()


def plot_similarity(names: list[str], sim: torch.Tensor, out: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = similarity_order(sim)
    n = len(names)
    fig, ax = plt.subplots(figsize=(3 + 0.28 * n, 2.5 + 0.25 * n), dpi=120)
    image = ax.imshow(sim[order][:, order].numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [names[i].replace("_", " ") for i in order]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.7, label="cosine similarity of centred task vectors")
    ax.set_title(title or "task similarity", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
