"""Build a learner from names and options, and restore one from a checkpoint. What a method
needs is read from its declarations (learners/base.py), never guessed."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..learners import METHODS, Learner
from ..nets import BACKBONES
from . import checkpoint


def effective_backbone_args(method: str, backbone_args: dict | None) -> dict:
    """The method's declared needs of its backbone, under the user's options."""
    return {**METHODS.get(method).backbone_needs, **(backbone_args or {})}


def task_args(method: str, way: int | None, input_shape: Sequence[int] | None, base_classes: int | None = None) -> dict:
    """The task facts a method declares it needs: `way` (fixed output layer), `input_shape` and
    `base_classes` (the number of training classes, for a pretrained classifier)."""
    cls = METHODS.get(method)
    args: dict = {}
    for needed, name, value in (
        (cls.fixed_way, "way", way),
        (cls.needs_input_shape, "input_shape", input_shape),
        (cls.needs_base_classes, "base_classes", base_classes),
    ):
        if needed:
            if value is None:
                raise ConfigError(f"method {method!r} needs the task's {name} to be built")
            args[name] = list(value) if name == "input_shape" else value
    return args


def build_learner(
    method: str,
    backbone: str,
    backbone_args: dict | None = None,
    method_args: dict | None = None,
    way: int | None = None,
    input_shape: Sequence[int] | None = None,
    base_classes: int | None = None,
) -> Learner:
    """`method_args` may already hold `way` / `input_shape` (checkpoints written before they were
    passed separately); the ones given here are used only where they are missing."""
    cls = METHODS.get(method)
    try:
        encoder = BACKBONES.get(backbone)(**effective_backbone_args(method, backbone_args))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"bad option for backbone {backbone!r} (with what method {method!r} needs of it: "
            f"{dict(cls.backbone_needs)}): {e}"
        ) from e
    known = method_options(cls)
    unknown = sorted(set(method_args or {}) - known)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for method {method!r}; its options: {', '.join(sorted(known))}"
        )
    options = {
        **task_args(
            method,
            (method_args or {}).get("way", way),
            (method_args or {}).get("input_shape", input_shape),
            (method_args or {}).get("base_classes", base_classes),
        ),
        **(method_args or {}),
    }
    try:
        return cls(encoder, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad option for method {method!r}: {e}") from e


def method_options(cls: type) -> set[str]:
    """The keyword options a learner's constructor accepts, following `**options` up its bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self", "encoder"}


def learner_meta(method: str, backbone: str, backbone_args: dict, method_args: dict) -> dict:
    return {"method": method, "backbone": backbone, "backbone_args": backbone_args, "method_args": method_args}


def checkpoint_input_shape(meta: dict) -> list[int]:
    """[C, H, W] of the images a checkpoint was trained on."""
    data = meta.get("data", {})
    size = int(data.get("image_size", 28))
    return [int(data.get("channels", 1)), size, size]


def load_learner(
    path: str | Path, expect_method: str | None = None, method_overrides: dict | None = None
) -> tuple[Learner, dict]:
    """A learner in eval mode with the checkpoint's weights, and the checkpoint's metadata.
    `method_overrides` replace method options that leave the weights as they are (test_steps)."""
    tensors, meta = checkpoint.load(path, expect_method)
    try:
        method_args = {**meta.get("method_args", {}), **(method_overrides or {})}
        learner = build_learner(
            meta["method"],
            meta["backbone"],
            meta.get("backbone_args"),
            method_args,
            input_shape=checkpoint_input_shape(meta),
        )
    except KeyError as e:
        raise CheckpointError(f"{path}: metadata lacks {e}; it was not written by `kshot train`") from e
    state = checkpoint.split_prefix(tensors, "model.")
    expected = learner.state_dict()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    resized = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if (missing or unexpected or resized) and method_overrides:
        raise ConfigError(
            f"the options {sorted(method_overrides)} change the shape of this {meta['method']} "
            f"model's weights, so {path} cannot be loaded with them; drop them"
        )
    if missing or unexpected or resized:
        raise CheckpointError(
            f"{path}: weights do not fit a {meta['method']}/{meta['backbone']} model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}, resized {resized[:3]}); "
            "the file is damaged or edited"
        )
    learner.load_state_dict(state)
    return learner.eval(), meta
