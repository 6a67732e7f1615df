"""`kshot eval`: accuracy of a checkpoint on seeded test episodes."""

from __future__ import annotations

import sys

from ..errors import ConfigError
from .common import EPILOG, append_row, checkpoint_data, checkpoint_row, key_values


def add_eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on test episodes (mean accuracy and 95%% CI)",
        description="Evaluate a trained checkpoint on seeded test episodes of the data it was "
        "trained on (or another split / data set).",
        epilog=EPILOG,
    )
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run directory (uses its best)")
    p.add_argument("--way", type=int, help="classes per episode (default 5, or fewer where the split has fewer)")
    p.add_argument("--shot", type=int, default=1)
    p.add_argument(
        "--query", type=int, help="queries per class (default 15, or fewer where the test classes are smaller)"
    )
    p.add_argument("--episodes", type=int, default=1000, help="test episodes (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--dataset", help="default: the checkpoint's")
    p.add_argument("--protocol", help="default: the checkpoint's")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument(
        "--no-feature-reuse",
        action="store_true",
        help="re-embed images in every episode (slower; for timing comparisons)",
    )
    p.add_argument(
        "--method-arg",
        action="append",
        metavar="K=V",
        help="override a test-time option of the checkpoint's method, e.g. test_steps=10 "
        "(MAML family) or test_batch=5 (Reptile); options that change weights are refused",
    )
    p.add_argument(
        "--unlabelled",
        type=int,
        metavar="M",
        help="semi-supervised episodes: M unlabelled items per class beside the support (Ren et al. 2018); "
        "a semi-supervised model refines its prototypes with them, any other metric model ignores them",
    )
    p.add_argument(
        "--distractors", type=int, default=0, help="with --unlabelled: classes that add only unlabelled items"
    )
    p.add_argument(
        "--within-alphabet",
        action="store_true",
        help="draw each episode's classes from one alphabet (Lake et al.'s within-alphabet one-shot challenge; "
        "with --protocol lake --way 20 --shot 1)",
    )
    p.add_argument("--threads", type=int)
    p.add_argument("--device", help="where to compute: cpu (default), cuda, cuda:N or mps")
    p.add_argument("--record", metavar="JSONL", help="append the result as one JSON line to this file")
    p.add_argument(
        "--open-set",
        action="store_true",
        help="measure a store made with the model instead: per round, --way people (default half the split) "
        "enrolled with --shot photos, the others strangers; strangers accepted and enrolled photos identified "
        "at the model's calibrated threshold (or --threshold), over --episodes rounds",
    )
    p.add_argument("--threshold", type=float, help="with --open-set: a raw score threshold instead of the model's")
    p.add_argument("--quiet", action="store_true")


def cmd_eval(args) -> int:
    from ..engine.build import load_learner
    from ..engine.devices import resolve_device
    from ..engine.evaluator import evaluate
    from ..engine.fit import fit_episode

    overrides = key_values(args.method_arg, "--method-arg")
    device = resolve_device(args.device)
    learner, meta = load_learner(args.checkpoint, method_overrides=overrides)
    learner.to(device)
    dataset, protocol, test = checkpoint_data(
        meta, args.split, args.dataset, args.protocol, args.data_dir, not args.no_download
    )
    if args.open_set:
        from .open_set import eval_open_set

        return eval_open_set(args, learner, meta, dataset, protocol, test)
    given = {flag for flag, value in (("--way", args.way), ("--query", args.query)) if value is not None}
    way, query, notes = fit_episode(
        test, args.way or 5, args.shot, args.query or 15, ("--way", "--shot", "--query"), {"--way", "--query"} - given
    )
    if args.unlabelled and args.query is None:  # the unlabelled items come out of the same classes
        query = min(query, int(test.class_sizes.min()) - args.shot - args.unlabelled)
        notes.append(f"--query set to {query}: each class also gives {args.unlabelled} unlabelled items")
    args.way, args.query = way, query
    for note in notes:
        print(f"kshot eval: {note}", file=sys.stderr)
    if args.unlabelled is not None and args.within_alphabet:
        raise ConfigError("--within-alphabet and --unlabelled cannot be combined; drop one")
    if args.unlabelled is not None:
        from ..engine.semi_supervised import evaluate_semi_supervised

        result = evaluate_semi_supervised(
            learner,
            test,
            args.way,
            args.shot,
            args.query,
            args.unlabelled,
            args.distractors,
            args.episodes,
            args.seed,
            progress=not args.quiet,
        )
    else:
        result = evaluate(
            learner,
            test,
            args.way,
            args.shot,
            args.query,
            args.episodes,
            args.seed,
            reuse_features=not args.no_feature_reuse,
            progress=not args.quiet,
            within_groups=args.within_alphabet,
        )
    semi = {"unlabelled": args.unlabelled, "distractors": args.distractors} if args.unlabelled is not None else {}
    row = {
        **checkpoint_row(meta, dataset, protocol, args),
        "way": args.way,
        "shot": args.shot,
        "query": args.query,
        "episodes": result.episodes,
        "accuracy": round(result.accuracy, 3),
        "ci95": round(result.ci95, 3),
        "eval_seconds": round(result.seconds, 2),
        "train_episodes": meta.get("episode"),
        **semi,
        **({"within_alphabet": True, "error_rate": round(100 - result.accuracy, 3)} if args.within_alphabet else {}),
        **({"method_overrides": overrides} if overrides else {}),
        **({"device": str(device)} if device.type != "cpu" else {}),
    }
    extra = f", {args.unlabelled} unlabelled, {args.distractors} distractor classes" if semi else ""
    extra += ", classes within one alphabet" if args.within_alphabet else ""
    print(f"{meta['method']} {dataset}/{protocol}/{args.split} {args.way}-way {args.shot}-shot{extra}: {result}")
    if args.record:
        append_row(args.record, row, args.argv)
    return 0
