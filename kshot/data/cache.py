"""Decoded-tensor cache: decode once, then load in seconds on every later start.

A cache entry is a safetensors file named by a key derived from the source files'
contents and the decoding settings, so a changed source or setting makes a new entry.
Entries are written atomically: a crash never leaves a half-written one behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path

CACHE_FORMAT = 1


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(parts: dict) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def cached_tensors(
    cache_dir: Path, prefix: str, key_parts: dict, build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (tensors, info) from the cache, building and storing them on a miss.

    `info` is a JSON-able dict kept in the file's metadata (class names and the like).
    An unreadable entry is rebuilt rather than trusted. A cache directory that
    cannot be written only costs the next start its speed.
    """
    path = Path(cache_dir) / f"{prefix}-{cache_key(key_parts)}.safetensors"
    if path.exists():
        try:
            tensors = load_file(str(path))
            with open(path, "rb") as f:
                header_len = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(header_len))
            return tensors, json.loads(header["__metadata__"]["info"])
        except (SafetensorError, OSError, KeyError, ValueError):
            pass  # damaged entry: rebuild below
    tensors, info = build()
    try:
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"info": json.dumps(info)})
    except OSError:
        pass
    return tensors, info
