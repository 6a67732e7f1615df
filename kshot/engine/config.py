"""Training settings: defaults reproduce the paper's Omniglot setup; a TOML/JSON file
or command-line flags override them."""
from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

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
    # Adam, lr 1e-3 halved every 2000 episodes (Snell et al. 2017, section 3.1).
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "step"  # or "linear": decay to 0 at the last step (Reptile)
    lr_step: int = 2000
    lr_gamma: float = 0.5
    val_way: int = 5
    val_shot: int | None = None  # None: the training shot
    val_query: int = 15
    val_episodes: int = 500
    val_every: int = 1000
    checkpoint_seconds: float = 120.0
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("way", "query", "episodes", "lr_step", "val_way", "val_query", "val_episodes", "val_every", "log_every", "image_size",
                     "meta_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.shot < 0 or self.lr <= 0:
            raise ConfigError("shot must be >= 0 and lr > 0")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', not {self.optimizer!r}")
        if self.lr_schedule not in ("step", "linear"):
            raise ConfigError(f"lr_schedule must be 'step' or 'linear', not {self.lr_schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Settings given, over the method's own paper defaults (e.g. MAML's meta-batch of 32),
        over the class defaults."""
        from ..learners import METHODS

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        method_defaults = getattr(METHODS.get(values.get("method", cls.method)), "train_defaults", {})
        return cls(**{**method_defaults, **values})


def read_config_file(path: str | Path) -> dict:
    """Settings from a .toml or .json file (flat keys, as the TrainConfig fields)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from e
    try:
        return tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p} is not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {e}") from e
