"""`kshot instances`: Santoro et al.'s sequential protocol, accuracy by instance."""

from __future__ import annotations

from ..errors import KshotError
from .common import EPILOG, append_row, checkpoint_data, checkpoint_row


def add_instances_parser(sub) -> None:
    p = sub.add_parser(
        "instances",
        help="accuracy by instance on labelled sequences (memory-augmented networks)",
        description="Score sequence models (method mann) as Santoro et al. 2016 do: each test episode is a "
        "shuffled sequence of --instances examples of each of --way classes, every step predicted before its "
        "label is shown at the next step; accuracy is reported by how many times the class has been seen.",
        epilog=EPILOG,
    )
    p.add_argument("checkpoint", nargs="+", help="one or more .safetensors checkpoints (or run directories)")
    p.add_argument("--label", action="append", help="a name per checkpoint for the table and figure")
    p.add_argument("--instances", type=int, default=10, help="examples of each class per sequence (default 10)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="draw accuracy by instance, beside the paper's Table 1")
    p.add_argument("--record", metavar="JSONL", help="append a row per reported instance to this file")
    p.add_argument("--quiet", action="store_true")


def cmd_instances(args) -> int:
    from ..engine.build import load_learner
    from ..engine.instances import REPORTED_INSTANCES, evaluate_instances
    from ..learners import SequenceLearner

    labels = args.label or []
    if labels and len(labels) != len(args.checkpoint):
        raise KshotError(f"give one --label per checkpoint ({len(args.checkpoint)}), or none")
    if args.instances < 1:
        raise KshotError("--instances must be at least 1")
    results, rows = {}, []
    for i, path in enumerate(args.checkpoint):
        learner, meta = load_learner(path)
        if not isinstance(learner, SequenceLearner):
            raise KshotError(
                f"{path}: method {meta['method']!r} does not read labelled sequences; "
                "`kshot instances` scores sequence models such as mann (use `kshot eval` for this one)"
            )
        dataset, protocol, test = checkpoint_data(
            meta, args.split, data_dir=args.data_dir, allow_download=not args.no_download
        )
        result = evaluate_instances(
            learner, test, learner.way, args.instances, args.episodes, args.seed, progress=not args.quiet
        )
        label = labels[i] if labels else path
        results[label] = result
        print(f"{label}: {result.table()}  ({result.episodes} episodes, {result.seconds:.0f} s)")
        base = checkpoint_row(meta, dataset, protocol, args) | {"checkpoint": str(path)}
        for k in (k for k in REPORTED_INSTANCES if k <= args.instances):
            rows.append(
                base
                | {
                    "model": label,
                    "evaluation": "sequence",
                    "instance": k,
                    "way": result.way,
                    "shot": k - 1,  # labelled examples of the class shown before this step
                    "query": 1,
                    "instances": args.instances,
                    "episodes": result.episodes,
                    "accuracy": round(result.accuracy[k], 3),
                    "ci95": round(result.ci95[k], 3),
                    "eval_seconds": round(result.seconds, 2),
                    "train_episodes": meta.get("episode"),
                }
            )
    if args.plot:
        from ..plots.instances import plot_instances

        plot_instances(results, args.plot)
        print(f"wrote {args.plot}")
    if args.record:
        for row in rows:
            append_row(args.record, row, args.argv)
    return 0
