"""Build a learner from names and options, and restore one from a checkpoint."""
from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..learners import METHODS, Learner
from ..nets import BACKBONES
from . import checkpoint


def effective_backbone_args(method: str, backbone_args: dict | None) -> dict:
    """The method's needs of its backbone (e.g. Relation Networks keep feature maps), under the user's."""
    return {**getattr(METHODS.get(method), "backbone_defaults", {}), **(backbone_args or {})}


def effective_method_args(method: str, method_args: dict | None, way: int, input_shape: list[int]) -> dict:
    """Methods with a fixed output layer (MAML family) are told the task's way and input shape."""
    if getattr(METHODS.get(method), "needs_task_shape", False):
        return {"way": way, "input_shape": input_shape, **(method_args or {})}
    return dict(method_args or {})


def build_learner(method: str, backbone: str, backbone_args: dict | None = None, method_args: dict | None = None) -> Learner:
    encoder = BACKBONES.get(backbone)(**effective_backbone_args(method, backbone_args))
    try:
        return METHODS.get(method)(encoder, **(method_args or {}))
    except TypeError as e:
        raise ConfigError(f"bad option for method {method!r}: {e}") from e


def learner_meta(method: str, backbone: str, backbone_args: dict, method_args: dict) -> dict:
    return {"method": method, "backbone": backbone, "backbone_args": backbone_args, "method_args": method_args}


def load_learner(path: str | Path, expect_method: str | None = None,
                 method_overrides: dict | None = None) -> tuple[Learner, dict]:
    """A learner in eval mode with the checkpoint's weights, and the checkpoint's metadata.
    `method_overrides` replace method options that leave the weights as they are (test_steps)."""
    tensors, meta = checkpoint.load(path, expect_method)
    try:
        method_args = {**meta.get("method_args", {}), **(method_overrides or {})}
        learner = build_learner(meta["method"], meta["backbone"], meta.get("backbone_args"), method_args)
    except KeyError as e:
        raise CheckpointError(f"{path}: metadata lacks {e}; it was not written by `kshot train`") from e
    state = checkpoint.split_prefix(tensors, "model.")
    expected = learner.state_dict()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    resized = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if (missing or unexpected or resized) and method_overrides:
        raise ConfigError(f"the options {sorted(method_overrides)} change the shape of this {meta['method']} "
                          f"model's weights, so {path} cannot be loaded with them; drop them")
    if missing or unexpected or resized:
        raise CheckpointError(
            f"{path}: weights do not fit a {meta['method']}/{meta['backbone']} model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}, resized {resized[:3]}); "
            "the file is damaged or edited"
        )
    learner.load_state_dict(state)
    return learner.eval(), meta
