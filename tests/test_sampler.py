import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kshot.data import ClassIndexedDataset, EpisodeSampler, episode_sampler
from kshot.errors import DataError


def toy_dataset(sizes):
    # item value = its own index, so every sampled item identifies itself
    parts = [torch.arange(sum(sizes[:c]), sum(sizes[: c + 1])).float().unsqueeze(1) for c in range(len(sizes))]
    return ClassIndexedDataset.from_class_list(parts, [f"c{c}" for c in range(len(sizes))], "toy")


@pytest.mark.parametrize("sizes", [[20] * 30, [7, 12, 9, 30, 5, 8, 6, 11]])
def test_episode_shape_classes_and_disjointness(sizes):
    ds = toy_dataset(sizes)
    way, shot, query = 5, 2, 3
    sampler = episode_sampler(ds, way, shot, query, episodes=50, seed=3)
    labels = ds.labels
    for i in range(50):
        task = sampler.task(ds, i)
        assert task.support.shape == (way * shot, 1) and task.query.shape == (way * query, 1)
        s_ids, q_ids = task.support[:, 0].long(), task.query[:, 0].long()
        assert len(set(s_ids.tolist()) | set(q_ids.tolist())) == way * (shot + query)  # disjoint, no repeats
        assert len(set(task.classes.tolist())) == way
        # episode label j is dataset class classes[j], for support and query alike
        assert torch.equal(labels[s_ids], task.classes[task.support_labels])
        assert torch.equal(labels[q_ids], task.classes[task.query_labels])
        assert torch.equal(task.support_labels, torch.arange(way).repeat_interleave(shot))


def test_same_seed_same_episodes_other_seed_other_episodes():
    ds = toy_dataset([20] * 40)
    a = [x.tolist() for x in episode_sampler(ds, 5, 1, 5, 20, seed=7)]
    b = [x.tolist() for x in episode_sampler(ds, 5, 1, 5, 20, seed=7)]
    c = [x.tolist() for x in episode_sampler(ds, 5, 1, 5, 20, seed=8)]
    assert a == b and a != c
    # episode i does not depend on the episodes before it (what makes resuming exact)
    assert episode_sampler(ds, 5, 1, 5, 20, seed=7).indices(13).tolist() == a[13]


def test_usable_as_dataloader_batch_sampler():
    ds = toy_dataset([10] * 12)
    sampler = episode_sampler(ds, 4, 1, 2, episodes=3, seed=0)
    batches = list(DataLoader(ds, batch_sampler=sampler))
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (12, 1) and len(set(y.tolist())) == 4


def test_too_many_ways_is_a_clear_error():
    with pytest.raises(DataError, match=r"20-way episodes need 20 classes but toy has only 8"):
        episode_sampler(toy_dataset([20] * 8), 20, 1, 1, 1)


def test_class_too_small_names_the_class_and_counts():
    ds = toy_dataset([20, 20, 3, 20, 20])
    with pytest.raises(DataError, match=r"1 class of toy has fewer than shot\+query = 1\+5 = 6 items: 'c2' has 3"):
        episode_sampler(ds, 5, 1, 5, 1)


def test_bad_episode_shape_rejected():
    with pytest.raises(DataError, match="invalid episode shape"):
        EpisodeSampler([5, 5], way=0, shot=1, query=1, episodes=1)


# ---- episodes within one group of classes (Lake et al.'s within-alphabet challenge) ---------
def grouped_dataset():
    """Alphabet A has 6 characters, B has 5, C only 2."""
    names = [f"A/c{i}" for i in range(6)] + [f"B/c{i}" for i in range(5)] + ["C/c0", "C/c1"]
    per = [torch.full((4, 1), float(k)) for k in range(len(names))]
    return ClassIndexedDataset.from_class_list(per, names, "grouped", {})


def test_within_group_episodes_draw_every_class_from_one_group():
    ds = grouped_dataset()
    sampler = episode_sampler(ds, 5, 1, 2, 200, seed=3, within_groups=True)
    seen = set()
    for i in range(200):
        classes, _ = sampler.draw(i)
        groups = {ds.class_names[c].split("/")[0] for c in classes}
        assert len(groups) == 1 and len(set(classes.tolist())) == 5
        seen |= groups
    assert seen == {"A", "B"}  # C has too few characters for a 5-way episode
    task = sampler.task(ds, 7)  # the items are those of the drawn classes
    assert torch.equal(task.support[:, 0].long(), task.classes)


def test_within_group_episodes_refuse_data_without_big_enough_groups():
    with pytest.raises(DataError, match="no group of grouped has 7 classes"):
        episode_sampler(grouped_dataset(), 7, 1, 2, 10, within_groups=True)
    with pytest.raises(DataError, match="drop --within-alphabet"):
        episode_sampler(toy_dataset([4] * 8), 3, 1, 2, 10, within_groups=True)


def test_a_share_of_within_group_episodes_mixes_both_kinds_and_leaves_share_one_unchanged():
    ds = grouped_dataset()
    mixed = episode_sampler(ds, 3, 1, 2, 400, seed=5, within_groups=True, group_share=0.5)
    within = [len({ds.class_names[c].split("/")[0] for c in mixed.draw(i)[0]}) == 1 for i in range(400)]
    # Episodes of 3 classes drawn from all 13 fall in one alphabet by chance about 9% of the time.
    assert 0.45 < sum(within) / 400 < 0.65
    full = episode_sampler(ds, 3, 1, 2, 50, seed=5, within_groups=True)
    same = episode_sampler(ds, 3, 1, 2, 50, seed=5, within_groups=True, group_share=1.0)
    assert all(np.array_equal(full.draw(i)[1], same.draw(i)[1]) for i in range(50))
