"""`kshot tasks`: embed many tasks (groups of classes) with a trained model and draw their similarity."""

from __future__ import annotations

import json

from ..errors import KshotError
from .common import EPILOG, checkpoint_data


def add_tasks_parser(sub) -> None:
    p = sub.add_parser(
        "tasks",
        help="embed tasks (Omniglot alphabets, groups of classes) and draw their similarity",
        description="Represent each task (the classes of one Omniglot alphabet, or --group-size consecutive "
        "classes) as the mean and spread of its images' embeddings under a trained metric model, and draw "
        "the cosine similarity of those vectors.",
        epilog=EPILOG,
    )
    p.add_argument("checkpoint", help="the probe: a metric model's .safetensors checkpoint")
    p.add_argument("--dataset", help="default: the checkpoint's")
    p.add_argument("--protocol", help="default: the checkpoint's (omniglot lake: alphabets of the split)")
    p.add_argument("--split", default="test")
    p.add_argument("--group-size", type=int, help="tasks of this many consecutive classes (default: by alphabet)")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--out", default="tasks.png", help="PNG to write (default tasks.png)")
    p.add_argument("--json", help="JSON of the task names and similarities (default: the PNG's name with .json)")


def cmd_tasks(args) -> int:
    from ..engine.build import load_learner
    from ..engine.task_embedding import class_groups, embed_tasks, similarity
    from ..learners import MetricLearner
    from ..plots.tasks import plot_similarity

    probe, meta = load_learner(args.checkpoint)
    if not isinstance(probe, MetricLearner):
        raise KshotError(f"{args.checkpoint}: a {meta['method']} model has no per-image embedding; use a metric model")
    if args.group_size is not None and args.group_size < 1:
        raise KshotError("--group-size must be at least 1")
    dataset, protocol, data = checkpoint_data(
        meta, args.split, args.dataset, args.protocol, args.data_dir, not args.no_download
    )
    groups = class_groups(data, args.group_size)
    if len(groups) < 2:
        raise KshotError(
            f"{data.name} makes {len(groups)} task; group its classes with --group-size N (or pick a split with "
            "several alphabets)"
        )
    vectors = embed_tasks(probe, data, groups)
    sim = similarity(vectors)
    names = list(vectors)
    plot_similarity(
        names, sim, args.out, f"{dataset}/{protocol}/{args.split}: {len(names)} tasks, probe {meta['method']}"
    )
    json_path = args.json or str(args.out).rsplit(".", 1)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump({"tasks": names, "classes": [len(groups[n]) for n in names], "similarity": sim.tolist()}, f)
    print(f"wrote {args.out} and {json_path}: {len(names)} tasks")
    return 0
