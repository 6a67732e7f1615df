"""t-SNE of test-class embeddings, like the Omniglot figure of the Prototypical Networks paper.

The classes are a few characters of one alphabet (unrotated); each image is
classified by the learner's own head against `shot` support images per class,
and misclassified points are marked.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.dataset import ClassIndexedDataset
from ..errors import KshotError
from ..learners import MetricLearner


def pick_classes(dataset: ClassIndexedDataset, alphabet: str | None, count: int) -> list[int]:
    names = dataset.class_names
    unrotated = [i for i, n in enumerate(names) if not n.endswith(("rot090", "rot180", "rot270"))]
    if alphabet is None:  # the first alphabet with enough characters
        counts: dict[str, int] = {}
        for i in unrotated:
            a = names[i].split("/")[0]
            counts[a] = counts.get(a, 0) + 1
        alphabet = next((a for a, n in counts.items() if n >= count), max(counts, key=counts.get))
    chosen = [i for i in unrotated if names[i].split("/")[0] == alphabet][:count]
    if len(chosen) < 2:
        alphabets = sorted({names[i].split("/")[0] for i in unrotated})
        raise KshotError(
            f"alphabet {alphabet!r} has fewer than 2 classes here; choose one of: {', '.join(alphabets[:30])}"
        )
    return chosen


@torch.no_grad()
def plot_tsne(
    learner: MetricLearner,
    dataset: ClassIndexedDataset,
    out: str | Path,
    alphabet: str | None = None,
    classes: int = 10,
    shot: int = 5,
    seed: int = 0,
) -> dict:
    """Write the PNG; return counts of points and misclassified points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    if not isinstance(learner, MetricLearner):
        raise KshotError(f"{learner.method} has no fixed embedding to draw; t-SNE plots are for metric learners")
    learner.eval()
    ids = pick_classes(dataset, alphabet, classes)
    subset = dataset.subset(ids)
    features = learner.embed(subset.fetch(torch.arange(len(subset))))
    labels = subset.labels
    way = len(ids)
    support = torch.cat([torch.arange(int(subset.offsets[c]), int(subset.offsets[c]) + shot) for c in range(way)])
    pred = learner.head(features[support], labels[support], way)(features).argmax(1)
    wrong = pred != labels
    flat = features.flatten(1).double().numpy()
    points = TSNE(n_components=2, perplexity=min(30, len(flat) - 1), init="pca", random_state=seed).fit_transform(flat)
    fig, ax = plt.subplots(figsize=(7, 7))
    cmap = plt.get_cmap("tab10" if way <= 10 else "tab20")
    for c in range(way):
        m = (labels == c).numpy()
        ax.scatter(points[m, 0], points[m, 1], s=22, color=cmap(c % cmap.N), label=subset.class_names[c].split("/")[1])
    w = wrong.numpy()
    ax.scatter(
        points[w, 0],
        points[w, 1],
        s=90,
        facecolors="none",
        edgecolors="black",
        linewidths=1.5,
        label=f"misclassified ({int(w.sum())})",
    )
    ax.set_title(f"{learner.method}: t-SNE of {subset.class_names[0].split('/')[0]} ({way} characters), {shot}-shot")
    ax.legend(fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {"points": len(flat), "misclassified": int(w.sum()), "classes": way}
