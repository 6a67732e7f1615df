"""What is particular to each metric method (the contract every method keeps is test_method_contract.py)."""

import pytest
import torch

from kshot.data.sampler import Task
from kshot.engine.build import build_learner
from kshot.learners.matching import QueryAttentionLSTM
from kshot.learners.triplet import triplet_loss

SMALL = {"in_channels": 1, "hidden": 8, "out_channels": 8}
OPTIONS = {"relation": {"channels": 8, "hidden": 4}}


def make(method):
    return build_learner(method, "conv4", SMALL, OPTIONS.get(method, {}), input_shape=[1, 28, 28])


def toy_task(way=4, shot=2, query=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    # each class is a distinct bright square; items add noise
    base = torch.zeros(way, 1, 28, 28)
    for c in range(way):
        base[c, :, 6 * c : 6 * c + 6, 6 * c : 6 * c + 6] = 1
    items = lambda n: base.repeat_interleave(n, 0) + 0.1 * torch.rand(way * n, 1, 28, 28, generator=g)
    labels = lambda n: torch.arange(way).repeat_interleave(n)
    return Task(items(shot), labels(shot), items(query), labels(query), way, torch.arange(way))


def test_matching_fce_reads_the_whole_support_set():
    net = build_learner("matching", "conv4", SMALL, {"fce": True, "fce_steps": 2}, input_shape=[1, 28, 28]).eval()
    t = toy_task()
    with torch.no_grad():
        feats, queries = net.embed(t.support), net.embed(t.query)
        full = net.head(feats, t.support_labels, 4)(queries)
        # dropping one support item changes every query's logits (context embeddings), not only its class's
        fewer = net.head(feats[1:], t.support_labels[1:], 4)(queries)
    assert not torch.allclose(full[:, 1:], fewer[:, 1:], atol=1e-6)


def test_matching_query_attention_is_an_lstm_cell_read_step_by_step():
    """The query LSTM computes its input projection once; step by step it is nn.LSTMCell's function
    (paper, appendix A.2: the hidden state plus the read-out as the state, a skip from the query),
    with the same gradients."""
    torch.manual_seed(0)
    attention = QueryAttentionLSTM(6, steps=3).double()
    query = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    support = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)

    def by_cell(q, s):
        h = c = r = torch.zeros_like(q)
        for _ in range(3):
            h_hat, c = attention.cell(q, (h + r, c))
            h = h_hat + q
            r = torch.softmax(h @ s.T, dim=1) @ s
        return h

    ours, reference = attention(query, support), by_cell(query, support)
    assert torch.allclose(ours, reference, atol=1e-12)
    inputs = [query, support, *attention.parameters()]
    weights = torch.randn_like(ours)
    for a, b in zip(
        torch.autograd.grad((ours * weights).sum(), inputs), torch.autograd.grad((reference * weights).sum(), inputs)
    ):
        assert torch.allclose(a, b, atol=1e-12)


def test_relation_uses_summed_class_features_and_mse():
    net = make("relation").eval()
    t = toy_task(shot=3)
    with torch.no_grad():
        feats = net.embed(t.support)
        summed = feats.view(4, 3, *feats.shape[1:]).sum(1)
        direct = net.head(summed, torch.arange(4), 4)(net.embed(t.query))
        via_support = net.head(feats, t.support_labels, 4)(net.embed(t.query))
    assert torch.allclose(direct, via_support, atol=1e-5)
    assert ((via_support >= 0) & (via_support <= 1)).all()  # sigmoid relation scores


@pytest.mark.parametrize("training", [False, True])
def test_relation_scores_all_pairs_as_the_module_scores_concatenated_maps(training):
    """The split first convolution gives what the relation module gives each concatenated
    (class, query) pair, in training (BatchNorm over the pairs) and at test time."""
    torch.manual_seed(0)
    net = make("relation").train(training)
    classes, queries = torch.randn(5, 8, 7, 7), torch.randn(7, 8, 7, 7)
    pairs = torch.cat(
        [classes.unsqueeze(0).expand(7, -1, -1, -1, -1), queries.unsqueeze(1).expand(-1, 5, -1, -1, -1)], 2
    )
    one_by_one = net.relation(pairs.flatten(0, 1)).view(7, 5)
    assert torch.allclose(net.relation.score_all_pairs(classes, queries), one_by_one, atol=1e-5)


def test_siamese_scores_a_class_by_its_best_support_item():
    net = make("siamese").eval()
    s, q = torch.randn(6, 8), torch.randn(2, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = net.head(s, labels, 3)(q)
    pairs = net.pair_logits(q, s)
    assert torch.allclose(logits, pairs.view(2, 3, 2).amax(2))


def test_triplet_loss_counts_exactly_the_violating_triplets():
    a = torch.tensor([[0.0, 0.0]])
    others = torch.tensor([[1.0, 0.0], [0.0, 3.0], [0.0, 0.5]])  # positive, far negative, near negative
    labels = torch.tensor([0, 1, 1])
    # d(a,p) = 1, d(a,n1) = 9, d(a,n2) = 0.25: only n2 violates, by 1 - 0.25 + 0.2 = 0.95; mean over 2 triplets
    assert triplet_loss(a, torch.tensor([0]), others, labels, 0.2).item() == pytest.approx(0.95 / 2)


def test_relation_keeps_its_training_shot_and_scales_other_shots_to_it():
    net = make("relation").train()
    net.loss(toy_task(shot=1))  # a training step's episode: 1-shot
    assert net.trained_shot.item() == 1
    net.eval()
    t = toy_task(shot=5)
    with torch.no_grad():
        feats, queries = net.embed(t.support), net.embed(t.query)
        got = net.head(feats, t.support_labels, 4)(queries)
        means = feats.view(4, 5, *feats.shape[1:]).mean(1)  # a 1-shot model sees one map's magnitude
        expected = net.head(means, torch.arange(4), 4)(queries)
    assert torch.allclose(got, expected, atol=1e-5)
