"""`--device`: every method computes where its parameters are, and the engine brings tasks there.

No GPU is needed: PyTorch's "meta" device computes shapes only and refuses any operation that
mixes it with CPU tensors, so a learner that makes a tensor on the CPU (where a GPU run would
then fail) fails here the same way."""

import pytest
import torch
from test_method_contract import make, toy_task

from kshot.engine.devices import device_of, resolve_device
from kshot.engine.tasks import Episodes
from kshot.errors import ConfigError
from kshot.learners import METHODS

# Reading a value back (`.item()`, `if tensor:`) is fine on a real device but impossible on meta;
# protonet-fake does so once, to start its fake-class logit from the data on the first episode.
READS_A_VALUE = "cannot be called on meta tensors"


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_and_adapts_on_the_device_of_its_parameters(method):
    learner, _ = make(method)
    learner.to("meta").train()
    task = toy_task().to("meta")
    try:
        if learner.trains_on == "batches":
            loss = learner.batch_logits(task.query).logsumexp(1).mean()
        else:
            loss, logits = learner.loss(task)
            assert logits.device.type == "meta"
        loss.backward()
        assert all(p.grad is None or p.grad.device.type == "meta" for p in learner.parameters())
        learner.eval()
        scores = learner.adapt(task.support, task.support_labels, task.way, task.generator())(task.query)
        assert scores.device.type == "meta" and scores.shape == (len(task.query_labels), task.way)
    except RuntimeError as e:
        if READS_A_VALUE not in str(e) or method != "protonet-fake":
            raise


def test_a_task_moves_every_tensor_and_stays_itself_where_it_is():
    task = toy_task()
    assert task.to("cpu") is task
    moved = task.to("meta")
    tensors = [moved.support, moved.support_labels, moved.query, moved.query_labels, moved.classes]
    assert all(t.device.type == "meta" for t in tensors)
    assert (moved.way, moved.seed) == (task.way, task.seed)


def test_episodes_hand_the_learner_its_tasks_on_its_device(monkeypatch):
    from kshot.data.dataset import ClassIndexedDataset

    data = ClassIndexedDataset.from_class_list([torch.rand(5, 1, 28, 28) for _ in range(8)], list("abcdefgh"), "toy")
    learner, _ = make("protonet")
    learner.to("meta")
    seen = []

    def meta_step(tasks):
        seen.extend(tasks)
        return 0.0, torch.zeros(len(tasks), len(tasks[0].query_labels), 4, device="meta")

    monkeypatch.setattr(learner, "meta_step", meta_step)
    with pytest.raises(RuntimeError, match=READS_A_VALUE):  # the step's accuracy, read after meta_step
        Episodes(data, 4, 2, 3).step(learner, 0, 2)
    assert len(seen) == 2 and all(t.support.device.type == "meta" for t in seen)
    assert device_of(learner).type == "meta"


def test_a_device_that_is_not_here_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device cuda: this torch .* sees no CUDA GPU; .* or use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="--device gpu0: not a device name; use cpu, cuda, cuda:N or mps"):
        resolve_device("gpu0")
    with pytest.raises(ConfigError, match="kshot runs on cpu, cuda or mps"):
        resolve_device("xla")
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
