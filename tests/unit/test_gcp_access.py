"""The permission contract (sfpd.gcp_access) against what Google states: each role it grants
carries the permission it is granted for (the roles' lists: tests/fixtures/gcp-iam), every
permission is in docs/deploy.md's table, and Google's own 403 messages become a message naming
the permission, the resource and the role to grant. That a run asks for nothing else is
tests/e2e/test_daily_dag_bigquery.py (its calls recorded on the way to the emulators)."""

from __future__ import annotations

import json
import re

import pytest
from google.api_core.exceptions import BadRequest, Forbidden

from sfpd.gcp_access import PERMISSIONS, refusal
from tests.conftest import PROJECT_ROOT

IAM = PROJECT_ROOT / "tests" / "fixtures" / "gcp-iam"
ROLES = json.loads((IAM / "roles.json").read_text())
FORBIDDEN = json.loads((IAM / "forbidden.json").read_text())


def forbidden(said: str) -> Forbidden:
    """google-api-core's exception for a 403, as str() shows Google's words."""
    code, _, message = said.partition(" ")
    assert code == "403"
    return Forbidden(message)


@pytest.mark.parametrize("permission", sorted(PERMISSIONS))
def test_each_role_granted_carries_the_permission_it_is_granted_for(permission):
    assert permission in ROLES[PERMISSIONS[permission].role]


def test_the_deploy_guide_grants_every_permission_of_the_contract():
    guide = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    rows = {
        match["permission"]: match["role"]
        for match in re.finditer(
            r"^\| `(?P<permission>[a-z]+\.\w+\.\w+)` \|.*?\| `(?P<role>roles/[\w.]+)`", guide, re.M
        )
    }
    assert rows == {name: grant.role for name, grant in PERMISSIONS.items()}


@pytest.mark.parametrize(
    "case", FORBIDDEN["missing_permission"], ids=lambda case: case["permission"]
)
def test_a_missing_permission_is_named_with_the_role_to_grant(case):
    refused = refusal(forbidden(case["said"]), "sfpd-prod", "sfpd-lake", "sfpd_raw")
    grant = PERMISSIONS[case["permission"]]
    said = str(refused)
    assert f"lacks the IAM permission {case['permission']}." in said
    assert f"grant {grant.role} on " in said
    if case["resource"]:
        assert f"Google refused the call on {case['resource']}:" in said
    if "gs://" in grant.on:
        assert "on the bucket gs://sfpd-lake " in said
    if "{dataset}" in grant.on and case["resource"] and not case["resource"].startswith("project"):
        dataset = case["resource"].split(":")[1].split(".")[0]
        assert f"on the dataset {dataset} " in said  # the one Google named
    assert "\n" not in said and said.endswith(" ".join(case["said"].split()[3:]))


@pytest.mark.parametrize("case", FORBIDDEN["other_403"], ids=lambda case: case["said"][-30:])
def test_a_403_that_names_no_permission_is_left_to_the_retries(case):
    assert refusal(forbidden(case["said"]), "sfpd-prod", "sfpd-lake", "sfpd_raw") is None


def test_any_other_error_is_left_as_it_is():
    said = "Permission bigquery.tables.get denied on table p:d.t"  # words of a 403, status 400
    assert refusal(BadRequest(said), "sfpd-prod", "sfpd-lake", "sfpd_raw") is None
