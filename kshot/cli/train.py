"""`kshot train`: meta-train a learner on episodes."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from ..errors import KshotError
from .common import EPILOG, key_values


def add_train_parser(sub) -> None:
    from ..data import DATASETS
    from ..engine.config import TrainConfig, preset_names
    from ..learners import METHODS
    from ..nets import BACKBONES

    p = sub.add_parser(
        "train",
        help="meta-train a few-shot learner on episodes",
        description="Meta-train a learner. Defaults follow Snell et al. (2017) on Omniglot "
        "(Vinyals split, 60-way 1-shot 5-query episodes, Adam 1e-3 halved every 2000 "
        "episodes). A method may bring its own paper's defaults (MAML: 5-way, meta-batch 32; "
        "Reptile: SGD with linear decay). Flags override a --config file, which overrides "
        "the method's defaults, which override the general ones.",
        epilog=EPILOG,
    )
    d = TrainConfig()
    p.add_argument("--out", required=True, help="run directory: checkpoints and log.jsonl go here")
    p.add_argument(
        "--config",
        metavar="PRESET|FILE",
        help="a shipped preset (" + ", ".join(preset_names()) + ") or a TOML/JSON file of settings "
        "(same names as the flags, with underscores)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors if it exists")
    p.add_argument("--method", help=f"few-shot method: {', '.join(METHODS.names())} (default {d.method})")
    p.add_argument("--backbone", help=f"feature extractor: {', '.join(BACKBONES.names())} (default {d.backbone})")
    p.add_argument("--method-arg", action="append", metavar="K=V", help="method option, e.g. distance=cosine")
    p.add_argument("--backbone-arg", action="append", metavar="K=V", help="backbone option, e.g. hidden=64")
    p.add_argument("--dataset", help=f"data set: {', '.join(DATASETS.names())} (default {d.dataset})")
    p.add_argument("--protocol", help=f"omniglot split protocol: vinyals or lake (default {d.protocol})")
    p.add_argument("--data-dir", help="data directory (for folder: the folder of class folders)")
    p.add_argument("--no-download", action="store_true", help="never download missing data")
    for name, help_ in [
        ("image_size", "images are resized to this square size"),
        ("channels", "1 grey, 3 RGB"),
        ("way", "classes per training episode"),
        ("shot", "support examples per class"),
        ("query", "query examples per class"),
        ("episodes", "outer training steps in all"),
        ("meta_batch", "episodes per outer step (MAML family)"),
        ("batch_size", "images per mini-batch, for methods pretrained on batches (baseline, finetune)"),
        ("augment", "none; standard (crop with padding, flip, colour jitter); affine (small distortions)"),
        ("rotations", "4: every training class and its quarter-turns are classes (for --protocol lake); 1: none"),
        ("within_alphabet", "share of training episodes drawn within one alphabet (Lake's challenge), 0 to 1"),
        ("unlabelled", "semi-supervised episodes: unlabelled items per class"),
        ("distractors", "semi-supervised episodes: classes that lend only unlabelled items"),
        ("label_ratio", "semi-supervised episodes: share of each training class's items that is labelled"),
        ("grad_clip", "clip the gradient norm to this before each step (0: off)"),
        ("precision", "fp32, or bf16: training steps under bfloat16 autocast (validation stays fp32)"),
        ("optimizer", "outer optimizer: adam or sgd"),
        ("lr", "outer learning rate"),
        ("lr_schedule", "step (decay by lr_gamma every lr_step), linear (to 0) or cosine (to lr/100)"),
        ("lr_step", "multiply lr by lr_gamma every this many episodes"),
        ("lr_gamma", "learning-rate decay factor"),
        ("val_way", "validation episode way"),
        ("val_shot", "validation shot (default: the training shot)"),
        ("val_query", "validation queries per class"),
        ("val_episodes", "validation episodes"),
        ("val_every", "validate every this many episodes"),
        ("checkpoint_seconds", "save OUT/last at least this often"),
        ("log_every", "log every this many episodes"),
        ("seed", "seed of initialisation and episodes"),
        ("train_split", "split to train on"),
        ("val_split", "split to validate on ('none' to skip)"),
    ]:
        kind = next(f.type for f in fields(TrainConfig) if f.name == name)
        conv = float if "float" in str(kind) else int if "int" in str(kind) else str
        p.add_argument(
            "--" + name.replace("_", "-"), type=conv, dest=name, help=f"{help_} (default {getattr(d, name)})"
        )
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument(
        "--device",
        help="where to compute: cpu (default), cuda, cuda:N or mps; under torchrun, cuda is each rank's own GPU",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args) -> int:
    from ..engine.config import TrainConfig, read_config
    from ..engine.devices import resolve_device
    from ..engine.distributed import end_process, join_from_environment, leave
    from ..engine.fit import EPISODE_SETTINGS
    from ..engine.trainer import Trainer

    values = read_config(args.config) if args.config else {}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name not in ("method_args", "backbone_args"):
            values[f.name] = v
    if values.get("val_split") == "none":
        values["val_split"] = None
    if args.method_arg:
        values["method_args"] = {**values.get("method_args", {}), **key_values(args.method_arg, "--method-arg")}
    if args.backbone_arg:
        values["backbone_args"] = {**values.get("backbone_args", {}), **key_values(args.backbone_arg, "--backbone-arg")}
    if values.get("dataset") == "omniglot" and values.get("protocol") == "lake" and "val_split" not in values:
        values["val_split"] = None  # Lake's protocol has no validation classes
    config = TrainConfig.from_dict(values)
    chosen = set(values) - {"method"}  # given by a flag or a config file: never changed
    device = resolve_device(args.device, distributed=int(os.environ.get("WORLD_SIZE", "1")) > 1)
    processes = join_from_environment(device.type)  # several under torchrun; one otherwise
    finished = False
    try:
        trainer = Trainer.from_config(
            config,
            args.out,
            progress=not args.quiet,
            allow_download=not args.no_download,
            adjustable=frozenset(EPISODE_SETTINGS) - chosen,
            processes=processes,
            device=device,
        )
        say = print if processes.main else lambda *a, **k: None
        for note in trainer.notes:
            say(f"kshot train: {note}", file=sys.stderr)
        if args.resume and trainer.resume():
            say(f"resuming {args.out} at episode {trainer.episode}", file=sys.stderr)
        elif processes.main and (Path(args.out) / "last.safetensors").exists():
            raise KshotError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
        result = trainer.train()
        say(json.dumps(result))
        finished = True
    finally:
        leave(processes, finished)
    end_process(processes)
    return 0
