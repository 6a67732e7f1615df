"""Santoro et al.'s sequential protocol: instance counting, the evaluator's bookkeeping, the command."""

from pathlib import Path

import torch
import torch.nn.functional as F
from conftest import synthetic_dataset

from kshot.cli import main
from kshot.engine.instances import evaluate_instances, instance_numbers
from kshot.learners import SequenceLearner

REPO = Path(__file__).resolve().parents[1]


def test_instance_numbers_count_each_class_showing():
    labels = torch.tensor([[2, 0, 2, 1, 0, 2]])
    assert instance_numbers(labels, 3).tolist() == [[1, 1, 2, 1, 2, 3]]


class PerfectMemory(SequenceLearner):
    """Remembers every (input, label) pair it is told, one step late, and answers a repeated class
    from memory; a class it has not been told yet gets label 0."""

    def __init__(self, way: int):
        super().__init__()
        self.way = way

    def sequence_logits(self, inputs, labels):
        b, t = labels.shape
        logits = torch.zeros(b, t, self.way)
        for i in range(b):
            for s in range(t):
                # the class mean images differ in where the block is: nearest earlier item, label seen
                earlier = [(inputs[i, r].float() - inputs[i, s].float()).abs().sum() for r in range(s)]
                guess = labels[i, min(range(s), key=lambda r: earlier[r])] if s else 0
                if s and min(earlier) > 0.5 * inputs[i, s].float().abs().sum():
                    guess = 0  # nothing like it yet
                logits[i, s] = F.one_hot(torch.as_tensor(guess), self.way)
        return logits


def test_the_evaluator_scores_each_instance_of_each_class():
    dataset = synthetic_dataset(classes=8, per_class=6)
    result = evaluate_instances(PerfectMemory(4), dataset, way=4, instances=3, episodes=6, progress=False)
    assert sorted(result.accuracy) == [1, 2, 3] and result.episodes == 6
    # a second or third showing is always answered from memory; a first one only when its label is 0
    assert result.accuracy[2] == 100 and result.accuracy[3] == 100 and result.ci95[2] == 0
    assert result.accuracy[1] == 25  # each episode shows label 0 first exactly once among its 4 classes


def test_instances_refuses_a_model_that_reads_no_sequences(capsys):
    checkpoint = REPO / "checkpoints" / "protonet-omniglot-1shot.safetensors"
    assert main(["instances", str(checkpoint), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not read labelled sequences" in err and "kshot eval" in err
