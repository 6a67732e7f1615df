"""The exact half-memory prototype search answers what the float32 scan answers."""

import pytest
import torch

from kshot.enroll.prototype_search import DOT_ERROR, HalfPrecisionSearch


def full_scan(queries, prototypes, k):
    return (-(queries[:, None, :] - prototypes[None]).pow(2).sum(-1)).topk(k, dim=1)


def relu_features(n, d=256, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, d, generator=g)) * scale


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_equals_the_float32_scan(k):
    prototypes, queries = relu_features(3000), relu_features(20, seed=1)
    search = HalfPrecisionSearch(prototypes, candidates=32)
    values, indices = search.top(queries, k)
    reference = full_scan(queries, prototypes, k)
    assert torch.equal(indices, reference.indices)
    assert torch.allclose(values, reference.values, rtol=1e-5, atol=1e-3)


def test_near_ties_across_the_candidates_fall_back_to_the_full_scan():
    """500 near-copies of one prototype: the candidates cannot hold them all, the bound cannot
    prove the order, and the full scan answers, still exactly."""
    base = relu_features(1)
    g = torch.Generator().manual_seed(2)
    prototypes = torch.cat([base + 0.1 * torch.rand(500, 256, generator=g), relu_features(1000, seed=3)])
    query = base + 0.1 * torch.rand(1, 256, generator=g)
    search = HalfPrecisionSearch(prototypes, candidates=16)
    values, indices = search.top(query, 5)
    assert search.fallbacks == 1
    assert torch.equal(indices, full_scan(query, prototypes, 5).indices)


def test_float16_dot_products_stay_within_the_bound_the_proof_uses():
    """Inputs of at most unit length, products accumulated in float32: error below 2^-9."""
    for d in (64, 1024):
        p = relu_features(2000, d)
        q = relu_features(50, d, seed=4)
        p, q = p / p.norm(dim=1).max(), q / q.norm(dim=1, keepdim=True)
        error = ((q.half() @ p.half().T).double() - q.double() @ p.double().T).abs().max()
        assert error < DOT_ERROR / 4, d


def test_fewer_classes_than_candidates_and_large_magnitudes():
    prototypes = relu_features(10, scale=1e4)  # squared norms far beyond float16's range
    queries = relu_features(4, seed=5, scale=1e4)
    values, indices = HalfPrecisionSearch(prototypes).top(queries, 20)
    reference = full_scan(queries, prototypes, 10)
    assert values.shape == (4, 10) and torch.equal(indices, reference.indices)
    big = HalfPrecisionSearch(relu_features(500, scale=1e4), candidates=8)
    values, indices = big.top(queries, 3)
    assert torch.isfinite(values).all() and torch.equal(indices, full_scan(queries, big.full, 3).indices)
