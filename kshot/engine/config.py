"""Training settings: defaults reproduce the paper's Omniglot setup; a TOML/JSON file
or command-line flags override them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path

import tomllib

from ..errors import ConfigError


@dataclass
class TrainConfig:
    method: str = "protonet"
    backbone: str = "conv4"
    method_args: dict = field(default_factory=dict)
    backbone_args: dict = field(default_factory=dict)
    dataset: str = "omniglot"
    protocol: str = "vinyals"
    data_dir: str | None = None
    image_size: int = 28
    channels: int = 1
    train_split: str = "train"
    val_split: str | None = "val"
    # Snell et al. train Omniglot with 60 classes and 5 queries per class per episode.
    way: int = 60
    shot: int = 1
    query: int = 5
    episodes: int = 20000  # outer steps; each takes meta_batch episodes
    meta_batch: int = 1
    batch_size: int = 64  # images per mini-batch, for learners pretrained on batches (trains_on)
    # "standard": random crop with padding, flip, colour jitter; "affine": Koch et al.'s small
    # distortions of characters (data/augment.py)
    augment: str = "none"
    # 4: each training class and its three quarter-turns are classes of their own (how the Vinyals
    # split was made; an option for --protocol lake, whose background set has none); 1: none.
    rotations: int = 1
    # Share of training episodes whose classes all come from one alphabet (the part of a class name
    # before its first "/"), as every test episode of Lake et al.'s within-alphabet challenge does.
    within_alphabet: float = 0.0
    # Adam, lr 1e-3 halved every 2000 episodes (Snell et al. 2017, section 3.1).
    optimizer: str = "adam"
    lr: float = 1e-3
    # or "linear": decay to 0 at the last step (Reptile); "cosine": cosine annealing to lr/100 at the
    # last step (Antoniou et al. 2019, for MAML)
    lr_schedule: str = "step"
    lr_step: int = 2000
    lr_gamma: float = 0.5
    # Semi-supervised episodes (data/semi_supervised.py, Ren et al. 2018): unlabelled items per
    # class, distractor classes, and the share of each training class's items that is labelled.
    unlabelled: int = 0
    distractors: int = 0
    label_ratio: float = 1.0
    grad_clip: float = 0.0  # clip the gradient's global norm to this before each step (0: off)
    # "bf16": training steps compute under bfloat16 autocast (weights, optimizer and validation
    # stay float32): 1.6x faster ProtoNet steps on a CPU with AVX-512 BF16 (BENCHMARKS.md).
    precision: str = "fp32"
    val_way: int = 5
    val_shot: int | None = None  # None: the training shot
    val_query: int = 15
    val_episodes: int = 500
    val_every: int = 1000
    checkpoint_seconds: float = 120.0
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.val_split == "none":  # TOML has no null: "none" means no validation
            self.val_split = None
        for name in (
            "way",
            "query",
            "episodes",
            "lr_step",
            "val_way",
            "val_query",
            "val_episodes",
            "val_every",
            "log_every",
            "image_size",
            "meta_batch",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (colour), not {self.channels}")
        if self.shot < 0 or self.lr <= 0 or self.grad_clip < 0:
            raise ConfigError("shot and grad_clip must be >= 0 and lr > 0")
        if self.unlabelled < 0 or self.distractors < 0 or not 0 < self.label_ratio <= 1:
            raise ConfigError("unlabelled and distractors must be >= 0 and label_ratio in (0, 1]")
        if self.distractors and not self.unlabelled:
            raise ConfigError("distractors lend unlabelled items only: set unlabelled (per class) as well")
        if not 0 <= self.within_alphabet <= 1:
            raise ConfigError(f"within_alphabet is a share of episodes, in [0, 1], not {self.within_alphabet}")
        if self.rotations not in (1, 2, 4):
            raise ConfigError(f"rotations must be 1 (none), 2 (a half-turn) or 4 (quarter-turns), not {self.rotations}")
        if self.augment not in ("none", "standard", "affine"):
            raise ConfigError(f"augment must be 'none', 'standard' or 'affine', not {self.augment!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', not {self.precision!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', not {self.optimizer!r}")
        if self.lr_schedule not in ("step", "linear", "cosine"):
            raise ConfigError(f"lr_schedule must be 'step', 'linear' or 'cosine', not {self.lr_schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def defaults(cls) -> dict:
        """Every setting's class default (before any preset)."""
        return {f.name: f.default_factory() if callable(f.default_factory) else f.default for f in fields(cls)}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Settings given, over the method's paper preset (e.g. MAML's meta-batch of 32), over the
        class defaults. Unknown names and values of the wrong type are refused."""
        from ..learners import METHODS

        check_settings(values, "settings")
        preset = METHODS.get(values.get("method", cls.method)).paper_preset
        base = read_config(preset) if preset else {}
        return cls(**{**base, **values})


def check_settings(values: dict, source: str) -> None:
    """Every key is a TrainConfig field and every value has that field's type."""
    types = {f.name: f.type for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(types))}")
    for name, value in values.items():
        kind = str(types[name])
        allowed: tuple[type, ...] = {"int": (int,), "float": (int, float), "str": (str,), "dict": (dict,)}[
            kind.split(" | ")[0]
        ]
        if value is None and "None" in kind:
            continue
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise ConfigError(f"{source}: {name} must be {kind}, not {value!r}")


def preset_names() -> list[str]:
    """The shipped presets, by name."""
    return sorted(p.name[: -len(".toml")] for p in files("kshot.configs").iterdir() if p.name.endswith(".toml"))


def read_config(name_or_path: str | Path) -> dict:
    """Settings from a shipped preset name (`maml-omniglot-5w1s`) or a .toml / .json file (flat keys,
    as the TrainConfig fields), checked against the trainer's settings."""
    p = Path(name_or_path)
    if not p.exists() and p.suffix == "" and str(name_or_path) in preset_names():
        return parse_config(
            files("kshot.configs").joinpath(f"{name_or_path}.toml").read_text(), f"preset {name_or_path}", ".toml"
        )
    if not p.exists():
        raise ConfigError(f"no config file {p} and no preset of that name; presets: {', '.join(preset_names())}")
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from e
    return parse_config(text, str(p), p.suffix)


def parse_config(text: str, source: str, suffix: str) -> dict:
    try:
        values = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{source} is not valid {'TOML' if suffix == '.toml' else 'JSON'}: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must hold a table of settings")
    check_settings(values, source)
    return values
