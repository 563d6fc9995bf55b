"""End to end: `airflow dags test sfpd_incidents_daily` against the replay server on 127.0.0.1,
embedded warehouse (local lake + DuckDB + dbt-duckdb), then the same run again."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from sfpd.window import rolling_window
from sfpd_dev.local import anchor_for
from sfpd_dev.replay import rows_in
from tests.conftest import query
from tests.e2e.conftest import RUN_DATE, dags_test, state_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(airflow_home_env, tmp_path_factory):
    return state_env(airflow_home_env, tmp_path_factory.mktemp("state"))


def test_daily_dag_end_to_end_and_rerun_is_identical(env, replay_server):
    window = rolling_window(anchor_for(RUN_DATE))
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, window.soql_where())}
    assert len(expected) == 11887

    printed = dags_test(env)

    # what `make run` prints: a line per task as it finishes, the extract's progress, dbt as one
    for line in [
        r"    extract\s+11,887 of 11,887 rows",  # the extract's progress
        r"  extract\s+success\s+[\d.]+ s  11,887 rows read, 0 quarantined",
        r"  merge\s+success\s+[\d.]+ s  11,887 inserted, 0 updated, 0 deleted",
        r"  dbt\s+success\s+[\d.]+ s  \d+ nodes built and tested",
        r"  report\s+success",
    ]:
        assert re.search(f"^{line}", printed, re.MULTILINE), line
    raw = query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id")
    assert len(raw) == len(expected)
    assert {row[0] for row in raw} == expected  # row_id is the first column, unique
    offences, reports, days = query(
        env,
        "SELECT sum(offence_count), sum(report_count), count(*) "
        "FROM sfpd_marts.rpt_daily_reports_by_district",
    )[0]
    assert days > 0
    assert offences == len(expected)
    # a report falls on one day in one district, so per-day counts add up to all reports
    assert reports == query(env, "SELECT count(DISTINCT incident_id) FROM sfpd_raw.incidents")[0][0]
    assert query(env, "SELECT count(*) FROM sfpd_seeds.police_districts") == [(11,)]

    # the same run again: the source's metadata says nothing changed, so nothing is read
    log = dags_test(env)
    assert "Skipping the extract: the dataset's data last changed at" in log
    assert "Nothing changed upstream since the last catch-up" in log
    assert query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id") == raw


def test_run_writes_the_report_into_the_lake(env):
    # runs after the DAG test above (module order)
    lake = Path(env["SFPD_LAKE_URI"].removeprefix("file://"))
    html = (lake / "wg3w-h783" / "reports" / "sfpd_report_2018-11-01_2019-01-01.html").read_text()
    assert "2018-11-01" in html and "9,752 reports" in html and 'id="chart-day_by_hour"' in html


def test_lake_holds_the_window_as_parquet(env):
    # runs after the DAG test above (module order)
    lake = Path(env["SFPD_LAKE_URI"].removeprefix("file://"))
    parts = sorted(lake.glob("wg3w-h783/windows/2018-11-01_2019-01-01/part-*.parquet"))
    assert parts
    files = [str(p) for p in parts]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({files})").fetchall() == [(11887,)]


def test_a_forced_pull_and_a_soda3_run_read_the_same_rows(
    env, airflow_home_env, replay_server, tmp_path_factory
):
    """SFPD_FORCE_PULL reads and merges again though nothing changed: the same table. Then the
    same DAG through SODA3 (its connection's extra says so, with an app token) writes the same
    lake files, byte for byte, and the same raw table. (The deploy targets skip this test: it
    checks the source code, not the environment.)"""
    raw = query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id")
    log = dags_test({**env, "SFPD_FORCE_PULL": "true"})
    assert "SFPD_FORCE_PULL is set" in log and "  extract         success" in log
    assert query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id") == raw

    connection = replay_server.connection_uri_json(api="soda3", app_token="test-token")
    soda3 = state_env(
        {**airflow_home_env, "AIRFLOW_CONN_SOCRATA_DEFAULT": connection},
        tmp_path_factory.mktemp("soda3"),
    )
    log = dags_test(soda3)
    assert f"through soda3 at {replay_server.url}" in log
    columns = "* EXCLUDE (_loaded_at)"  # when each run merged
    assert query(soda3, f"SELECT {columns} FROM sfpd_raw.incidents ORDER BY row_id") == query(
        env, f"SELECT {columns} FROM sfpd_raw.incidents ORDER BY row_id"
    )
    window = "wg3w-h783/windows/2018-11-01_2019-01-01"
    files = {}
    for state in (env, soda3):
        folder = Path(state["SFPD_LAKE_URI"].removeprefix("file://")) / window
        files[state["SFPD_LAKE_URI"]] = {p.name: p.read_bytes() for p in folder.iterdir()}
    soda2_files, soda3_files = files.values()
    assert soda2_files and soda3_files == soda2_files
