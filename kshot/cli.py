"""The `kshot` command line: train, eval, datasets."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path

from .errors import KshotError

EPILOG = "Data directory: --data-dir, else $KSHOT_DATA, else ~/.kshot/data. Decoded caches: $KSHOT_CACHE, else ~/.cache/kshot."


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items: list[str] | None, flag: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise KshotError(f"{flag} takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = _parse_value(v)
    return out


def add_train_parser(sub) -> None:
    from .engine.config import TrainConfig

    p = sub.add_parser("train", help="meta-train a few-shot learner on episodes",
                       description="Meta-train a learner. Defaults follow Snell et al. (2017) on Omniglot "
                                   "(Vinyals split, 60-way 1-shot 5-query episodes, Adam 1e-3 halved every 2000 "
                                   "episodes). Flags override a --config file, which overrides the defaults.",
                       epilog=EPILOG)
    d = TrainConfig()
    p.add_argument("--out", required=True, help="run directory: checkpoints and log.jsonl go here")
    p.add_argument("--config", help="TOML or JSON file of settings (same names as the flags, with underscores)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors if it exists")
    p.add_argument("--method", help=f"few-shot method (default {d.method})")
    p.add_argument("--backbone", help=f"feature extractor (default {d.backbone})")
    p.add_argument("--method-arg", action="append", metavar="K=V", help="method option, e.g. distance=cosine")
    p.add_argument("--backbone-arg", action="append", metavar="K=V", help="backbone option, e.g. hidden=64")
    p.add_argument("--dataset", help=f"omniglot or folder (default {d.dataset})")
    p.add_argument("--protocol", help=f"omniglot split protocol: vinyals or lake (default {d.protocol})")
    p.add_argument("--data-dir", help="data directory (for folder: the folder of class folders)")
    p.add_argument("--no-download", action="store_true", help="never download missing data")
    for name, help_ in [("image_size", "images are resized to this square size"), ("channels", "1 grey, 3 RGB"),
                        ("way", "classes per training episode"), ("shot", "support examples per class"),
                        ("query", "query examples per class"), ("episodes", "training episodes in all"),
                        ("lr", "Adam learning rate"), ("lr_step", "multiply lr by lr_gamma every this many episodes"),
                        ("lr_gamma", "learning-rate decay factor"), ("val_way", "validation episode way"),
                        ("val_shot", "validation shot (default: the training shot)"), ("val_query", "validation queries per class"),
                        ("val_episodes", "validation episodes"), ("val_every", "validate every this many episodes"),
                        ("checkpoint_seconds", "save OUT/last at least this often"), ("log_every", "log every this many episodes"),
                        ("seed", "seed of initialisation and episodes"), ("train_split", "split to train on"),
                        ("val_split", "split to validate on ('none' to skip)")]:
        kind = next(f.type for f in fields(TrainConfig) if f.name == name)
        conv = float if "float" in str(kind) else int if "int" in str(kind) else str
        p.add_argument("--" + name.replace("_", "-"), type=conv, dest=name,
                       help=f"{help_} (default {getattr(d, name)})")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args) -> int:
    from .engine.config import TrainConfig, read_config_file
    from .engine.trainer import Trainer

    values = read_config_file(args.config) if args.config else {}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name not in ("method_args", "backbone_args"):
            values[f.name] = v
    if values.get("val_split") == "none":
        values["val_split"] = None
    if args.method_arg:
        values["method_args"] = {**values.get("method_args", {}), **_key_values(args.method_arg, "--method-arg")}
    if args.backbone_arg:
        values["backbone_args"] = {**values.get("backbone_args", {}), **_key_values(args.backbone_arg, "--backbone-arg")}
    if values.get("dataset") == "omniglot" and values.get("protocol") == "lake" and "val_split" not in values:
        values["val_split"] = None  # Lake's protocol has no validation classes
    config = TrainConfig.from_dict(values)
    trainer = Trainer(config, args.out, progress=not args.quiet, allow_download=not args.no_download)
    if args.resume and trainer.resume():
        print(f"resuming {args.out} at episode {trainer.episode}", file=sys.stderr)
    elif (Path(args.out) / "last.safetensors").exists():
        raise KshotError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    result = trainer.train()
    print(json.dumps(result))
    return 0


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on test episodes (mean accuracy and 95%% CI)",
                       description="Evaluate a trained checkpoint on seeded test episodes of the data it was "
                                   "trained on (or another split / data set).", epilog=EPILOG)
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a run directory (uses its best)")
    p.add_argument("--way", type=int, default=5)
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--query", type=int, default=15, help="queries per class (default 15)")
    p.add_argument("--episodes", type=int, default=1000, help="test episodes (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test")
    p.add_argument("--dataset", help="default: the checkpoint's")
    p.add_argument("--protocol", help="default: the checkpoint's")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--no-feature-reuse", action="store_true",
                   help="re-embed images in every episode (slower; for timing comparisons)")
    p.add_argument("--threads", type=int)
    p.add_argument("--record", metavar="JSONL", help="append the result as one JSON line to this file")
    p.add_argument("--quiet", action="store_true")


def cmd_eval(args) -> int:
    from .data import load_dataset
    from .engine.build import load_learner
    from .engine.evaluator import evaluate

    learner, meta = load_learner(args.checkpoint)
    data = meta.get("data", {})
    cfg = meta.get("config", {})
    dataset = args.dataset or data.get("dataset") or "omniglot"
    protocol = args.protocol or data.get("protocol") or "vinyals"
    data_dir = args.data_dir or (cfg.get("data_dir") if dataset == "folder" else None)
    test = load_dataset(dataset, args.split, protocol, data_dir, data.get("image_size", 28),
                        not args.no_download, data.get("channels", 1))
    result = evaluate(learner, test, args.way, args.shot, args.query, args.episodes, args.seed,
                      reuse_features=not args.no_feature_reuse, progress=not args.quiet)
    row = {"method": meta["method"], "backbone": meta["backbone"], "dataset": dataset, "protocol": protocol,
           "split": args.split, "way": args.way, "shot": args.shot, "query": args.query, "episodes": result.episodes,
           "accuracy": round(result.accuracy, 3), "ci95": round(result.ci95, 3), "eval_seconds": round(result.seconds, 2),
           "checkpoint": str(args.checkpoint), "train_seconds": meta.get("train_seconds"),
           "train_episodes": meta.get("episode"), "command": "kshot " + shlex.join(args.argv),
           "machine": machine_description(), "date": time.strftime("%Y-%m-%d")}
    print(f"{meta['method']} {dataset}/{protocol}/{args.split} {args.way}-way {args.shot}-shot: {result}")
    if args.record:
        with open(args.record, "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


def machine_description() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores {cpu}, torch {torch.__version__} threads {torch.get_num_threads()}"


def add_datasets_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list the data sets kshot knows and whether they are found locally",
                       epilog=EPILOG)
    p.add_argument("--data-dir")


def cmd_datasets(args) -> int:
    from .data.omniglot import PROTOCOLS, SPLIT_FILES, ZIPS
    from .paths import default_cache_dir, default_data_dir

    root = Path(args.data_dir) if args.data_dir else default_data_dir()
    print(f"data directory: {root}{'' if root.exists() else ' (missing)'}")
    print(f"cache directory: {default_cache_dir()}")
    files = [z.filename for z in ZIPS.values()] + [s.filename for s in SPLIT_FILES.values()]
    found = [f for f in files if (root / "omniglot" / f).exists()]
    state = "found" if len(found) == len(files) else f"{len(found)}/{len(files)} files found; the rest download on first use"
    print(f"omniglot: {state} in {root / 'omniglot'}")
    for protocol, splits in PROTOCOLS.items():
        print(f"  --protocol {protocol}: splits {', '.join(splits)}")
    print("folder: your own images, --dataset folder --data-dir DIR (DIR/<class>/*.png, or DIR/{train,val,test}/<class>/...)")
    return 0


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

    from .data import load_dataset
    from .engine import checkpoint
    from .engine.build import build_learner, learner_meta
    from .engine.pairs import pair_accuracy, train_pairs

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
               "train_seconds": round(seconds, 1), "checkpoint": args.out, "command": "kshot " + shlex.join(args.argv),
               "machine": machine_description(), "date": time.strftime("%Y-%m-%d")}
        with open(args.record, "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


def add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw pictures of a trained model (t-SNE of embeddings)")
    kinds = p.add_subparsers(dest="plot", required=True)
    t = kinds.add_parser("tsne", help="t-SNE of the embeddings of a few test characters, misclassified points marked",
                         epilog=EPILOG)
    t.add_argument("checkpoint")
    t.add_argument("--out", default="tsne.png", help="PNG to write (default tsne.png)")
    t.add_argument("--alphabet", help="Omniglot alphabet of the test split (default: the first)")
    t.add_argument("--classes", type=int, default=10, help="how many characters (default 10)")
    t.add_argument("--shot", type=int, default=5, help="support images per class for the predictions (default 5)")
    t.add_argument("--split", default="test")
    t.add_argument("--data-dir")
    t.add_argument("--no-download", action="store_true")


def cmd_plot(args) -> int:
    from .data import load_dataset
    from .engine.build import load_learner

    try:
        from .plots.tsne import plot_tsne
        import matplotlib, sklearn  # noqa: F401,E401
    except ImportError as e:
        raise KshotError(f"plots need matplotlib and scikit-learn: pip install 'kshot[plot]' ({e})") from e
    learner, meta = load_learner(args.checkpoint)
    data = meta.get("data", {})
    dataset = load_dataset(data.get("dataset", "omniglot"), args.split, data.get("protocol", "vinyals"), args.data_dir,
                           data.get("image_size", 28), not args.no_download, data.get("channels", 1))
    info = plot_tsne(learner, dataset, args.out, args.alphabet, args.classes, args.shot)
    print(f"wrote {args.out}: {info['points']} images of {info['classes']} classes, {info['misclassified']} misclassified")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kshot", description="Few-shot learning and meta-learning.", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_eval_parser(sub)
    add_datasets_parser(sub)
    add_pairs_parser(sub)
    add_plot_parser(sub)
    return parser


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "datasets": cmd_datasets, "pairs": cmd_pairs, "plot": cmd_plot}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except KshotError as e:
        print(f"kshot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
