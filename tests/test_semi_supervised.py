"""Semi-supervised episodes and Prototypical Networks (Ren et al. 2018)."""

import numpy as np
import pytest
import torch
from conftest import synthetic_dataset
from torch import nn

from kshot.data import ClassIndexedDataset
from kshot.data.semi_supervised import SemiSupervisedSampler
from kshot.engine.config import TrainConfig
from kshot.engine.semi_supervised import evaluate_semi_supervised
from kshot.engine.tasks import training_family
from kshot.errors import ConfigError, DataError
from kshot.learners.base import class_means
from kshot.learners.protonet import ProtoNet
from kshot.learners.semi_protonet import SemiProtoNet
from kshot.nets import BACKBONES


def identity_learner(refine: str) -> SemiProtoNet:
    return SemiProtoNet(nn.Flatten(), refine=refine)


@pytest.mark.parametrize("refine", ["none", "soft-kmeans", "cluster", "masked"])
def test_no_unlabelled_items_give_the_supervised_prototypes(refine):
    support, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    refined = identity_learner(refine).refined_prototypes(support, labels, 3, torch.zeros(0, 4))
    assert torch.allclose(refined, class_means(support, labels, 3))


def test_soft_kmeans_pulls_a_prototype_towards_its_unlabelled_items():
    support, labels = torch.tensor([[0.0, 0.0], [4.0, 0.0]]), torch.tensor([0, 1])
    unlabelled = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # near class 0 only
    refined = identity_learner("soft-kmeans").refined_prototypes(support, labels, 2, unlabelled)
    assert refined[0, 1] > 0.5  # moved up towards the unlabelled pair
    assert torch.allclose(refined[1], support[1], atol=1e-3)  # class 1 barely shares them


def test_a_distractor_far_from_every_class_lands_in_the_distractor_cluster():
    learner = identity_learner("cluster")
    prototypes = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    near_class_0, far_from_both = torch.tensor([[9.5, 0.2]]), torch.tensor([[-9.0, -9.0]])
    w = learner.assignments(prototypes, torch.cat([near_class_0, far_from_both]))
    assert w[0, 0] > 0.98  # a class item is claimed by its class
    assert w[1].sum() < 0.01  # the distractor's weight went to the distractor cluster
    refined = learner.refined_prototypes(prototypes, torch.tensor([0, 1]), 2, far_from_both)
    assert torch.allclose(refined, prototypes, atol=1e-2)  # so it does not drag any prototype


def test_masked_refinement_masks_an_item_far_from_every_class_more_than_a_near_one():
    learner = identity_learner("masked")
    with torch.no_grad():  # a mask net whose threshold is beta = 1: items beyond the mean distance fade
        learner.mask_net[2].weight.zero_()
        learner.mask_net[2].bias.copy_(torch.tensor([0.0, 2.0]))  # log beta 0, log gamma 2
    prototypes = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    items = torch.tensor([[9.5, 0.2], [0.3, 9.8], [-20.0, -20.0]])
    w = learner.assignments(prototypes, items)
    assert w[2].sum() < 0.1 * min(w[0].sum(), w[1].sum())


def test_sampler_draws_support_and_query_from_the_labelled_share_and_unlabelled_from_the_rest():
    data = synthetic_dataset(classes=12, per_class=20)
    sampler = SemiSupervisedSampler(data, way=3, shot=1, query=1, unlabelled=4, distractors=2, label_ratio=0.1)
    labelled_pools = {c: set(sampler.starts[c] + sampler.order[c][:2]) for c in range(12)}
    for i in range(20):
        d = sampler.draw(i)
        classes = data.labels[torch.from_numpy(d.unlabelled)].numpy()
        assert len(d.unlabelled) == (3 + 2) * 4 and d.distractor.sum() == 2 * 4
        assert set(classes[~d.distractor]) == set(d.classes)  # 4 from each episode class
        assert not set(classes[d.distractor]) & set(d.classes)  # distractors come from other classes
        for c, s, q in zip(d.classes, d.support, d.query):
            assert set(s) | set(q) <= labelled_pools[c]
        assert not set(d.unlabelled) & set().union(*labelled_pools.values())


def test_sampler_with_every_item_labelled_keeps_unlabelled_apart_from_support_and_query():
    data = synthetic_dataset(classes=8, per_class=10)
    sampler = SemiSupervisedSampler(data, way=4, shot=2, query=3, unlabelled=5, distractors=0)
    d = sampler.draw(0)
    assert not set(d.unlabelled) & (set(d.support.ravel()) | set(d.query.ravel()))
    with pytest.raises(DataError, match="fewer than 11 labelled items"):
        SemiSupervisedSampler(data, way=4, shot=2, query=4, unlabelled=5)


def noisy_dataset(classes: int = 10, per_class: int = 12):
    """Classes that differ by a faint pattern under strong noise, so accuracy is far from 100%."""
    g = torch.Generator().manual_seed(0)
    per = [
        (100 + 60 * torch.rand(1, 1, 28, 28, generator=g) + 60 * torch.rand(per_class, 1, 28, 28, generator=g)).to(
            torch.uint8
        )
        for _ in range(classes)
    ]
    return ClassIndexedDataset.from_class_list(per, [f"c{c}" for c in range(classes)], "noisy")


def test_the_supervised_baseline_scores_the_same_episodes_as_refine_none():
    data = noisy_dataset()
    torch.manual_seed(0)
    encoder = BACKBONES.get("conv4")(in_channels=1, hidden=8)
    semi, plain = SemiProtoNet(encoder, refine="none"), ProtoNet(encoder)
    a = evaluate_semi_supervised(semi, data, 5, 1, 5, 4, 2, episodes=30, progress=False)
    b = evaluate_semi_supervised(plain, data, 5, 1, 5, 4, 2, episodes=30, progress=False)
    assert torch.equal(a.per_episode, b.per_episode) and a.accuracy < 95  # not saturated
    c = evaluate_semi_supervised(SemiProtoNet(encoder, refine="soft-kmeans"), data, 5, 1, 5, 4, 2, 30, progress=False)
    assert not torch.equal(a.per_episode, c.per_episode)  # the refinement changes predictions


def test_training_family_gives_unlabelled_items_only_to_a_semi_supervised_learner():
    data = synthetic_dataset(classes=12, per_class=20)
    settings = TrainConfig(way=3, shot=1, query=1, unlabelled=3, distractors=2, label_ratio=0.1)
    encoder = BACKBONES.get("conv4")(in_channels=1, hidden=8)
    family = training_family(SemiProtoNet(encoder), data, settings)
    task = family.tasks(0, 1)[0]
    assert task.unlabelled.shape == (15, 1, 28, 28) and task.distractor.sum() == 6
    with pytest.raises(ConfigError, match="cannot use unlabelled items"):
        training_family(ProtoNet(encoder), data, settings)


def test_a_semi_supervised_step_trains_the_mask_network():
    data = synthetic_dataset(classes=12, per_class=20)
    settings = TrainConfig(way=3, shot=1, query=1, unlabelled=3, distractors=2, label_ratio=0.1)
    learner = SemiProtoNet(BACKBONES.get("conv4")(in_channels=1, hidden=8), refine="masked")
    training_family(learner, data, settings).step(learner, 0, 2)
    assert learner.mask_net[2].weight.grad is not None and learner.mask_net[2].weight.grad.abs().sum() > 0
    assert np.isfinite(learner.mask_net[2].weight.grad.numpy()).all()


def test_config_refuses_distractors_without_unlabelled_items():
    with pytest.raises(ConfigError, match="set unlabelled"):
        TrainConfig(distractors=3)


def test_cli_trains_on_semi_supervised_episodes_and_scores_with_and_without_distractors(data_dir, tmp_path, capsys):
    import json

    from kshot.cli import main

    out, record = tmp_path / "run", tmp_path / "rows.jsonl"
    common = ["--data-dir", str(data_dir), "--quiet", "--no-download"]
    train = ["train", "--config", "paper-semi-protonet", "--method-arg", "refine=masked", "--out", str(out)]
    train += ["--episodes", "4", "--val-every", "2", "--val-episodes", "5", "--backbone-arg", "hidden=8"]
    assert main(train + ["--backbone-arg", "out_channels=8", *common]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_accuracy" in row for row in log)
    for distractors in ("3", "0"):
        evaluate = ["eval", str(out), "--shot", "1", "--unlabelled", "4", "--distractors", distractors]
        assert main(evaluate + ["--episodes", "10", "--record", str(record), *common]) == 0
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["unlabelled"], r["distractors"], r["query"]) for r in rows] == [(4, 3, 15), (4, 0, 15)]
    assert "4 unlabelled, 3 distractor classes" in capsys.readouterr().out
    # A model that cannot use unlabelled items is refused them in training, with the fix.
    bad = ["train", "--method", "matching", "--unlabelled", "5", "--out", str(tmp_path / "bad"), "--episodes", "2"]
    assert main(bad + common) == 2
    assert "semi-protonet" in capsys.readouterr().err
