"""Few-shot sine regression: the task family, resumable training, MAML vs the pretrained baseline, the CLI."""

import json
import math

import pytest
import torch

from kshot.cli import main
from kshot.errors import CheckpointError
from kshot.regression import RegressionRun, SinusoidTasks, evaluate_adaptation, train_regressor


def test_tasks_follow_the_papers_distribution_and_are_reproducible():
    b = SinusoidTasks(seed=3).batch(7, tasks=500, shots=5, queries=10)
    assert b.support_x.shape == (500, 5, 1) and b.query_y.shape == (500, 10, 1)
    assert b.amplitude.min() >= 0.1 and b.amplitude.max() <= 5.0
    assert b.phase.min() >= 0 and b.phase.max() <= math.pi
    assert b.support_x.min() >= -5 and b.query_x.max() <= 5
    expected = b.amplitude.view(-1, 1, 1) * torch.sin(b.support_x - b.phase.view(-1, 1, 1))
    assert torch.allclose(b.support_y, expected)
    again = SinusoidTasks(seed=3).batch(7, tasks=500, shots=5, queries=10)
    assert torch.equal(again.query_x, b.query_x)
    assert not torch.equal(SinusoidTasks(seed=3).batch(8, 500, 5, 10).query_x, b.query_x)


def test_resumed_training_equals_an_uninterrupted_one(tmp_path):
    straight, _ = train_regressor(RegressionRun("maml", 5, iterations=40, meta_batch=4), tmp_path / "a", progress=False)
    train_regressor(RegressionRun("maml", 5, iterations=20, meta_batch=4), tmp_path / "b", progress=False)
    resumed, _ = train_regressor(RegressionRun("maml", 5, iterations=40, meta_batch=4), tmp_path / "b", progress=False)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(CheckpointError, match="other settings"):
        train_regressor(RegressionRun("maml", 5, iterations=40, meta_batch=8), tmp_path / "b", progress=False)


def test_maml_adapts_better_than_the_pretrained_network():
    torch.set_num_threads(2)
    results = {}
    for kind in ("maml", "pretrained"):
        net, _ = train_regressor(RegressionRun(kind, 10, iterations=300), progress=False)
        results[kind] = {r.steps: r for r in evaluate_adaptation(net, 10, [0, 1], tasks=600)}
    maml, pre = results["maml"], results["pretrained"]
    assert maml[1].mse < maml[0].mse  # one step helps the meta-learned initialisation
    assert maml[1].mse + maml[1].ci95 < pre[1].mse - pre[1].ci95  # and beats the baseline clearly


def test_cli_writes_rows_and_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    record, png = tmp_path / "rows.jsonl", tmp_path / "sine.png"
    assert (
        main(
            [
                "sinusoid",
                "--out",
                str(tmp_path / "run"),
                "--shots",
                "5",
                "--iterations",
                "20",
                "--test-tasks",
                "30",
                "--record",
                str(record),
                "--plot",
                str(png),
                "--quiet",
            ]
        )
        == 0
    )
    rows = [json.loads(l) for l in record.read_text().splitlines()]
    assert {(r["method"], r["steps"]) for r in rows} == {
        ("maml", 1),
        ("maml", 10),
        ("pretrained", 1),
        ("pretrained", 10),
    }
    assert all(r["metric"] == "mse" and r["episodes"] == 30 and r["value"] > 0 for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
