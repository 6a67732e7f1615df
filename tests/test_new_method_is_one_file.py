"""A new method is one file: the README's 1-nearest-neighbour learner, dropped into a copy of the
package, is trained by `kshot train --method nearest` and covered by the contract suite, with
no other edit."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def readme_learner() -> str:
    """The README's example file, as written there."""
    blocks = re.findall(r"```python\n(# kshot/learners/nearest\.py\n.*?)```", (REPO / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "README.md should show kshot/learners/nearest.py once"
    return blocks[0]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_dropped_in_learner_trains_and_is_covered_by_the_contract_suite(tmp_path):
    copy = tmp_path / "clone"
    shutil.copytree(REPO / "kshot", copy / "kshot", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kshot" / "learners" / "nearest.py").write_text(readme_learner())
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in range(4):  # four classes of four 28x28 grey images
        (images / f"class{c}").mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 40, (28, 28)).astype(np.uint8)
            pixels[:, 7 * c : 7 * c + 7] = 220
            Image.fromarray(pixels).save(images / f"class{c}" / f"{i}.png")

    where = run(["-c", "import kshot, kshot.learners as l; print(kshot.__file__); print('nearest' in l.METHODS)"], copy)
    assert where.stdout.split() == [str(copy / "kshot" / "__init__.py"), "True"], where.stderr

    trained = run(
        [
            "-m",
            "kshot.cli",
            "train",
            "--method",
            "nearest",
            "--dataset",
            "folder",
            "--data-dir",
            str(images),
            "--train-split",
            "all",
            "--val-split",
            "none",
            "--way",
            "3",
            "--shot",
            "1",
            "--query",
            "2",
            "--episodes",
            "5",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        copy,
    )
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "best.safetensors").exists()

    suite = run(
        [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "tests" / "test_method_contract.py"),
            "-k",
            "nearest",
        ],
        copy,
    )
    assert suite.returncode == 0, suite.stdout[-3000:]
    passed = re.search(r"\b(\d+) passed", suite.stdout)
    assert passed and int(passed.group(1)) >= 6 and "failed" not in suite.stdout, suite.stdout[-2000:]
