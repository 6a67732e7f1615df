import pytest
import torch

from kshot.engine.build import build_learner
from kshot.errors import ConfigError
from kshot.learners.base import class_means
from kshot.learners.protonet import squared_euclidean


def learner(**method_args):
    return build_learner("protonet", "conv4", {"in_channels": 1}, method_args).eval()


def test_squared_euclidean_matches_cdist():
    a, b = torch.randn(7, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    assert torch.allclose(squared_euclidean(a, b), torch.cdist(a, b) ** 2)


def test_class_means_handles_unequal_shots():
    f = torch.tensor([[1.0, 0], [3.0, 0], [0, 4.0]])
    assert torch.allclose(class_means(f, torch.tensor([0, 0, 1]), 2), torch.tensor([[2.0, 0], [0, 4.0]]))


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_logits_shape_and_swapping_support_classes_swaps_predictions(distance):
    net = learner(distance=distance)
    support, query = torch.rand(5 * 2, 1, 28, 28), torch.rand(7, 1, 28, 28)
    labels = torch.arange(5).repeat_interleave(2)
    with torch.no_grad():
        logits = net.adapt(support, labels, 5)(query)
        swapped = labels.clone()
        swapped[labels == 0], swapped[labels == 3] = 3, 0
        logits_swapped = net.adapt(support, swapped, 5)(query)
    assert logits.shape == (7, 5)
    assert torch.allclose(logits[:, [3, 1, 2, 0, 4]], logits_swapped, atol=1e-5)
    assert not torch.allclose(logits[:, 0], logits[:, 3])  # depends on the support


def test_query_equal_to_a_prototype_is_classified_as_it():
    net = learner()
    support = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        pred = net.adapt(support, torch.arange(4), 4)(support).argmax(1)
    assert torch.equal(pred, torch.arange(4))


def test_unknown_distance_rejected():
    with pytest.raises(ConfigError, match="bad option for method 'protonet'.*euclidean"):
        learner(distance="manhattan")
