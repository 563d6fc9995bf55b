"""End to end on the production path: `airflow dags test sfpd_incidents_daily` with
SFPD_WAREHOUSE=bigquery, extracting from the replay server into fake-gcs-server, loading and
MERGEing in bqemulator, and building the dbt project with dbt-bigquery: the DAG's wiring of the
production path (GCSHook, BigQueryHook, the Cosmos profile from the GCP connection). What the
load does on BigQuery, a rerun included, is tests/integration/test_warehouse_bigquery.py."""

from __future__ import annotations

import json

import pytest

from sfpd.window import rolling_window
from sfpd_dev.local import anchor_for
from sfpd_dev.replay import rows_in
from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import RUN_DATE, dags_test
from tests.emulators.servers import PROJECT, bigquery_client, storage_client

pytestmark = pytest.mark.slow
BUCKET = "sfpd-e2e-lake"


@pytest.fixture(scope="module")
def env(airflow_home_env, emulators):
    storage_client(emulators["gcs"]).create_bucket(BUCKET)
    gcp = {
        "conn_type": "google_cloud_platform",
        "extra": {"is_anonymous": True, "project": PROJECT},
    }
    return {
        **airflow_home_env,
        "SFPD_WAREHOUSE": "bigquery",
        "SFPD_GCP_PROJECT": PROJECT,
        "SFPD_LAKE_URI": f"gs://{BUCKET}/lake",
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(gcp),
        "STORAGE_EMULATOR_HOST": emulators["gcs"].endpoint,
        "BIGQUERY_EMULATOR_HOST": emulators["bq"].endpoint,
        # the tests' own dbt profile for the emulator, which cannot take contracts' DDL
        "SFPD_DBT_PROFILES_YML": str(PROJECT_ROOT / "tests" / "emulators" / "profiles.yml"),
        "SFPD_DBT_ENFORCE_CONTRACTS": "false",
    }


def query(emulators, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in bigquery_client(emulators["bq"]).query(sql).result()]


def test_daily_dag_on_gcs_and_bigquery(env, emulators, replay_server):
    window = rolling_window(anchor_for(RUN_DATE))
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, window.soql_where())}

    dags_test(env)

    blobs = [b.name for b in storage_client(emulators["gcs"]).list_blobs(BUCKET)]
    folder = "lake/wg3w-h783/windows/2018-11-01_2019-01-01/"
    report = "lake/wg3w-h783/reports/sfpd_report_2018-11-01_2019-01-01.html"
    assert blobs == [report, folder + "part-00000.parquet", folder + "rejects.parquet"]
    html = storage_client(emulators["gcs"]).bucket(BUCKET).blob(report).download_as_text()
    assert "9,752 reports" in html and 'id="chart-neighborhood_by_day"' in html
    raw_sql = f"SELECT * FROM `{PROJECT}.sfpd_raw.incidents` ORDER BY row_id"
    raw = query(emulators, raw_sql)
    assert [row[0] for row in raw] == sorted(expected)  # exactly the window, row_id unique
    mart_table = f"`{PROJECT}.sfpd_marts.rpt_daily_reports_by_district`"
    mart = query(emulators, f"SELECT SUM(offence_count), COUNT(*) FROM {mart_table}")
    assert mart[0][0] == len(expected) and mart[0][1] > 0
