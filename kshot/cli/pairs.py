"""`kshot pairs`: the Siamese verification experiment on balanced pairs."""

from __future__ import annotations

import shutil
from pathlib import Path

from .common import EPILOG, append_row


def add_pairs_parser(sub) -> None:
    p = sub.add_parser(
        "pairs",
        help="train a Siamese twin network on balanced same/different pairs",
        description="The Siamese verification experiment: a fully connected twin network "
        "(784-128-128-128, L1 distance, sigmoid) trained with binary cross-entropy on "
        "balanced same/different MNIST pairs; reports pair accuracy on test pairs.",
        epilog=EPILOG,
    )
    p.add_argument("--dataset", default="mnist", help="mnist (default) or omniglot")
    p.add_argument("--data-dir")
    p.add_argument("--steps", type=int, default=10000, help="training steps (default 10000)")
    p.add_argument("--batch", type=int, default=128, help="pairs per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--test-pairs", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        required=True,
        help="run directory (resumable with --resume); a FILE.safetensors gets the trained model, "
        "its run directory beside it as FILE.run",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--record", metavar="JSONL")
    p.add_argument("--quiet", action="store_true")


def cmd_pairs(args) -> int:
    import torch

    from ..data import load_dataset
    from ..engine.build import build_learner, learner_meta
    from ..engine.config import TrainConfig
    from ..engine.pairs import Pairs, pair_accuracy
    from ..engine.trainer import Trainer
    from ..errors import KshotError

    out = Path(args.out)
    run_dir = out.with_suffix(".run") if out.suffix == ".safetensors" else out
    if (run_dir / "last.safetensors").exists() and not args.resume:
        raise KshotError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    load = lambda split: load_dataset(args.dataset, split, "vinyals", args.data_dir, 28, not args.no_download)
    train, test = load("train"), load("test")
    torch.manual_seed(args.seed)
    backbone_args = {"in_features": 784, "hidden": [128, 128], "out_features": 128, "dropout": 0.1}
    net = build_learner("siamese", "mlp", backbone_args, {}, input_shape=[1, 28, 28])
    settings = TrainConfig(
        method="siamese",
        backbone="mlp",
        backbone_args=backbone_args,
        dataset=args.dataset,
        episodes=args.steps,
        meta_batch=args.batch,
        lr=args.lr,
        lr_step=10**9,
        val_split=None,
        log_every=500,
        seed=args.seed,
    )
    meta = learner_meta("siamese", "mlp", backbone_args, {}) | {
        "data": {"dataset": args.dataset, "image_size": 28, "channels": 1}
    }
    trainer = Trainer(
        net, Pairs(train, args.steps, args.batch, args.seed), None, settings, run_dir, meta, progress=not args.quiet
    )
    trainer.resume()
    seconds = trainer.train()["train_seconds"]
    acc, ci = pair_accuracy(net, test, args.test_pairs, seed=args.seed + 1)
    print(f"siamese pair accuracy on {args.test_pairs} balanced {args.dataset} test pairs: {acc:.2f} +- {ci:.2f}%")
    if out.suffix == ".safetensors":
        shutil.copyfile(run_dir / "best.safetensors", out)
        shutil.copyfile(run_dir / "best.json", out.with_suffix(".json"))
    if args.record:
        row = {
            "method": "siamese",
            "backbone": "mlp",
            "dataset": args.dataset,
            "protocol": "balanced pairs",
            "metric": "pair_accuracy",
            "episodes": args.test_pairs,
            "accuracy": round(acc, 3),
            "ci95": round(ci, 3),
            "train_seconds": round(seconds, 1),
            "checkpoint": str(out if out.suffix == ".safetensors" else run_dir / "best.safetensors"),
        }
        append_row(args.record, row, args.argv)
    return 0
