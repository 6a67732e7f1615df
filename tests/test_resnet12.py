"""ResNet-12: its shape, DropBlock, and that every registered method can use it as its backbone."""

import pytest
import torch

from kshot.engine.build import build_learner
from kshot.learners import METHODS
from kshot.nets import BACKBONES, output_shape
from kshot.nets.resnet12 import DropBlock

TINY = {"widths": [4, 6, 8, 8]}


def test_the_standard_widths_give_640_features_and_relation_keeps_maps():
    net = BACKBONES.get("resnet12")(in_channels=3)
    assert output_shape(net, [3, 84, 84]) == (640,)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(12.4e6, rel=0.01)  # as in the literature
    maps = BACKBONES.get("resnet12")(in_channels=3, pooled_blocks=2, flatten=False, **TINY)
    assert output_shape(maps, [3, 84, 84]) == (8, 21, 21)


def test_dropblock_drops_square_blocks_in_training_only_and_keeps_the_mean():
    drop = DropBlock(0.3, 3)
    x = torch.ones(8, 4, 11, 11)
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(x)
    zero = (y == 0).float().mean().item()
    assert 0.15 < zero < 0.45 and abs(y.mean().item() - 1) < 1e-4  # about the rate; rescaled to keep the mean


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs_on_resnet12(method):
    torch.manual_seed(0)
    cls = METHODS.get(method)
    learner = build_learner(
        method,
        "resnet12",
        {**cls.backbone_needs, "in_channels": 1, **TINY},
        {},
        way=3,
        input_shape=[1, 28, 28],
        base_classes=3,
    )
    support, query = torch.rand(6, 1, 28, 28), torch.rand(4, 1, 28, 28)
    logits = learner.adapt(support, torch.arange(3).repeat(2), 3)(query)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
