"""The OpenAPI document describes every response the service gives: schemathesis generates
requests from it (a bounded number per operation, in process, no network) and checks each
response's status code, content type, headers and body against it, and that a schema-valid
request is never refused as malformed (422). Refusing a schema-valid upload because it is not a
usable image (400, 413, 415) is semantic and documented, so it counts as expected."""

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from enroll_fixtures import face_png, save_model  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from kshot.enroll import Enroller  # noqa: E402
from kshot.enroll.http import create_app  # noqa: E402

WRITE = {"Authorization": "Bearer s3cret"}
_scratch = Path(tempfile.mkdtemp(prefix="kshot-api-"))
_enroller = Enroller(_scratch / "s.db", save_model(_scratch / "m"))
_enroller.enroll("alice", [face_png(1)])  # so reads of classes and photos have something to return
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "404", "409", "413", "415"]
"""
)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_enroller, "s3cret", "look"), config=CONFIG)


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_openapi_document(case):
    case.call_and_validate(headers=WRITE)
