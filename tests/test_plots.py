import pytest
from PIL import Image

from kshot.engine.build import build_learner
from kshot.errors import KshotError

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
from kshot.plots.tsne import plot_tsne  # noqa: E402


def test_tsne_png_of_one_alphabet(omniglot, tmp_path):
    net = build_learner("protonet", "conv4", {"in_channels": 1, "hidden": 8, "out_channels": 8})
    info = plot_tsne(net, omniglot["test"], tmp_path / "t.png", alphabet="Tengwar", classes=3, shot=2)
    assert info["points"] == 60 and info["classes"] == 3 and 0 <= info["misclassified"] <= 60
    with Image.open(tmp_path / "t.png") as img:
        assert img.format == "PNG" and img.width > 300


def test_unknown_alphabet_lists_the_choices(omniglot, tmp_path):
    net = build_learner("protonet", "conv4", {"in_channels": 1, "hidden": 8, "out_channels": 8})
    with pytest.raises(KshotError, match="choose one of: .*Tengwar"):
        plot_tsne(net, omniglot["test"], tmp_path / "t.png", alphabet="Klingon")
