"""The C 2x2 max-pool (kshot/nets/pool2x2.c) against PyTorch's: same values and gradients to third
order, ties and NaN included, and PyTorch's own pool wherever the kernel does not apply."""

import ctypes
import shutil

import pytest
import torch
import torch.nn.functional as F

from kshot import native
from kshot.nets import pool2x2
from kshot.nets.pool2x2 import fused_applies, max_pool_2x2

pytestmark = pytest.mark.skipif(pool2x2.library() is None, reason="no C compiler: the kernel is not built")


def tied_maps(shape, dtype, seed=0):
    """Rounded values (many ties within a window, as on Omniglot's flat strokes) and one NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).mul(2).round().to(dtype)
    x[0, 0, 0, 1] = float("nan")
    return x.contiguous(memory_format=torch.channels_last).requires_grad_()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(100, 64, 28, 28), (3, 1, 4, 6), (1, 5, 2, 2)])
def test_values_and_gradient_are_pytorchs(dtype, shape):
    x = tied_maps(shape, dtype)
    assert fused_applies(x)
    g = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2).to(dtype)
    expected, got = F.max_pool2d(x, 2), max_pool_2x2(x)
    assert torch.equal(expected.isnan(), got.isnan())
    assert torch.equal(expected.nan_to_num(), got.nan_to_num())
    assert got.is_contiguous(memory_format=torch.channels_last)
    (expected_grad,) = torch.autograd.grad(expected, x, g)
    (got_grad,) = torch.autograd.grad(got, x, g)
    assert torch.equal(expected_grad, got_grad)


def derivatives(pool, weight, images, target):
    """Gradient, then derivatives of it to second and third order (as MAML's meta-gradient needs)."""
    maps = F.conv2d(images, weight, padding=1).contiguous(memory_format=torch.channels_last)
    loss = (pool(maps).relu().square() * target).sum()
    (first,) = torch.autograd.grad(loss, weight, create_graph=True)
    (second,) = torch.autograd.grad(first.square().sum(), weight, create_graph=True)
    (third,) = torch.autograd.grad(second.sum(), weight)
    return first, second, third


def test_higher_order_gradients_are_pytorchs():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(8, 3, 3, 3, generator=g, requires_grad=True)
    images = torch.randn(4, 3, 8, 8, generator=g).round().contiguous(memory_format=torch.channels_last)
    target = torch.randn(4, 8, 4, 4, generator=g)
    expected = derivatives(lambda m: F.max_pool2d(m, 2), weight, images, target)
    got = derivatives(max_pool_2x2, weight, images, target)
    for e, o in zip(expected, got):
        torch.testing.assert_close(o, e, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "x",
    [
        torch.randn(2, 4, 7, 7).contiguous(memory_format=torch.channels_last),  # odd size: floor mode
        torch.randn(2, 4, 8, 8),  # default layout
        torch.randn(2, 4, 8, 8, dtype=torch.float64).contiguous(memory_format=torch.channels_last),
    ],
)
def test_elsewhere_it_is_pytorchs_pool(x):
    assert not fused_applies(x)
    assert torch.equal(max_pool_2x2(x), F.max_pool2d(x, 2))


def test_under_vmap_it_is_pytorchs_pool():
    x = torch.randn(3, 2, 4, 8, 8).contiguous()
    got = torch.func.vmap(max_pool_2x2)(x)
    assert torch.equal(got, F.max_pool2d(x.flatten(0, 1), 2).unflatten(0, (3, 2)))


def test_without_a_compiler_it_is_pytorchs_pool(tmp_path, monkeypatch):
    source = tmp_path / "pool2x2.c"
    shutil.copy(pool2x2.SOURCE, source)
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.load(source) is None
    monkeypatch.setattr(pool2x2, "library", lambda: None)
    x = tied_maps((2, 3, 4, 4), torch.float32)
    assert not fused_applies(x)
    assert torch.equal(max_pool_2x2(x).nan_to_num(), F.max_pool2d(x, 2).nan_to_num())


def test_a_damaged_cached_library_is_built_again(tmp_path, monkeypatch):
    source = tmp_path / "pool2x2.c"
    shutil.copy(pool2x2.SOURCE, source)
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    cached = native.library_path(source, native.compiler())
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a shared library")
    assert isinstance(native.load(source), ctypes.CDLL)
    assert cached.read_bytes()[:4] == b"\x7fELF"
