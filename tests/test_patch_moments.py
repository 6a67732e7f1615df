"""The first Conv-4 block's BatchNorm, folded into its convolution (nets/patch_moments.py), is the
same function as the plain block: outputs, gradients (first and second order) and running
statistics, for grey and colour images, batch and task normalisation."""

import pytest
import torch
import torch.nn.functional as F

from kshot.nets.conv4 import conv_block
from kshot.nets.norm import reference_rows
from kshot.nets.patch_moments import foldable


def plain(block, x):
    """The block computed layer by layer, as nn.Sequential would."""
    for layer in block:
        x = layer(x)
    return x


def twin_blocks(in_channels, norm):
    torch.manual_seed(0)
    a = conv_block(in_channels, 8, norm=norm).double()
    with torch.no_grad():  # BatchNorm's affine parameters away from their initial 1 and 0
        a[1].weight.uniform_(0.5, 1.5)
        a[1].bias.uniform_(-0.5, 0.5)
    b = conv_block(in_channels, 8, norm=norm).double()
    b.load_state_dict(a.state_dict())
    return a, b


def images(n, channels):
    torch.manual_seed(1)
    return (torch.rand(n, channels, 12, 12, dtype=torch.float64) > 0.7).double()  # binary, like Omniglot


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("norm", ["batch", "task"])
def test_folded_block_equals_plain_block_with_gradients(channels, norm):
    folded, reference = twin_blocks(channels, norm)
    assert foldable(folded[0], folded[1])
    x = images(6, channels)
    y_folded, y_plain = folded(x), plain(reference, x)
    torch.testing.assert_close(y_folded, y_plain)
    target = torch.randn_like(y_plain)
    (y_folded * target).sum().backward()
    (y_plain * target).sum().backward()
    for (name, p), q in zip(folded.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    if norm == "batch":
        for name, buffer in folded[1].named_buffers():
            torch.testing.assert_close(buffer, dict(reference[1].named_buffers())[name], msg=name)


def test_running_statistics_and_evaluation_mode_match():
    folded, reference = twin_blocks(1, "batch")
    folded[1].momentum = reference[1].momentum = None  # the cumulative average
    for seed in range(3):
        torch.manual_seed(seed)
        x = images(4, 1) * torch.rand(1).item()
        folded(x), plain(reference, x)
    torch.testing.assert_close(folded[1].running_var, reference[1].running_var)
    torch.testing.assert_close(folded[1].running_mean, reference[1].running_mean)
    folded.eval(), reference.eval()
    x = images(5, 1)
    torch.testing.assert_close(folded(x), plain(reference, x))


def test_second_order_gradients_match():
    """MAML differentiates through an inner gradient: the fold must give the same Hessian terms."""
    folded, reference = twin_blocks(1, "task")
    x = images(5, 1)

    def meta_gradient(block):
        inner = block(x).pow(2).mean()
        (g,) = torch.autograd.grad(inner, block[0].weight, create_graph=True)
        outer = (block(x) * 0.1).sum() + g.pow(2).sum()
        return torch.autograd.grad(outer, [block[0].weight, block[1].weight])

    for a, b in zip(meta_gradient(folded), meta_gradient(reference)):
        torch.testing.assert_close(a, b)


def test_reference_rows_take_statistics_from_the_support_only():
    folded, reference = twin_blocks(1, "task")
    x = images(8, 1)
    with reference_rows(3):
        y_folded, y_plain = folded(x), plain(reference, x)
    torch.testing.assert_close(y_folded, y_plain)
    # and the queries (rows 3..) do not change the support's statistics
    with reference_rows(3):
        changed = folded(torch.cat([x[:3], 1 - x[3:]]))
    torch.testing.assert_close(changed[:3], y_folded[:3])


def test_one_channel_output_is_channels_last_when_asked():
    """A one-channel input fits both layouts; the folded convolution must not fall back to the
    default one (the max-pool after it is ~12x slower there)."""
    block = conv_block(1, 8, pool=False, norm="batch")
    x = torch.rand(4, 1, 12, 12)
    assert block(x, channels_last=True).is_contiguous(memory_format=torch.channels_last)
    assert not block(x).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(block(x, channels_last=True), block(x))


def test_wide_inputs_are_not_folded():
    block = conv_block(64, 8, norm="batch")
    assert not foldable(block[0], block[1])
    x = torch.rand(2, 64, 6, 6)
    torch.testing.assert_close(block(x), plain(block, x))
    assert F.relu(torch.zeros(1)).item() == 0
