"""End to end: `airflow dags test sfpd_incidents_daily` against the replay server on 127.0.0.1,
embedded warehouse (local lake + DuckDB + dbt-duckdb), then the same run again."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sfpd.local import anchor_for
from sfpd.replay import rows_in
from sfpd.window import rolling_window
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

    dags_test(env)

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

    dags_test(env)
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
