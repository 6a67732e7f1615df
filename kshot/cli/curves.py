"""`kshot curves`: accuracy against ways and against shots, to a PNG and a JSON file."""

from __future__ import annotations

import json

from ..errors import KshotError
from .common import EPILOG, append_row, checkpoint_data, checkpoint_row


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise KshotError(f"expected numbers separated by commas, like 5,10,20, not {text!r}") from None
    if not values or min(values) < 1:
        raise KshotError(f"expected positive numbers, not {text!r}")
    return values


def add_curves_parser(sub) -> None:
    p = sub.add_parser(
        "curves",
        help="accuracy against the number of ways and of shots (PNG + JSON)",
        description="Evaluate checkpoints at many ways (with --way-shot shots) and many shots (at --shot-way "
        "ways) on the test classes, and draw both curves with their 95%% intervals.",
        epilog=EPILOG,
    )
    p.add_argument("checkpoint", nargs="+", help="one or more .safetensors checkpoints")
    p.add_argument("--label", action="append", help="a name per checkpoint for the legend")
    p.add_argument("--ways", default="5,10,20,50,100", help="ways to measure (default 5,10,20,50,100)")
    p.add_argument("--shots", default="1,2,5,10,20", help="shots to measure (default 1,2,5,10,20)")
    p.add_argument("--way-shot", type=int, default=1, help="shots of the ways curve (default 1)")
    p.add_argument("--shot-way", type=int, default=5, help="ways of the shots curve (default 5)")
    p.add_argument("--episodes", type=int, default=1000, help="test episodes per point (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    p.add_argument("--json", help="JSON file of the points (default: the PNG's name with .json)")
    p.add_argument("--title", default="")
    p.add_argument("--record", metavar="JSONL", help="append a row per point to this file")


def cmd_curves(args) -> int:
    from ..engine.build import load_learner
    from ..engine.curves import curve_points, points_json
    from ..plots.curves import plot_curves

    ways, shots = int_list(args.ways), int_list(args.shots)
    labels = args.label or []
    if labels and len(labels) != len(args.checkpoint):
        raise KshotError(f"give one --label per checkpoint ({len(args.checkpoint)}), or none")
    models, report, rows = {}, [], []
    for i, path in enumerate(args.checkpoint):
        learner, meta = load_learner(path)
        dataset, protocol, test = checkpoint_data(
            meta, args.split, data_dir=args.data_dir, allow_download=not args.no_download
        )
        points, notes = curve_points(learner, test, ways, shots, args.way_shot, args.shot_way, args.episodes, args.seed)
        label = labels[i] if labels else path
        models[label] = points
        for note in notes:
            print(f"{label}: {note}")
        for p in points:
            print(f"{label}: {p.way}-way {p.shot}-shot: {p.accuracy:.2f} +- {p.ci95:.2f}%")
        report.append(
            {
                "label": label,
                "checkpoint": str(path),
                "dataset": f"{dataset}/{protocol}/{args.split}",
                "points": points_json(points),
                "skipped": notes,
            }
        )
        base = checkpoint_row(meta, dataset, protocol, args) | {"checkpoint": str(path)}
        rows += [
            base
            | {
                "curve": p.curve,
                "way": p.way,
                "shot": p.shot,
                "query": p.query,
                "episodes": p.episodes,
                "accuracy": round(p.accuracy, 3),
                "ci95": round(p.ci95, 3),
                "train_episodes": meta.get("episode"),
            }
            for p in points
        ]
    plot_curves(models, args.out, args.title)
    json_path = args.json or str(args.out).rsplit(".", 1)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out} and {json_path}")
    if args.record:
        for row in rows:
            append_row(args.record, row, args.argv)
    return 0
