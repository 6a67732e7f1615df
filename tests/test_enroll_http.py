"""The HTTP service: token on writes, 4xx on bad uploads, round trips."""

import pytest

pytest.importorskip("fastapi")
from enroll_fixtures import face_png, flat_png, save_model  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from kshot.enroll import Enroller  # noqa: E402
from kshot.enroll.http import create_app  # noqa: E402

TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def client(tmp_path):
    enroller = Enroller(tmp_path / "s.db", save_model(tmp_path / "m"), max_bytes=20_000, max_side=300)
    return TestClient(create_app(enroller, "s3cret"))


def files(*blobs):
    return [("images", (f"f{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def test_enroll_identify_delete_round_trip(client):
    assert client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN).status_code == 201
    r = client.post("/classes/alice/examples", files=files(face_png(2)), headers=TOKEN)
    assert r.json() == {"name": "alice", "examples": 2}
    client.post("/classes", data={"name": "bob"}, files=files(face_png(3)), headers=TOKEN)
    found = client.post("/identify", files=files(face_png(3))).json()
    assert found[0]["name"] == "bob"
    listing = client.get("/classes").json()
    assert [(c["name"], c["examples"]) for c in listing] == [("alice", 2), ("bob", 1)]
    image = client.get(f"/examples/{listing[0]['example_ids'][0]}/image")
    assert image.status_code == 200 and image.content == face_png(1)
    assert client.delete("/classes/bob", headers=TOKEN).status_code == 200
    assert client.get("/health").json()["classes"] == 1
    assert client.get("/openapi.json").json()["info"]["title"] == "kshot enrollment service"
    assert '<form id="enroll-form">' in client.get("/").text


def test_writes_without_the_token_are_refused(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = client.post("/classes", data={"name": "eve"}, files=files(face_png(1)), headers=headers)
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN)
    assert client.delete("/classes/alice").status_code == 401
    assert client.post("/classes/alice/examples", files=files(face_png(2))).status_code == 401
    assert [c["name"] for c in client.get("/classes").json()] == ["alice"]


@pytest.mark.parametrize(
    "blob, status, words",
    [
        (b"just text", 415, "not an image"),
        (face_png(1)[:70], 400, "corrupt"),
        (flat_png(400), 413, "400x400"),
        (b"\x00" * 30_000, 413, "over the limit"),
    ],
    ids=["not-an-image", "truncated", "too-many-pixels", "too-many-bytes"],
)
def test_bad_uploads_get_a_4xx_with_a_message(client, blob, status, words):
    r = client.post("/classes", data={"name": "x"}, files=files(blob), headers=TOKEN)
    assert r.status_code == status and words in r.json()["detail"]
    assert client.get("/classes").json() == []


def test_conflicts_and_unknown_classes(client):
    client.post("/classes", data={"name": "alice"}, files=files(face_png(1)), headers=TOKEN)
    assert client.post("/classes", data={"name": "alice"}, files=files(face_png(2)), headers=TOKEN).status_code == 409
    assert client.delete("/classes/nobody", headers=TOKEN).status_code == 404
    assert client.post("/classes/nobody/examples", files=files(face_png(2)), headers=TOKEN).status_code == 404
    assert client.get("/examples/999/image").status_code == 404
