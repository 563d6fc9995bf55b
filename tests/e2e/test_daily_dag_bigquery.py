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

from sfpd.gcp_access import PERMISSIONS
from sfpd.window import rolling_window
from sfpd_dev.local import anchor_for
from sfpd_dev.replay import rows_in
from tests.alert_servers import WebhookSink
from tests.conftest import PROJECT_ROOT, reports_of, rows_of
from tests.e2e.conftest import RUN_DATE, dags_test
from tests.e2e.test_operations import lineage_edges
from tests.emulators.servers import PROJECT, bigquery_client, storage_client
from tests.gcp_calls import Call, RecordingProxy, UnknownCall, permissions_of

pytestmark = pytest.mark.slow
BUCKET = "sfpd-e2e-lake"
BACKFILL_CHUNK = {"start_date": "2019-10-01", "end_date": "2019-11-01", "chunk": "month",
                  "run_dbt": False}  # fmt: skip


@pytest.fixture(scope="module")
def lineage():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def proxies(emulators):
    """Every call to the emulators, recorded on its way (tests/gcp_calls.py)."""
    with (
        RecordingProxy(emulators["gcs"].endpoint) as gcs,
        RecordingProxy(emulators["bq"].endpoint) as bq,
    ):
        yield {"gcs": gcs, "bq": bq}


@pytest.fixture(scope="module")
def env(airflow_home_env, emulators, lineage, proxies):
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
        "STORAGE_EMULATOR_HOST": proxies["gcs"].url,
        "BIGQUERY_EMULATOR_HOST": proxies["bq"].url,
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


def recorded(proxies) -> list[Call]:
    """The calls recorded since the last time, forgotten."""
    calls = [call for proxy in proxies.values() for call in proxy.calls]
    for proxy in proxies.values():
        proxy.calls.clear()
    return calls


@pytest.fixture(scope="module")
def ran(env, proxies):
    """The run: every task succeeds, dbt_docs with a warning (bqemulator cannot answer the
    catalog's queries: dbt writes the docs with an empty catalog, then fails; a by-product's
    failure fails nothing). Its Google calls: ``daily_calls``."""
    recorded(proxies)
    return dags_test(env)


@pytest.fixture(scope="module")
def daily_calls(ran, proxies) -> list[Call]:
    return recorded(proxies)


@pytest.fixture(scope="module")
def backfill_calls(daily_calls, env, proxies) -> list[Call]:
    """The Google calls of a backfill of one chunk (no dbt: the daily run's build is dbt's)."""
    dags_test(env, "2019-12-01", "sfpd_incidents_backfill", BACKFILL_CHUNK)
    return recorded(proxies)


@pytest.mark.parametrize("run", ["daily_calls", "backfill_calls"])
def test_every_google_call_a_run_makes_is_granted_by_the_permission_contract(run, request):
    """Each call recorded on its way to the emulators, mapped to the IAM permission Google's
    documentation says it needs (tests/gcp_calls.py), is in sfpd.gcp_access.PERMISSIONS, the
    contract docs/deploy.md's "Permissions" table states (tests/unit/test_gcp_access.py holds
    the table and the roles to it). The emulators check no permission: this is the proof."""
    needed: dict[str, Call] = {}
    unknown: set[str] = set()
    for call in request.getfixturevalue(run):
        try:
            for permission in permissions_of(call):
                needed.setdefault(permission, call)
        except UnknownCall as exc:
            unknown.add(str(exc))
    assert not unknown, "\n".join(sorted(unknown))
    ungranted = {p: c for p, c in needed.items() if p not in PERMISSIONS}
    assert not ungranted, ungranted
    # what every run does, so the recording is known to have seen the run
    assert {"bigquery.jobs.create", "bigquery.tables.updateData", "storage.objects.create",
            "storage.buckets.get"} <= set(needed), sorted(needed)  # fmt: skip


def test_docs_that_cannot_be_generated_fail_nothing_and_say_so_in_their_log(ran):
    states = dict(re.findall(r"^  (\S+)\s+(success|failed|skipped|upstream_failed)", ran, re.M))
    assert set(states.values()) == {"success"} and "dbt_docs" in states
    assert "Encountered an error while generating catalog" in ran
    assert "dbt_docs failed, which fails nothing else (the marts are built)" in ran


def test_daily_dag_on_gcs_and_bigquery(ran, emulators, replay_server):
    window = rolling_window(anchor_for(RUN_DATE))
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, window.soql_where())}
    # what the daily run wrote: the module's backfill (if it ran first) writes only its chunk
    chunk = f"lake/wg3w-h783/windows/{BACKFILL_CHUNK['start_date']}_{BACKFILL_CHUNK['end_date']}"
    blobs = [b.name for b in storage_client(emulators["gcs"]).list_blobs(BUCKET)]
    blobs = [name for name in blobs if not name.startswith(chunk + "/")]
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
    # what the run's loads billed, as load_audit keeps it (the emulator bills nothing)
    assert re.search(r"BigQuery billed this run's [1-9]\d* load\(s\) 0\.0 MB", html)
    raw_sql = (
        f"SELECT * FROM `{PROJECT}.sfpd_raw.incidents` WHERE NOT (incident_date >= DATE "
        f"'{BACKFILL_CHUNK['start_date']}' AND incident_date < DATE '{BACKFILL_CHUNK['end_date']}')"
        " ORDER BY row_id"
    )
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
