"""End to end on the production path: `airflow dags test sfpd_incidents_daily` with
SFPD_WAREHOUSE=bigquery, extracting from the replay server into fake-gcs-server, loading and
MERGEing in bqemulator, and building the dbt project with dbt-bigquery: the DAG's wiring of the
production path (GCSHook, BigQueryHook, the Cosmos profile from the GCP connection), and the
OpenLineage events it sends (a dbt task per node: the chain through staging to the marts). What
the load does on BigQuery, a rerun included, is tests/integration/test_warehouse_bigquery.py."""

from __future__ import annotations

import json
import re

import pytest

from sfpd.window import rolling_window
from sfpd_dev.local import anchor_for
from sfpd_dev.replay import rows_in
from tests.alert_servers import WebhookSink
from tests.conftest import PROJECT_ROOT, reports_of, rows_of
from tests.e2e.conftest import RUN_DATE, dags_test
from tests.e2e.test_operations import lineage_edges
from tests.emulators.servers import PROJECT, bigquery_client, storage_client

pytestmark = pytest.mark.slow
BUCKET = "sfpd-e2e-lake"


@pytest.fixture(scope="module")
def lineage():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def env(airflow_home_env, emulators, lineage):
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
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "http", "url": lineage.url, "endpoint": "api/v1/lineage"}
        ),
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "sfpd.lineage.SfpdTaskExtractor",
    }


def query(emulators, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in bigquery_client(emulators["bq"]).query(sql).result()]


@pytest.fixture(scope="module")
def ran(env):
    """The run: every task succeeds but dbt_docs (bqemulator cannot answer the catalog's
    queries: dbt writes the docs with an empty catalog, then the task fails), which fails
    alone, after the marts and the report are built."""
    return dags_test(env, succeed=False)


def test_docs_that_cannot_be_generated_fail_their_own_task_only(ran):
    states = dict(re.findall(r"^  (\S+)\s+(success|failed|skipped|upstream_failed)", ran, re.M))
    assert {task for task, state in states.items() if state != "success"} == {"dbt_docs"}
    assert states["dbt_docs"] == "failed" and "Encountered an error while generating catalog" in ran
    assert states["dbt"] == states["report"] == states["dbt_source_freshness"] == "success"


def test_daily_dag_on_gcs_and_bigquery(ran, emulators, replay_server):
    window = rolling_window(anchor_for(RUN_DATE))
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, window.soql_where())}
    blobs = [b.name for b in storage_client(emulators["gcs"]).list_blobs(BUCKET)]
    folder = "lake/wg3w-h783/windows/2018-11-01_2019-01-01/"
    report = "lake/wg3w-h783/reports/sfpd_report_2018-11-01_2019-01-01.html"
    # the docs too: dbt wrote them (its catalog without columns) before the task failed
    docs = [
        f"lake/wg3w-h783/docs/{name}" for name in ("catalog.json", "index.html", "manifest.json")
    ]
    assert blobs == [*docs, report, folder + "part-00000.parquet", folder + "rejects.parquet"]
    html = storage_client(emulators["gcs"]).bucket(BUCKET).blob(report).download_as_text()
    reports = f"{reports_of(rows_of(rolling_window(anchor_for(RUN_DATE)))):,} reports"
    assert reports in html and 'id="chart-neighborhood_by_day"' in html
    raw_sql = f"SELECT * FROM `{PROJECT}.sfpd_raw.incidents` ORDER BY row_id"
    raw = query(emulators, raw_sql)
    assert [row[0] for row in raw] == sorted(expected)  # exactly the window, row_id unique
    mart_table = f"`{PROJECT}.sfpd_marts.rpt_daily_reports_by_district`"
    mart = query(emulators, f"SELECT SUM(offence_count), COUNT(*) FROM {mart_table}")
    assert mart[0][0] == len(expected) and mart[0][1] > 0


def test_openlineage_chains_the_source_through_staging_to_the_marts(ran, lineage, replay_server):
    """BigQuery tables named as dbt's integration names them (namespace ``bigquery``), the lake
    on GCS (``gs://<bucket>``), one job per dbt node: raw → staging model → … → the fact."""
    graph = lineage_edges([json.loads(body) for body in lineage.posts])
    socrata = (f"http://127.0.0.1:{replay_server.port}", "resource/wg3w-h783")
    windows = (f"gs://{BUCKET}", "lake/wg3w-h783/windows")
    table = lambda schema, name: ("bigquery", f"{PROJECT}.{schema}.{name}")  # noqa: E731
    raw, staging = table("sfpd_raw", "incidents"), table("sfpd_staging", "stg_sfpd__incidents")
    assert ("sfpd_incidents_daily.extract", windows) in graph[socrata]
    assert ("sfpd_incidents_daily.merge", raw) in graph[windows]
    assert {dataset for _, dataset in graph[raw]} == {staging}  # only the staging model reads it
    reached, frontier = set(), {staging}
    while frontier:  # everything built downstream of the staging model, node by node
        reached |= frontier
        frontier = {d for read in frontier for _, d in graph.get(read, ()) if d not in reached}
    assert table("sfpd_marts", "fct_incident_reports") in reached
