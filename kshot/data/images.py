"""Decoding one image file to a fixed-size uint8 tensor, with errors that name the file."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError

# Decompression-bomb guard: refuse absurdly large images instead of exhausting memory.
MAX_PIXELS = 50_000_000


def decode_image(data: bytes, source: str, size: int, channels: int = 1, invert: bool = False) -> torch.Tensor:
    """Bytes of a PNG/JPEG/PGM/... -> uint8 tensor [channels, size, size]."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(f"{source}: image of {img.width}x{img.height} pixels is too large")
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.LANCZOS)
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{source}: not a readable image ({e}); replace or delete this file") from e
    if invert:
        arr = 255 - arr
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1).contiguous()
