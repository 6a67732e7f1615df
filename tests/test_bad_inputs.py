"""Bad input gets one line that names the problem and the fix, exit status 2, no traceback, and
nothing saved is changed. Each case is a row of docs/bad-inputs.md."""

import shutil

import pytest
from enroll_fixtures import face_png, flat_png, save_model
from safetensors.torch import save_file

from kshot.cli import main

MAML = "checkpoints/maml-omniglot-5w1s.safetensors"


def damaged(png: bytes) -> bytes:
    """A PNG whose image data is overwritten: the header reads, the pixels do not."""
    data = bytearray(png)
    data[60:120] = b"\xff" * 60
    return bytes(data)


@pytest.fixture
def files(tmp_path):
    made = {
        "corrupt": damaged(face_png(1)),
        "truncated": face_png(1)[:80],
        "text": b"a text file, not a photo",
        "empty": b"",
        "uniform": flat_png(64),
        "huge": flat_png(5000),  # few bytes, too many pixels
        "good": face_png(2),
    }
    for name, data in made.items():
        (tmp_path / f"{name}.png").write_bytes(data)
    save_file({"x": __import__("torch").zeros(1)}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "run").mkdir()
    shutil.copy(save_model(tmp_path / "m"), tmp_path / "run" / "last.safetensors")
    return tmp_path


CASES = {
    # enrollment and identification of image files
    "corrupt image": (["enroll", "bob", "{d}/corrupt.png"], "corrupt.png: corrupt image"),
    "truncated image": (["enroll", "bob", "{d}/truncated.png"], "truncated.png: corrupt image"),
    "not an image": (["enroll", "bob", "{d}/text.png"], "text.png: not an image Pillow can read"),
    "empty file": (["enroll", "bob", "{d}/empty.png"], "empty.png: the file is empty"),
    "uniform image": (["identify", "{d}/uniform.png"], "uniform.png: the image is one flat colour"),
    "huge image": (["enroll", "bob", "{d}/huge.png"], "5000x5000 pixels is over the limit of 4096"),
    # options
    "unknown method": (["train", "--out", "{d}/o", "--method", "nope"], "unknown method 'nope'; choose one of"),
    "misspelt method option": (
        ["eval", MAML, "--method-arg", "tset_steps=3"],
        "unknown option(s) tset_steps for method 'maml'; its options:",
    ),
    "bad method value": (["eval", MAML, "--method-arg", "test_steps=-3"], "test_steps must be >= 0"),
    "option changing weights": (["eval", MAML, "--method-arg", "way=3"], "change the shape of this maml model"),
    "bad channels": (["train", "--out", "{d}/o", "--channels", "2"], "channels must be 1 (grey) or 3 (colour)"),
    "zero way": (["train", "--out", "{d}/o", "--way", "0"], "way must be at least 1"),
    "unknown data set": (["train", "--out", "{d}/o", "--dataset", "nosuch"], "unknown data set 'nosuch'"),
    "unknown preset": (["train", "--out", "{d}/o", "--config", "nosuch"], "no preset of that name; presets:"),
    # checkpoints
    "not a checkpoint": (["eval", "{d}/text.png"], "not a readable safetensors checkpoint"),
    "foreign safetensors": (["eval", "{d}/foreign.safetensors"], "not a kshot checkpoint (no kshot metadata)"),
    "run with only last": (["eval", "{d}/run"], "has no best.safetensors yet"),
    "wrong kind for enrollment": (
        ["enroll", "--store", "{d}/s2.db", "--model", MAML, "bob", "{d}/good.png"],
        "is a maml model; enrollment needs a metric learner",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line_and_exit_2(case, files, capsys):
    args, message = CASES[case]
    args = [a.format(d=files) for a in args]
    if args[0] in ("enroll", "identify") and "--store" not in args:
        args[1:1] = ["--store", str(files / "s.db"), "--model", str(files / "m.safetensors")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    store = files / "s.db"
    if store.exists():  # a refused enrollment leaves no trace
        from kshot.enroll import EmbeddingStore

        assert EmbeddingStore(store).classes() == []
