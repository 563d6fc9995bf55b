"""Settings from the environment (sfpd.config)."""

import datetime as dt
from pathlib import Path

import pytest

from sfpd.config import ConfigError, Settings

BIGQUERY = {
    "SFPD_WAREHOUSE": "bigquery",
    "SFPD_GCP_PROJECT": "my-project",
    "SFPD_LAKE_URI": "gs://my-bucket/sfpd",
    "SFPD_BQ_LOCATION": "EU",
}


def test_defaults_are_the_embedded_warehouse_under_the_project():
    settings = Settings.from_env({"SFPD_PROJECT_ROOT": "/srv/sfpd"})
    assert settings.warehouse == "duckdb"
    assert settings.duckdb_path == Path("/srv/sfpd/data/warehouse/sfpd.duckdb")
    assert settings.lake_uri == "file:///srv/sfpd/data/lake"
    assert settings.dbt_project_dir == Path("/srv/sfpd/include/dbt")
    assert (settings.dataset_id, settings.page_size) == ("wg3w-h783", 50_000)
    assert settings.lake_retention_days == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SFPD_WAREHOUSE": "snowflake"}, "SFPD_WAREHOUSE='snowflake' is not supported"),
        ({"SFPD_DUCKDB_PATH": "relative.duckdb"}, "SFPD_DUCKDB_PATH must be an absolute path"),
        ({"SFPD_DUCKDB_PATH": ""}, "SFPD_DUCKDB_PATH must be an absolute path"),
        ({"SFPD_PAGE_SIZE": "lots"}, "SFPD_PAGE_SIZE must be a whole number"),
        ({"SFPD_PAGE_SIZE": "60000"}, "between 1 and 50000"),
        ({**BIGQUERY, "SFPD_GCP_PROJECT": ""}, "needs SFPD_GCP_PROJECT"),
        ({**BIGQUERY, "SFPD_LAKE_URI": "file:///tmp/lake"}, "SFPD_LAKE_URI=gs://bucket/prefix"),
        # DuckDB loads local files: a gs:// lake would fail in the merge, after the extract
        ({"SFPD_LAKE_URI": "gs://bucket/sfpd"}, "duckdb .* needs SFPD_WAREHOUSE=big"),
        ({"SFPD_LAKE_URI": "data/lake"}, "SFPD_LAKE_URI='data/lake' must be file:///absolute"),
        ({"SFPD_DBT_EXECUTION_MODE": "kubernetes"}, "SFPD_DBT_EXECUTION_MODE='kubernetes' is not"),
        ({**BIGQUERY, "SFPD_LAKE_URI": "gs://"}, "SFPD_LAKE_URI='gs://' names no bucket"),
        # names rendered into SQL and URLs
        ({"SFPD_RAW_SCHEMA": "raw; DROP TABLE x"}, "SFPD_RAW_SCHEMA='raw; DROP TABLE x' is not"),
        ({"SFPD_RAW_SCHEMA": "sfpd-raw"}, "letters, digits and _"),
        ({"SFPD_DATASET_ID": "wg3w-h783.json"}, "a Socrata dataset id like wg3w-h783"),
        ({**BIGQUERY, "SFPD_GCP_PROJECT": "My Project"}, "SFPD_GCP_PROJECT='My Project' is not"),
        ({"SFPD_MAX_REJECT_SHARE": "5%"}, "SFPD_MAX_REJECT_SHARE must be a number"),
        ({"SFPD_MAX_REJECT_SHARE": "2"}, "between 0 and 1"),
        ({"SFPD_LAKE_RETENTION_DAYS": "a month"}, "SFPD_LAKE_RETENTION_DAYS must be a whole"),
        ({"SFPD_LAKE_RETENTION_DAYS": "1"}, "SFPD_LAKE_RETENTION_DAYS must be at least 2"),
        ({"SFPD_TASK_RETRIES": "abc"}, "SFPD_TASK_RETRIES must be a whole number, not 'abc'"),
        ({"SFPD_TASK_RETRIES": "-1"}, "SFPD_TASK_RETRIES must be at least 0"),
        ({"SFPD_LATE_AFTER_HOURS": "3h"}, "SFPD_LATE_AFTER_HOURS must be a number"),
        ({"SFPD_STALE_AFTER_DAYS": "0"}, "SFPD_STALE_AFTER_DAYS must be at least 0.1"),
        ({"SFPD_FORCE_PULL": "maybe"}, "SFPD_FORCE_PULL='maybe' is not one of"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "read"),
    [
        (
            {"SFPD_DATASET_ID": "abcd-1234", "SFPD_RAW_SCHEMA": "Raw_2"},
            {"warehouse": "duckdb", "dataset_id": "abcd-1234", "raw_schema": "Raw_2"},
        ),
        (  # a domain-scoped project
            {**BIGQUERY, "SFPD_GCP_PROJECT": "example.com:my-project"},
            {"warehouse": "bigquery", "gcp_project": "example.com:my-project"},
        ),
        (  # a bucket without a prefix
            {**BIGQUERY, "SFPD_LAKE_URI": "gs://bucket"},
            {"warehouse": "bigquery", "lake_uri": "gs://bucket"},
        ),
    ],
)
def test_unusual_but_valid_settings_are_accepted(env, read):
    settings = Settings.from_env(env)
    assert {name: getattr(settings, name) for name in read} == read


@pytest.mark.parametrize(
    ("env", "mode", "single_writer"),
    [
        ({}, "watcher", True),  # DuckDB: one dbt build, one process opens the file
        (BIGQUERY, "local", False),  # BigQuery: a task per node, in parallel
        ({"SFPD_DBT_EXECUTION_MODE": "Local"}, "local", True),
        ({**BIGQUERY, "SFPD_DBT_EXECUTION_MODE": "watcher"}, "watcher", False),
    ],
)
def test_dbt_execution_mode_defaults_by_warehouse(env, mode, single_writer):
    settings = Settings.from_env(env)
    assert (settings.dbt_execution_mode, settings.single_writer) == (mode, single_writer)


def test_alert_settings_default_to_no_channel_and_read_lists_and_durations():
    quiet = Settings.from_env({})
    assert (quiet.alert_emails, quiet.alert_slack_conn_id, quiet.alert_apprise_conn_id) == (
        (),
        None,
        None,
    )
    assert (quiet.late_after, quiet.stale_after, quiet.task_retries) == (
        dt.timedelta(hours=3),
        dt.timedelta(days=3),
        2,
    )
    loud = Settings.from_env(
        {
            "SFPD_ALERT_EMAILS": " ops@example.org, ,data@example.org",
            "SFPD_ALERT_SLACK_CONN_ID": "slack_ops",
            "SFPD_LATE_AFTER_HOURS": "1.5",
            "SFPD_STALE_AFTER_DAYS": "7",
            "SFPD_TASK_RETRIES": "0",
        }
    )
    assert loud.alert_emails == ("ops@example.org", "data@example.org")
    assert (loud.alert_smtp_conn_id, loud.alert_slack_conn_id) == ("smtp_default", "slack_ops")
    assert (loud.late_after, loud.stale_after, loud.task_retries) == (
        dt.timedelta(minutes=90),
        dt.timedelta(days=7),
        0,
    )


def test_a_worker_whose_settings_differ_from_the_runs_is_refused_naming_each_setting():
    recorded = Settings.from_env({}).recorded()
    assert recorded["SFPD_WAREHOUSE"] == "duckdb"
    Settings.from_env({}).check_recorded(recorded, "plan_window")  # the same: no error
    worker = Settings.from_env({"SFPD_RAW_SCHEMA": "other", "SFPD_DBT_EXECUTION_MODE": "local"})
    with pytest.raises(ConfigError) as refused:
        worker.check_recorded(recorded, "plan_window")
    message = str(refused.value)
    assert "SFPD_RAW_SCHEMA is 'other' here but was 'sfpd_raw' in plan_window" in message
    assert "SFPD_DBT_EXECUTION_MODE is 'local' here but was 'watcher'" in message
    assert "SFPD_PAGE_SIZE" not in message
    # a setting a run does not depend on may differ
    Settings.from_env({"SFPD_PAGE_SIZE": "100"}).check_recorded(recorded, "plan_window")


@pytest.mark.parametrize(("days", "hours"), [("3", "72"), ("5", "120"), ("0.1", "3")])
def test_dbt_warns_of_a_silent_source_after_the_staleness_messages_threshold(days, hours):
    """sfpd.incidents' freshness (include/dbt/models/staging/sfpd/_sfpd__sources.yml) reads it."""
    settings = Settings.from_env({"SFPD_STALE_AFTER_DAYS": days})
    assert settings.dbt_env()["SFPD_STALE_AFTER_HOURS"] == hours
