"""Checkpoints: one safetensors file (weights, plus optimizer state for resuming) whose
header carries the JSON metadata; a copy of that JSON sits beside it for people to read.

Loading reads only tensors and JSON: nothing in a checkpoint can execute code.
Files are written to a temporary name and renamed into place, so a crash while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_path
from ..errors import CheckpointError

FORMAT = "kshot-checkpoint"
VERSION = 3


def checkpoint_path(path: str | Path) -> Path:
    """Accept `run/best`, `run/best.safetensors`, `run/best.json` or a run directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "best.safetensors"
    elif p.suffix == ".json" or (p.suffix != ".safetensors" and not p.exists()):
        p = p.with_suffix(".safetensors")
    return p


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    path = checkpoint_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta}
    text = json.dumps(meta, indent=2, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata={"kshot": text})
    with atomic_path(path.with_suffix(".json")) as tmp:  # a copy for people; loading reads the header
        tmp.write_text(text + "\n")
    return path


def load(path: str | Path, expect_method: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata). Raises CheckpointError naming the problem and the fix."""
    p = checkpoint_path(path)
    if not p.exists() and p.name == "best.safetensors" and p.with_name("last.safetensors").exists():
        raise CheckpointError(
            f"{p.parent} has no best.safetensors yet (training has not validated or finished); "
            f"to use its latest weights, give {p.with_name('last.safetensors')}"
        )
    if not p.exists():
        raise CheckpointError(f"no checkpoint at {p}; give the .safetensors file written by `kshot train`")
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle, not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{p} is not a readable safetensors checkpoint ({e})") from e
    if "kshot" not in header:
        raise CheckpointError(f"{p} is a safetensors file but not a kshot checkpoint (no kshot metadata)")
    try:
        meta = json.loads(header["kshot"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: its kshot metadata is damaged ({e})") from e
    if meta.get("format") != FORMAT or not isinstance(meta.get("version"), int):
        raise CheckpointError(f"{p} is not a kshot checkpoint")
    if meta["version"] > VERSION:
        raise CheckpointError(f"{p} was written by a newer kshot (format {meta['version']}); upgrade kshot")
    if meta["version"] < VERSION:
        tensors, meta = upgrade(tensors, meta)
    if expect_method is not None and meta.get("method") != expect_method:
        raise CheckpointError(
            f"{p} is a {meta.get('method')!r} checkpoint, not {expect_method!r}; "
            f"use --method {meta.get('method')} or pick a {expect_method} checkpoint"
        )
    return tensors, meta


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def upgrade(tensors: dict[str, torch.Tensor], meta: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an older checkpoint as the current format. Version 2 names the gradient learners'
    network parts (`net.body`, `net.head` instead of positions `net.0`, `net.2`), and metric
    learners size their layers from the backbone (no `dim` option). Version 3 keeps the shot a
    Relation Network trained with (`trained_shot`), which older ones recorded in their settings."""
    if meta.get("method") == "relation" and "model.trained_shot" not in tensors:
        shot = float(meta.get("config", {}).get("shot", 0))
        tensors = {**tensors, "model.trained_shot": torch.tensor(shot)}
    renamed = {}
    for key, value in tensors.items():
        for old, new in (("model.net.0.", "model.net.body."), ("model.net.2.", "model.net.head.")):
            if key.startswith(old):
                key = new + key[len(old) :]
        renamed[key] = value
    method_args = {k: v for k, v in meta.get("method_args", {}).items() if k != "dim"}
    return renamed, {**meta, "method_args": method_args, "version": VERSION}
