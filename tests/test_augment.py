"""Koch et al.'s small affine distortions of characters (augment = "affine")."""

import torch
from conftest import synthetic_dataset

from kshot.data.augment import augment
from kshot.engine.config import TrainConfig
from kshot.engine.tasks import training_family
from kshot.learners.protonet import ProtoNet
from kshot.nets import BACKBONES


def stroke_images(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 13:15] = 1.0  # a vertical bar in the middle
    return x


def test_affine_distortion_moves_a_stroke_a_little_and_repeats_with_its_seed():
    x = stroke_images(64)
    a = augment(x, torch.Generator().manual_seed(3), kind="affine")
    b = augment(x, torch.Generator().manual_seed(3), kind="affine")
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.allclose(a, x, atol=1e-3)  # every image is distorted
    assert (a[0] != a[1]).any()  # each by its own draw
    # Small: the ink stays about as much (scale 0.8-1.2 per axis) and near where it was.
    ink = a.sum((1, 2, 3)) / x[0].sum()
    assert ink.min() > 0.5 and ink.max() < 1.6
    rows = torch.arange(28.0).view(1, 28, 1)
    centre = (a[:, 0] * rows).sum((1, 2)) / a[:, 0].sum((1, 2))
    assert (centre - 13.5).abs().max() < 4
    assert a[:, :, 0, 0].abs().max() < 1e-6  # the background stays background


def test_every_episode_method_can_train_on_distorted_episodes():
    data = synthetic_dataset(classes=8, per_class=6)
    family = training_family(
        ProtoNet(BACKBONES.get("conv4")(in_channels=1, hidden=8)),
        data,
        TrainConfig(way=3, shot=1, query=2, augment="affine"),
    )
    plain = training_family(
        ProtoNet(BACKBONES.get("conv4")(in_channels=1, hidden=8)), data, TrainConfig(way=3, shot=1, query=2)
    )
    distorted, original = family.tasks(0, 1)[0], plain.tasks(0, 1)[0]
    assert torch.equal(distorted.support_labels, original.support_labels)
    assert not torch.allclose(distorted.support, original.support)
