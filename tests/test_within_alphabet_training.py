"""Training episodes drawn within one alphabet (within_alphabet), as Lake et al.'s challenge tests."""

import pytest
from conftest import synthetic_dataset

from kshot.data import ClassIndexedDataset
from kshot.engine.config import TrainConfig
from kshot.engine.tasks import training_family
from kshot.errors import ConfigError, DataError
from kshot.learners import METHODS
from kshot.learners.protonet import ProtoNet
from kshot.nets import BACKBONES


def alphabets(data: ClassIndexedDataset) -> ClassIndexedDataset:
    """The same images, the classes named as characters of alphabets A, B and C (4 each)."""
    names = [f"{'ABC'[c // 4]}/char{c}" for c in range(len(data.class_names))]
    return ClassIndexedDataset.from_class_list(
        [data.items[int(data.offsets[c]) : int(data.offsets[c + 1])] for c in range(len(names))],
        names,
        data.name,
        dict(data.meta),
    )


def learner():
    return ProtoNet(BACKBONES.get("conv4")(in_channels=1, hidden=8))


def test_within_alphabet_training_draws_each_episode_from_one_alphabet_and_trains():
    data = alphabets(synthetic_dataset(classes=12, per_class=4))
    family = training_family(learner(), data, TrainConfig(way=3, shot=1, query=1, within_alphabet=1.0))
    for task in family.tasks(0, 40):
        assert len({data.class_names[c].split("/")[0] for c in task.classes.tolist()}) == 1
    plain = training_family(learner(), data, TrainConfig(way=3, shot=1, query=1))
    mixed = [t.classes.tolist() for t in plain.tasks(0, 40)]
    assert any(len({c // 4 for c in classes}) > 1 for classes in mixed)  # the default is unchanged
    model = learner()
    assert family.step(model, 0, 2).accuracy is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_within_alphabet_is_refused_where_it_cannot_apply():
    with pytest.raises(ConfigError, match=r"within_alphabet is a share of episodes, in \[0, 1\]"):
        TrainConfig(within_alphabet=1.5)
    with pytest.raises(DataError, match="within_alphabet in a training config"):
        training_family(learner(), synthetic_dataset(), TrainConfig(way=3, shot=1, query=1, within_alphabet=0.5))
    baseline = METHODS.get("baseline")
    data = alphabets(synthetic_dataset(classes=12, per_class=4))
    model = baseline(BACKBONES.get("conv4")(in_channels=1, hidden=8), input_shape=(1, 28, 28), base_classes=12)
    with pytest.raises(ConfigError, match="trains on batches, not episodes"):
        training_family(model, data, TrainConfig(within_alphabet=0.5))
