import json

from kshot.cli import main


def test_train_then_eval_records_a_row(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--way",
        "5",
        "--shot",
        "1",
        "--query",
        "2",
        "--episodes",
        "4",
        "--val-every",
        "2",
        "--val-episodes",
        "5",
        "--backbone-arg",
        "hidden=8",
        "--backbone-arg",
        "out_channels=8",
        "--quiet",
        "--no-download",
    ]
    assert main(args) == 0
    # a second train into the same directory without --resume must not overwrite it
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    record = tmp_path / "results.jsonl"
    assert (
        main(
            [
                "eval",
                str(out / "best.safetensors"),
                "--data-dir",
                str(data_dir),
                "--way",
                "5",
                "--shot",
                "1",
                "--episodes",
                "10",
                "--record",
                str(record),
                "--quiet",
                "--no-download",
            ]
        )
        == 0
    )
    row = json.loads(record.read_text())
    assert row["method"] == "protonet" and row["episodes"] == 10 and 0 <= row["accuracy"] <= 100
    assert row["command"].startswith("kshot eval") and "ci95" in row and "machine" in row


def test_config_file_and_flags(data_dir, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'way = 5\nshot = 1\nquery = 2\nepisodes = 2\nval_split = "none"\n'
        "backbone_args = {hidden = 8, out_channels = 8}\n"
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "r"),
                "--data-dir",
                str(data_dir),
                "--episodes",
                "3",
                "--quiet",
                "--no-download",
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["config"]["episodes"] == 3 and meta["config"]["way"] == 5 and meta["config"]["val_split"] is None


def test_eval_of_a_non_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "x.safetensors"
    bad.write_text("hello")
    assert main(["eval", str(bad)]) == 2
    assert "not a readable safetensors checkpoint" in capsys.readouterr().err


def test_unknown_method_lists_the_known_ones(data_dir, tmp_path, capsys):
    assert (
        main(["train", "--out", str(tmp_path / "r"), "--method", "nope", "--data-dir", str(data_dir), "--no-download"])
        == 2
    )
    from kshot.learners import METHODS

    said = capsys.readouterr().err
    assert f"unknown method 'nope'; choose one of: {', '.join(METHODS.names())}" in said
    assert "protonet" in said and "reptile" in said


def test_datasets_lists_omniglot(data_dir, capsys):
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"found in {data_dir / 'omniglot'}" in out
    for name in ("folder", "mnist", "omniglot", "orl"):  # every registered data set is listed
        assert f"\n{name}: " in out


def test_pairs_command_learns_mnist_verification(data_dir, tmp_path, capsys):
    record = tmp_path / "r.jsonl"
    assert (
        main(
            [
                "pairs",
                "--data-dir",
                str(data_dir),
                "--steps",
                "300",
                "--test-pairs",
                "2000",
                "--quiet",
                "--no-download",
                "--record",
                str(record),
                "--out",
                str(tmp_path / "twin"),
            ]
        )
        == 0
    )
    row = json.loads(record.read_text())
    assert row["accuracy"] > 80  # chance is 50%; the full run reaches about 98%
    from kshot.engine.build import load_learner

    net, meta = load_learner(tmp_path / "twin")  # a run directory: its best model
    assert meta["method"] == "siamese" and meta["backbone"] == "mlp"


def test_eval_overrides_test_time_options_and_refuses_weight_changes(data_dir, tmp_path, capsys):
    from kshot.engine.build import load_learner

    out = tmp_path / "maml"
    assert (
        main(
            [
                "train",
                "--method",
                "maml",
                "--out",
                str(out),
                "--data-dir",
                str(data_dir),
                "--way",
                "5",
                "--shot",
                "1",
                "--query",
                "1",
                "--meta-batch",
                "1",
                "--episodes",
                "1",
                "--val-split",
                "none",
                "--backbone-arg",
                "hidden=4",
                "--backbone-arg",
                "out_channels=4",
                "--quiet",
                "--no-download",
            ]
        )
        == 0
    )
    ckpt = out / "best.safetensors"
    learner, _ = load_learner(ckpt, method_overrides={"test_steps": 7})
    assert learner.test_steps == 7 and load_learner(ckpt)[0].test_steps == 3
    record = tmp_path / "results.jsonl"
    assert (
        main(
            [
                "eval",
                str(ckpt),
                "--data-dir",
                str(data_dir),
                "--episodes",
                "2",
                "--query",
                "1",
                "--method-arg",
                "test_steps=1",
                "--record",
                str(record),
                "--quiet",
                "--no-download",
            ]
        )
        == 0
    )
    assert json.loads(record.read_text())["method_overrides"] == {"test_steps": 1}
    assert (
        main(
            [
                "eval",
                str(ckpt),
                "--data-dir",
                str(data_dir),
                "--way",
                "3",
                "--method-arg",
                "way=3",
                "--quiet",
                "--no-download",
            ]
        )
        == 2
    )
    assert "change the shape" in capsys.readouterr().err
