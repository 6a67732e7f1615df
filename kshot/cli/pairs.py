"""`kshot pairs`: the Siamese verification experiment on balanced pairs."""
from __future__ import annotations

from .common import EPILOG, append_row

def add_pairs_parser(sub) -> None:
    p = sub.add_parser("pairs", help="train a Siamese twin network on balanced same/different pairs",
                       description="The Siamese verification experiment: a fully connected twin network "
                                   "(784-128-128-128, L1 distance, sigmoid) trained with binary cross-entropy on "
                                   "balanced same/different MNIST pairs; reports pair accuracy on test pairs.",
                       epilog=EPILOG)
    p.add_argument("--dataset", default="mnist", help="mnist (default) or omniglot")
    p.add_argument("--data-dir")
    p.add_argument("--steps", type=int, default=10000, help="training steps (default 10000)")
    p.add_argument("--batch", type=int, default=128, help="pairs per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--test-pairs", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the trained twin network here (.safetensors)")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--record", metavar="JSONL")
    p.add_argument("--quiet", action="store_true")


def cmd_pairs(args) -> int:
    import torch

    from ..data import load_dataset
    from ..engine import checkpoint
    from ..engine.build import build_learner, learner_meta
    from ..engine.pairs import pair_accuracy, train_pairs

    load = lambda split: load_dataset(args.dataset, split, "vinyals", args.data_dir, 28, not args.no_download)
    train, test = load("train"), load("test")
    torch.manual_seed(args.seed)
    backbone_args = {"in_features": 784, "hidden": [128, 128], "out_features": 128, "dropout": 0.1}
    net = build_learner("siamese", "mlp", backbone_args, {"dim": 128})
    seconds = train_pairs(net, train, args.steps, args.batch, args.lr, args.seed, progress=not args.quiet)
    acc, ci = pair_accuracy(net, test, args.test_pairs, seed=args.seed + 1)
    print(f"siamese pair accuracy on {args.test_pairs} balanced {args.dataset} test pairs: {acc:.2f} +- {ci:.2f}%")
    if args.out:
        meta = learner_meta("siamese", "mlp", backbone_args, {"dim": 128}) | {
            "kind": "model", "data": {"dataset": args.dataset, "image_size": 28, "channels": 1},
            "train_seconds": round(seconds, 1), "pair_accuracy": acc}
        checkpoint.save(args.out, {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    if args.record:
        row = {"method": "siamese", "backbone": "mlp", "dataset": args.dataset, "protocol": "balanced pairs",
               "metric": "pair_accuracy", "episodes": args.test_pairs, "accuracy": round(acc, 3), "ci95": round(ci, 3),
               "train_seconds": round(seconds, 1), "checkpoint": args.out}
        append_row(args.record, row, args.argv)
    return 0
