"""The dbt project's Cosmos configuration (sfpd.cosmos_dbt): the profile per warehouse and per
kind of GCP connection, and dbt's virtualenv on Composer."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from sfpd.config import ConfigError, Settings
from sfpd.dbt_profile import DBT_THREADS, GoogleCloudConnectionProfileMapping, profile_config
from tests.conftest import PROJECT_ROOT

BIGQUERY = {
    "SFPD_WAREHOUSE": "bigquery",
    "SFPD_GCP_PROJECT": "my-project",
    "SFPD_LAKE_URI": "gs://my-bucket/sfpd",
    "SFPD_BQ_LOCATION": "EU",
}


def test_duckdb_profile_is_the_checked_in_profiles_yml():
    config = profile_config(Settings.from_env({}))
    assert config.target_name == "duckdb"
    assert config.profiles_yml_filepath.name == "profiles.yml"
    assert config.profiles_yml_filepath.exists()


def test_bigquery_profile_maps_the_gcp_connection_with_threads_and_location():
    config = profile_config(Settings.from_env(BIGQUERY))
    mapping = config.profile_mapping
    # the kind of credentials (key file, key JSON, default): below
    assert isinstance(mapping, GoogleCloudConnectionProfileMapping)
    assert mapping.conn_id == "google_cloud_default"
    assert mapping.profile_args == {
        "project": "my-project",
        "dataset": "sfpd",
        "location": "EU",
        "threads": DBT_THREADS,
    }


def test_a_profiles_yml_of_your_own_replaces_the_connections_profile(tmp_path):
    own = tmp_path / "profiles.yml"
    config = profile_config(Settings.from_env({**BIGQUERY, "SFPD_DBT_PROFILES_YML": str(own)}))
    assert config.profile_mapping is None
    assert (config.profiles_yml_filepath, config.target_name) == (own, "bigquery")
    with pytest.raises(ConfigError, match="SFPD_DBT_PROFILES_YML must be an absolute path"):
        Settings.from_env({"SFPD_DBT_PROFILES_YML": "profiles.yml"})


KEY_JSON = {
    "type": "service_account",
    "project_id": "sfpd-test",
    "private_key_id": "abc123",
    "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
    "client_email": "dbt@sfpd-test.iam.gserviceaccount.com",
}


def rendered_profile(monkeypatch, extra: dict) -> tuple[dict, GoogleCloudConnectionProfileMapping]:
    """The dbt profile (one output) rendered for a GCP connection with ``extra``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCP_UNDER_TEST",
        json.dumps({"conn_type": "google_cloud_platform", "extra": extra}),
    )
    settings = Settings.from_env(
        {"SFPD_WAREHOUSE": "bigquery", "SFPD_LAKE_URI": "gs://lake/sfpd",
         "SFPD_GCP_PROJECT": "sfpd-test", "SFPD_GCP_CONN_ID": "gcp_under_test"}
    )  # fmt: skip
    config = profile_config(settings)
    mapping = config.profile_mapping
    assert isinstance(mapping, GoogleCloudConnectionProfileMapping)
    contents = yaml.safe_load(mapping.get_profile_file_contents("sfpd", "bigquery"))
    return contents["sfpd"]["outputs"]["bigquery"], mapping


def test_a_key_file_connection_gives_dbt_the_key_file(monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(KEY_JSON))
    output, mapping = rendered_profile(monkeypatch, {"key_path": str(key)})
    assert output["method"] == "service-account"
    assert output["keyfile"] == str(key)
    assert (output["project"], output["location"]) == ("sfpd-test", "US")
    assert type(mapping.chosen).__name__ == "GoogleCloudServiceAccountFileProfileMapping"


def test_a_key_json_connection_gives_dbt_the_key_json_with_secrets_in_env_vars(monkeypatch):
    output, mapping = rendered_profile(monkeypatch, {"keyfile_dict": json.dumps(KEY_JSON)})
    assert output["method"] == "service-account-json"
    assert output["keyfile_json"]["client_email"] == KEY_JSON["client_email"]
    # the private key goes through an env var, never into the profiles.yml on disk
    assert KEY_JSON["private_key"] not in json.dumps(output)
    assert KEY_JSON["private_key"] in mapping.env_vars.values()


def test_a_keyless_connection_uses_oauth_default_credentials(monkeypatch):
    output, mapping = rendered_profile(monkeypatch, {})
    assert output["method"] == "oauth"
    assert "keyfile" not in output and "keyfile_json" not in output
    assert mapping.env_vars == {}


def test_the_mapping_reads_no_connection_until_a_task_renders_the_profile(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GCP_UNDER_TEST", raising=False)
    mapping = GoogleCloudConnectionProfileMapping("gcp_under_test", {"project": "p"})
    assert mapping.mock_profile["method"] == "oauth"  # parse time: no connection needed
    assert "chosen" not in vars(mapping)
    # rendering reads the connection, here missing: AirflowNotFoundException from Airflow 3.2;
    # Airflow 3.1 cannot look a connection up outside a task at all (no supervisor to ask)
    with pytest.raises(Exception) as caught:  # its type differs by version: below
        _ = mapping.profile
    assert type(caught.value).__name__ in ("AirflowNotFoundException", "ImportError")
    assert re.search(r"conn_id `gcp_under_test` isn't defined|SUPERVISOR_COMMS", str(caught.value))


def test_the_composer_dbt_virtualenv_gets_the_dbt_pins(tmp_path):
    from cosmos.constants import ExecutionMode

    from sfpd.cosmos_dbt import _execution
    from sfpd_dev.targets import pins

    settings = Settings.from_env(
        {"SFPD_WAREHOUSE": "bigquery", "SFPD_LAKE_URI": "gs://lake/sfpd",
         "SFPD_GCP_PROJECT": "sfpd-project", "SFPD_DBT_EXECUTION_MODE": "virtualenv",
         "SFPD_DBT_VIRTUALENV_DIR": str(tmp_path)}
    )  # fmt: skip
    config, _, operator_args = _execution(settings)
    assert config.execution_mode == ExecutionMode.VIRTUALENV
    assert str(config.virtualenv_dir) == str(tmp_path)
    requirements = pins("\n".join(operator_args["py_requirements"]))
    assert set(requirements) == {"dbt-core", "dbt-bigquery", "dbt-duckdb"}
    assert requirements == pins((PROJECT_ROOT / "include/dbt/requirements.txt").read_text())
