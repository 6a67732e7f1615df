"""Decoding one image file to a fixed-size uint8 tensor, right for every common kind of image,
with errors that name the file.

Pillow's plain `convert("L")` clips 16- and 32-bit pixels at 255 (a 16-bit photo turns nearly
white), drops alpha onto black, and ignores a camera's EXIF orientation; here:
- the EXIF orientation is applied first (a phone photo comes out upright);
- integer and float greyscale (I;16, I, F) are scaled from their range: floats in [0, 1] by 255,
  otherwise by the smallest of 255, 65535 and 2^32 - 1 that holds the image's maximum;
- transparency (RGBA, LA, a palette with a transparent colour) is composited over white;
- CMYK becomes RGB by R = 255 (1 - C/255)(1 - K/255), likewise G and B.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

# Decompression-bomb guard: refuse absurdly large images instead of exhausting memory.
MAX_PIXELS = 50_000_000
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def wide_to_grey(img: Image.Image) -> Image.Image:
    """A 16/32-bit integer or float greyscale image as 8-bit "L", scaled from its range."""
    arr = np.asarray(img).astype(np.float64)
    top = float(arr.max()) if arr.size else 0.0
    if img.mode == "F" and top <= 1.0:
        scale = 1.0
    else:
        scale = next((s for s in (255.0, 65535.0, 4294967295.0) if top <= s), top)
    return Image.fromarray(np.clip(np.rint(arr * (255.0 / scale)), 0, 255).astype(np.uint8), "L")


def cmyk_to_rgb(img: Image.Image) -> Image.Image:
    cmyk = np.asarray(img).astype(np.float64) / 255.0
    rgb = 255.0 * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")


def over_white(img: Image.Image) -> Image.Image:
    """Composite an image with transparency over a white background (RGB)."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_8bit(img: Image.Image) -> Image.Image:
    """Any Pillow image as "L" or "RGB" 8-bit pixels a person would recognise."""
    img = ImageOps.exif_transpose(img)
    if img.mode in WIDE_MODES:
        return wide_to_grey(img)
    if img.mode == "CMYK":
        return cmyk_to_rgb(img)
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (img.mode == "P" and "transparency" in img.info):
        return over_white(img)
    return img if img.mode in ("L", "RGB") else img.convert("RGB")


def decode_image(data: bytes, source: str, size: int, channels: int = 1, invert: bool = False) -> torch.Tensor:
    """Bytes of a PNG/JPEG/PGM/TIFF/... -> uint8 tensor [channels, size, size]."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(f"{source}: image of {img.width}x{img.height} pixels is too large")
            img = to_8bit(img).convert("L" if channels == 1 else "RGB")
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


def is_uniform(image: torch.Tensor, spread: int = 4) -> bool:
    """Whether a decoded uint8 image has no content: all pixels within `spread` levels of each other
    (a lens cap, a blank scan). Such an image is refused where a person is enrolled or identified."""
    return int(image.max()) - int(image.min()) <= spread
