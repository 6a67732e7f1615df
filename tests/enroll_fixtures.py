"""Shared pieces of the enrollment tests: a small model checkpoint and some face images."""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kshot.engine import checkpoint
from kshot.engine.build import build_learner, learner_meta


def save_model(path: Path, seed: int = 0, size: int = 32) -> Path:
    """A ProtoNet checkpoint as `kshot train` writes it (random weights: identical images still match)."""
    torch.manual_seed(seed)
    args = {"in_channels": 1, "hidden": 8, "out_channels": 8}
    learner = build_learner("protonet", "conv4", args, {})
    meta = learner_meta("protonet", "conv4", args, {}) | {
        "kind": "model",
        "data": {"dataset": "orl", "image_size": size, "channels": 1},
    }
    checkpoint.save(path, {f"model.{k}": v for k, v in learner.state_dict().items()}, meta)
    return path.with_suffix(".safetensors")


def face_png(seed: int, size: int = 40) -> bytes:
    """A distinct random grey image, PNG encoded."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def flat_png(size: int) -> bytes:
    """A one-colour image: a few hundred bytes however many pixels (to test the pixel limit alone)."""
    buf = io.BytesIO()
    Image.new("L", (size, size), 128).save(buf, "PNG")
    return buf.getvalue()
