"""Training under torchrun: two CPU ranks (gloo) end with the weights one process reaches on the
same tasks, for a metric method and a gradient method, and a resumed two-rank run continues
exactly."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kshot.engine import checkpoint

TINY = ["--way", "3", "--shot", "1", "--query", "2", "--meta-batch", "2", "--image-size", "28"]
TINY += ["--val-split", "none", "--backbone-arg", "hidden=8", "--backbone-arg", "out_channels=8"]
TINY += ["--threads", "1", "--quiet", "--log-every", "1"]
# Some of a metric learner's parameters have a true gradient of zero (a bias before BatchNorm; a
# BatchNorm shift that moves every embedding alike): they receive rounding noise, which Adam
# scales up to full-size steps, different in every summation order. Plain SGD keeps noise noise.
PLAIN_SGD = ["--optimizer", "sgd", "--lr", "0.5"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """12 classes of 5 noisy greyscale images, each class a bright block in its own place."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for c in range(12):
        (root / f"c{c}").mkdir()
        for i in range(5):
            image = rng.integers(0, 60, (28, 28), dtype=np.uint8)
            image[2 * c : 2 * c + 8, 4:20] = 220
            Image.fromarray(image).save(root / f"c{c}" / f"{i}.png")
    return root


def run(args, tmp_path, ranks: int = 1):
    env = {**os.environ, "KSHOT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "kshot.cli"]
    if ranks > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
        launcher += ["-m", "kshot.cli"]
    done = subprocess.run(launcher + ["train", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(run_dir):
    tensors, meta = checkpoint.load(run_dir / "best.safetensors")
    # BatchNorm running statistics are averaged over ranks, not accumulated task after task.
    return {k: v for k, v in tensors.items() if "running_" not in k and "num_batches" not in k}, meta


def assert_same_weights(a, b):
    (wa, ma), (wb, mb) = weights(a), weights(b)
    assert wa.keys() == wb.keys() and ma["episode"] == mb["episode"]
    for k in wa:
        assert np.allclose(wa[k].numpy(), wb[k].numpy(), atol=2e-5), k


@pytest.mark.parametrize(
    "method_args",
    [
        ["--method", "protonet", "--episodes", "4", *PLAIN_SGD],
        ["--method", "maml", "--episodes", "3", "--query", "2", "--lr", "0.001"],
    ],
    ids=["protonet", "maml"],
)
def test_two_ranks_reach_the_weights_of_one_process(folder, tmp_path, method_args):
    common = ["--dataset", "folder", "--data-dir", str(folder), *TINY, *method_args]
    run([*common, "--out", str(tmp_path / "one")], tmp_path)
    two = run([*common, "--out", str(tmp_path / "two")], tmp_path, ranks=2)
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    assert two.stdout.count('"episode"') == 1  # rank 0 alone reports
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert len(log) == int(method_args[method_args.index("--episodes") + 1])  # rank 0 alone logs


def test_a_two_rank_run_resumes_where_it_stopped(folder, tmp_path):
    common = ["--dataset", "folder", "--data-dir", str(folder), *TINY, "--method", "protonet", *PLAIN_SGD]
    run([*common, "--episodes", "4", "--out", str(tmp_path / "whole")], tmp_path)
    run([*common, "--episodes", "2", "--out", str(tmp_path / "parts")], tmp_path, ranks=2)
    resumed = run([*common, "--episodes", "4", "--resume", "--out", str(tmp_path / "parts")], tmp_path, ranks=2)
    assert "resuming" in resumed.stderr and "at episode 2" in resumed.stderr
    assert_same_weights(tmp_path / "whole", tmp_path / "parts")


def test_an_uneven_meta_batch_is_refused_in_one_line(folder, tmp_path):
    common = ["--dataset", "folder", "--data-dir", str(folder), *TINY, "--method", "protonet", "--episodes", "2"]
    common[common.index("--meta-batch") + 1] = "3"
    env = {**os.environ, "KSHOT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "kshot.cli"]
    done = subprocess.run(
        launcher + ["train", *common, "--out", str(tmp_path / "x")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "--meta-batch 3 does not split evenly between 2 processes" in done.stderr
    assert "kshot/engine/" not in done.stderr  # no traceback through kshot (torchrun adds its own report)
