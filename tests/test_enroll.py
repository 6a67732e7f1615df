"""Enrollment without retraining: the store, the CLI and the HTTP service."""

import sqlite3

import numpy as np
import pytest
from enroll_fixtures import face_png, flat_png, save_model

from kshot.cli import main
from kshot.enroll import Enroller, StoreError
from kshot.enroll.service_core import UploadError


@pytest.fixture
def model(tmp_path):
    return save_model(tmp_path / "model")


def test_enroll_then_identify_the_same_and_unknown_faces(tmp_path, model):
    e = Enroller(tmp_path / "s.db", model)
    e.enroll("alice", [face_png(1)])
    e.enroll("bob", [face_png(2), face_png(3)])
    results = e.identify([face_png(1), face_png(3)], top_k=2)
    assert [r["name"] for r in results] == ["alice", "bob"]
    assert (
        len(results[0]["candidates"]) == 2
        and results[0]["candidates"][0]["score"] >= results[0]["candidates"][1]["score"]
    )
    # a threshold above every score makes the answer "unknown"
    strict = e.identify([face_png(99)], threshold=1e9)
    assert strict[0]["name"] == "unknown" and strict[0]["candidates"][0]["name"] in ("alice", "bob")


def test_a_restart_keeps_the_store(tmp_path, model):
    Enroller(tmp_path / "s.db", model).enroll("alice", [face_png(1)])
    again = Enroller(tmp_path / "s.db", model)
    assert again.store.classes()[0]["name"] == "alice"
    assert again.identify([face_png(1)])[0]["name"] == "alice"


def test_another_models_embeddings_are_refused_then_reembedded(tmp_path, model):
    Enroller(tmp_path / "s.db", model).enroll("alice", [face_png(1)])
    other = save_model(tmp_path / "other", seed=1)
    with pytest.raises(StoreError, match="reembed"):
        Enroller(tmp_path / "s.db", other)
    assert main(["classes", "--store", str(tmp_path / "s.db"), "--model", str(other), "reembed"]) == 0
    assert Enroller(tmp_path / "s.db", other).identify([face_png(1)])[0]["name"] == "alice"


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path, model):
    e = Enroller(tmp_path / "s.db", model)
    e.enroll("alice", [face_png(1)])
    with pytest.raises(UploadError):  # the second image is corrupt: nothing of the request is stored
        e.enroll("bob", [face_png(2), b"\x89PNG\r\n\x1a\n garbage"])
    with pytest.raises(RuntimeError), e.store.transaction() as db:  # a crash half-way through a transaction
        db.execute("INSERT INTO classes (name, created) VALUES ('carol', 0)")
        raise RuntimeError("power cut")
    assert [c["name"] for c in e.store.classes()] == ["alice"]
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_uploads_are_checked(tmp_path, model):
    e = Enroller(tmp_path / "s.db", model, max_bytes=10_000, max_side=100)
    with pytest.raises(UploadError) as err:
        e.enroll("x", [b"hello, not an image"])
    assert err.value.status == 415
    with pytest.raises(UploadError) as err:
        e.enroll("x", [flat_png(200)])  # 200 px side > 100
    assert err.value.status == 413 and "200x200" in str(err.value)
    with pytest.raises(UploadError) as err:
        e.enroll("x", [face_png(1)[:60]])  # truncated PNG
    assert err.value.status == 400
    assert e.store.classes() == []


def test_prototype_matching_equals_the_learners_own_head(tmp_path, model):
    import torch

    e = Enroller(tmp_path / "s.db", model)
    for i in range(5):
        e.enroll(f"c{i}", [face_png(10 * i), face_png(10 * i + 1)])
    names, emb, labels = e.store.snapshot()
    query = torch.from_numpy(e.embed([face_png(3), face_png(41)]))
    expected = e.learner.head(torch.from_numpy(emb), torch.from_numpy(labels), len(names))(query)
    got = e.scorer()[1](query)
    assert torch.allclose(got, expected, atol=1e-4)


def test_cli_round_trip(tmp_path, model, capsys):
    store = str(tmp_path / "s.db")
    for i, name in enumerate(["alice", "bob"]):
        image = tmp_path / f"{name}.png"
        image.write_bytes(face_png(i))
        assert main(["enroll", "--store", store, "--model", str(model), name, str(image)]) == 0
    assert main(["identify", "--store", store, "--model", str(model), str(tmp_path / "bob.png")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split(": ")[1].startswith("bob ")
    assert main(["classes", "--store", store, "rename", "bob", "robert"]) == 0
    assert main(["classes", "--store", store, "delete", "alice"]) == 0
    capsys.readouterr()
    assert main(["classes", "--store", store]) == 0
    assert capsys.readouterr().out.startswith("robert\t1 example(s)")
    assert main(["classes", "--store", store, "delete", "nobody"]) == 2
    assert "no class named 'nobody'" in capsys.readouterr().err
    assert main(["identify", "--store", store, "--model", str(model), str(tmp_path / "missing.png")]) == 2


def test_faiss_index_finds_the_same_nearest_classes_as_the_exact_product(tmp_path, model):
    pytest.importorskip("faiss")
    exact = Enroller(tmp_path / "s.db", model)
    rng = np.random.default_rng(0)
    dim = int(np.prod(exact.feature_shape))
    exact.store.bulk_enroll([f"c{i}" for i in range(2000)], rng.normal(size=(2000, dim)).astype(np.float32))
    exact.enroll("alice", [face_png(1)])
    approximate = Enroller(tmp_path / "s.db", model, index="faiss")
    queries = [face_png(1), face_png(5), face_png(6)]
    a, b = exact.identify(queries, top_k=3), approximate.identify(queries, top_k=3)
    assert [r["name"] for r in a] == [r["name"] for r in b] and a[0]["name"] == "alice"
    for ra, rb in zip(a, b):
        assert abs(ra["score"] - rb["score"]) < 1e-2 * max(1.0, abs(ra["score"]))
    approximate.store.delete("alice")  # a write rebuilds the index
    assert approximate.identify([face_png(1)])[0]["name"] != "alice"


def test_delete_removes_the_photos_and_embeddings_from_the_file(tmp_path, model):
    e = Enroller(tmp_path / "s.db", model)
    photo = face_png(5)
    e.enroll("alice", [photo])
    e.enroll("bob", [face_png(6)])
    embedding = e.store.snapshot()[1][0].tobytes()
    on_disk = lambda: b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    assert photo[40:200] in on_disk() and embedding in on_disk()
    e.store.delete("alice")
    assert photo[40:200] not in on_disk() and embedding not in on_disk()
    assert [c["name"] for c in e.store.classes()] == ["bob"]
