"""Every common kind of image decodes to what a person sees, each against a reference conversion."""

import io

import numpy as np
import pytest
from PIL import Image

from kshot.data.images import decode_image, is_uniform
from kshot.errors import DataError

SIZE = 32


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def decoded(data: bytes, channels: int = 1) -> np.ndarray:
    t = decode_image(data, "test image", SIZE, channels)
    return t[0].numpy().astype(float) if channels == 1 else t.permute(1, 2, 0).numpy().astype(float)


def gradient(top: float) -> np.ndarray:
    return np.linspace(0, top, SIZE * SIZE).reshape(SIZE, SIZE)


def test_16_bit_greyscale_keeps_its_tones():
    raw = gradient(65535).astype(np.uint16)
    got = decoded(encode(Image.fromarray(raw)))
    reference = np.rint(raw / 65535 * 255)
    assert np.abs(got - reference).max() <= 1
    assert abs(got.mean() - 127.5) < 1  # not the near-white image a plain convert("L") gives


def test_32_bit_integer_and_float_greyscale_are_scaled_from_their_range():
    ints = gradient(70000).astype(np.int32)  # above 16 bits: scaled by 2^32 - 1
    got = decoded(encode(Image.fromarray(ints), "TIFF"))
    assert np.abs(got - np.rint(ints / 4294967295 * 255)).max() <= 1
    floats = gradient(1.0).astype(np.float32)  # floats in [0, 1]
    got = decoded(encode(Image.fromarray(floats), "TIFF"))
    assert np.abs(got - np.rint(floats * 255)).max() <= 1


def test_palette_images_decode_to_their_colours():
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:, : SIZE // 2] = (200, 30, 30)
    rgb[:, SIZE // 2 :] = (20, 40, 220)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert np.abs(decoded(encode(palette), 3) - rgb).max() <= 1


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_over_white(mode):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float64)
    alpha = gradient(255)
    if mode == "LA":
        colour = colour[..., :1].repeat(3, axis=2)
    pixels = np.dstack([colour[..., :1] if mode == "LA" else colour, alpha]).astype(np.uint8)
    img = Image.fromarray(pixels, mode)
    reference = colour * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255)
    assert np.abs(decoded(encode(img), 3) - reference).max() <= 1.5  # rounding in the compositing


def test_cmyk_becomes_rgb_by_the_subtractive_formula():
    rng = np.random.default_rng(1)
    cmyk = rng.integers(0, 256, (SIZE, SIZE, 4)).astype(np.uint8)
    got = decoded(encode(Image.fromarray(cmyk, "CMYK"), "TIFF"), 3)
    c = cmyk.astype(float) / 255
    reference = 255 * (1 - c[..., :3]) * (1 - c[..., 3:])
    assert np.abs(got - reference).max() <= 1


def test_exif_orientation_is_applied():
    pixels = np.zeros((SIZE, SIZE), np.uint8)
    pixels[:4, :] = 255  # a bright top edge
    img = Image.fromarray(pixels).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    got = decoded(encode(img, "JPEG", exif=exif, quality=95))
    assert got[:, -4:].mean() > 200 and got[:4, :].mean() < 100  # the top edge is now on the right


def test_uniform_images_are_recognised_and_textured_ones_are_not():
    black = decode_image(encode(Image.new("L", (SIZE, SIZE), 0)), "black", SIZE)
    assert is_uniform(black)
    assert not is_uniform(decode_image(encode(Image.fromarray(gradient(255).astype(np.uint8))), "g", SIZE))


@pytest.mark.parametrize(
    "data,problem",
    [
        (b"", "not a readable image"),
        (b"GIF89a garbage", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n", "not a readable"),
    ],
)
def test_unreadable_bytes_name_the_file(data, problem):
    with pytest.raises(DataError, match=f"test image: {problem}"):
        decode_image(data, "test image", SIZE)


def test_truncated_png_is_refused():
    data = encode(Image.fromarray(gradient(255).astype(np.uint8)))
    with pytest.raises(DataError, match="test image: not a readable image"):
        decode_image(data[: len(data) // 2], "test image", SIZE)
