"""`kshot eval --open-set`: how a store made with a model treats strangers and enrolled people."""

from __future__ import annotations

from .common import append_row, checkpoint_row


def eval_open_set(args, learner, meta: dict, dataset: str, protocol: str, test) -> int:
    from ..engine.open_set import measure
    from ..errors import KshotError
    from ..learners import MetricLearner

    if not isinstance(learner, MetricLearner):
        raise KshotError(f"--open-set needs a metric learner whose embeddings a store keeps, not {meta['method']}")
    threshold = args.threshold if args.threshold is not None else meta.get("open_set", {}).get("threshold")
    if threshold is None:
        raise KshotError(
            f"{args.checkpoint} has no calibrated threshold (it trained without validation classes); "
            "give one with --threshold"
        )
    enrolled = args.way or test.num_classes // 2
    r = measure(learner, test, threshold, args.shot, enrolled, args.episodes, args.seed)
    print(
        f"{meta['method']} {dataset}/{args.split}, {enrolled} people enrolled with {args.shot} photo(s), "
        f"the rest strangers, threshold {threshold:.4g}: strangers accepted {r.false_accept:.2f} +- "
        f"{r.false_accept_ci95:.2f}%, enrolled photos identified {r.identified:.2f} +- {r.identified_ci95:.2f}% "
        f"({r.rounds} rounds)"
    )
    if args.record:
        row = {
            **checkpoint_row(meta, dataset, protocol, args),
            "metric": "open_set",
            "way": enrolled,
            "shot": args.shot,
            "query": "all others",
            "episodes": r.rounds,
            "accuracy": round(r.identified, 3),
            "ci95": round(r.identified_ci95, 3),
            "false_accept": round(r.false_accept, 3),
            "false_accept_ci95": round(r.false_accept_ci95, 3),
            "threshold": threshold,
        }
        append_row(args.record, row, args.argv)
    return 0
