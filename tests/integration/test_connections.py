"""The pipeline's connections to Google (sfpd.connections) against a server on 127.0.0.1 that
answers as Google does when a permission is missing: the task fails at once, naming the
permission, the bucket and the role to grant, after one request (no retry grants a role)."""

from __future__ import annotations

import json

import pytest

from sfpd.compat import AirflowFailException
from sfpd.config import Settings
from sfpd.connections import refuse_bad_locations
from tests.conftest import PROJECT_ROOT
from tests.socrata_recorded import Answer, ScriptedServer

FORBIDDEN = json.loads((PROJECT_ROOT / "tests/fixtures/gcp-iam/forbidden.json").read_text())


def google_403(message: str, reason: str) -> Answer:
    """Google's JSON error body (its shape: the recorded upload's, forbidden.json's source)."""
    error = {"code": 403, "message": message,
             "errors": [{"message": message, "domain": "global", "reason": reason}]}  # fmt: skip
    return Answer(403, json.dumps({"error": error}).encode(), {"Content-Type": "application/json"})


def test_a_missing_permission_fails_the_task_at_once_naming_the_role_to_grant(monkeypatch):
    (case,) = [
        c for c in FORBIDDEN["missing_permission"] if c["permission"] == "storage.buckets.get"
    ]
    message = case["said"].split(": ", 1)[1]  # Google's words, without the client's prefix
    routes = {"/storage/v1/b/sfpd-lake": [google_403(message, "forbidden")]}
    gcp = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(gcp))
    settings = Settings.from_env(
        {"SFPD_WAREHOUSE": "bigquery", "SFPD_GCP_PROJECT": "sfpd-prod",
         "SFPD_LAKE_URI": "gs://sfpd-lake/sfpd"}
    )  # fmt: skip
    with ScriptedServer(routes) as google:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", google.url)
        with pytest.raises(AirflowFailException) as refused:
            refuse_bad_locations(settings)
    said = str(refused.value)
    assert "lacks the IAM permission storage.buckets.get. To fix, grant " in said
    assert "roles/storage.legacyBucketReader on the bucket gs://sfpd-lake to it" in said
    assert said.endswith(message)
    assert [(r.method, r.path) for r in google.requests] == [("GET", "/storage/v1/b/sfpd-lake")]
