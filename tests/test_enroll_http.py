"""The HTTP service: a read and a write token, 4xx on bad uploads, round trips, the threshold."""

import pytest

pytest.importorskip("fastapi")
from enroll_fixtures import face_png, flat_png, save_model  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from kshot.cli import main  # noqa: E402
from kshot.enroll import Enroller  # noqa: E402
from kshot.enroll.http import create_app  # noqa: E402

TOKEN = {"Authorization": "Bearer s3cret"}
READ = {"Authorization": "Bearer look"}


@pytest.fixture
def client(tmp_path):
    enroller = Enroller(tmp_path / "s.db", save_model(tmp_path / "m"), max_bytes=20_000, max_side=300)
    return TestClient(create_app(enroller, "s3cret", "look"))


def files(*blobs):
    return [("images", (f"f{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def test_enroll_identify_rename_delete_round_trip(client):
    assert client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN).status_code == 201
    r = client.post("/classes/alice/examples", files=files(face_png(2)), headers=TOKEN)
    assert r.json() == {"name": "alice", "examples": 2}
    client.post("/classes", data={"name": "bob"}, files=files(face_png(3)), headers=TOKEN)
    found = client.post("/identify", files=files(face_png(3)), headers=READ).json()
    assert found[0]["name"] == "bob" and found[0]["image"] == "f0.png"
    listing = client.get("/classes", headers=READ).json()
    assert [(c["name"], c["examples"]) for c in listing] == [("alice", 2), ("bob", 1)]
    image = client.get(f"/examples/{listing[0]['example_ids'][0]}/image", headers=READ)
    assert image.status_code == 200 and image.content == face_png(1)
    assert client.patch("/classes/bob", json={"name": "robert"}, headers=TOKEN).json()["name"] == "robert"
    assert client.delete("/classes/robert", headers=TOKEN).status_code == 200
    assert [c["name"] for c in client.get("/classes", headers=TOKEN).json()] == ["alice"]
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "kshot enrollment service"


def test_names_and_photos_need_the_read_token_and_changes_the_write_token(client):
    client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert client.get("/classes", headers=headers).status_code == 401
        assert client.get("/examples/1/image", headers=headers).status_code == 401
        assert client.post("/identify", files=files(face_png(1)), headers=headers).status_code == 401
        assert client.get("/settings", headers=headers).status_code == 401
    for headers in ({}, READ):  # the read token cannot change anything
        r = client.post("/classes", data={"name": "eve"}, files=files(face_png(1)), headers=headers)
        assert r.status_code == 401 and "write token" in r.json()["detail"]
        assert client.delete("/classes/alice", headers=headers).status_code == 401
        assert client.patch("/classes/alice", json={"name": "x"}, headers=headers).status_code == 401
        assert client.put("/settings/threshold", json={"threshold": 1.0}, headers=headers).status_code == 401
    assert [c["name"] for c in client.get("/classes", headers=READ).json()] == ["alice"]


@pytest.mark.parametrize(
    "blob, status, words",
    [
        (b"just text", 415, "not an image"),
        (face_png(1)[:70], 400, "corrupt"),
        (flat_png(400), 413, "400x400"),
        (flat_png(100), 400, "one flat colour"),
        (b"\x00" * 30_000, 413, "over the limit"),
    ],
    ids=["not-an-image", "truncated", "too-many-pixels", "uniform", "too-many-bytes"],
)
def test_bad_uploads_get_a_4xx_with_a_message(client, blob, status, words):
    r = client.post("/classes", data={"name": "x"}, files=files(blob), headers=TOKEN)
    assert r.status_code == status and words in r.json()["detail"]
    assert client.get("/classes", headers=READ).json() == []


def test_conflicts_and_unknown_classes(client):
    client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN)
    client.post("/classes", data={"name": "bob"}, files=files(face_png(3)), headers=TOKEN)
    assert client.post("/classes", data={"name": "alice"}, files=files(face_png(2)), headers=TOKEN).status_code == 409
    assert client.patch("/classes/alice", json={"name": "bob"}, headers=TOKEN).status_code == 409
    assert client.delete("/classes/nobody", headers=TOKEN).status_code == 404
    assert client.post("/classes/nobody/examples", files=files(face_png(2)), headers=TOKEN).status_code == 404
    assert client.get("/examples/999/image", headers=READ).status_code == 404


def test_the_threshold_is_set_by_score_or_reset_and_changes_answers(client):
    client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN)
    assert client.get("/settings", headers=READ).json()["threshold"] is None  # an uncalibrated test model
    assert client.post("/identify", files=files(face_png(9)), headers=READ).json()[0]["name"] == "alice"
    r = client.put("/settings/threshold", json={"threshold": 1e9}, headers=TOKEN)
    assert r.json()["threshold"] == 1e9
    assert client.post("/identify", files=files(face_png(9)), headers=READ).json()[0]["name"] == "unknown"
    r = client.put("/settings/threshold", json={"confidence": 0.9}, headers=TOKEN)
    assert r.status_code == 400 and "no open-set calibration" in r.json()["detail"]
    assert client.put("/settings/threshold", json={"default": True}, headers=TOKEN).json()["threshold"] is None
    assert client.put("/settings/threshold", json={}, headers=TOKEN).status_code == 400


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "example.org"])
def test_the_server_refuses_to_listen_beyond_loopback_without_both_tokens(tmp_path, host, capsys, monkeypatch):
    monkeypatch.delenv("KSHOT_TOKEN", raising=False)
    monkeypatch.delenv("KSHOT_READ_TOKEN", raising=False)
    args = ["serve", "--store", str(tmp_path / "s.db"), "--model", str(tmp_path / "m"), "--host", host]
    assert main([*args, "--token", "w"]) == 2
    assert "set both tokens" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened
