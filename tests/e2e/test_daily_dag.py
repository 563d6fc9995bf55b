"""End to end: `airflow dags test sfpd_incidents_daily` against the replay server on 127.0.0.1,
embedded warehouse (local lake + DuckDB + dbt-duckdb), then the same run again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sfpd.local import DAG_ID, airflow_env, anchor_for
from sfpd.replay import rows_in
from sfpd.window import rolling_window
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.e2e
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_DATE = "2019-01-01"


@pytest.fixture(scope="module")
def env(tmp_path_factory, replay_server):
    home = tmp_path_factory.mktemp("airflow-home")
    state = tmp_path_factory.mktemp("state")
    env = airflow_env(PROJECT_ROOT, home)
    env.update(
        SFPD_DUCKDB_PATH=str(state / "sfpd.duckdb"),
        SFPD_LAKE_URI=(state / "lake").as_uri(),
        SFPD_TASK_RETRIES="0",
        AIRFLOW_CONN_SOCRATA_DEFAULT=replay_server.connection_uri_json(),
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def dags_test(env) -> subprocess.CompletedProcess:
    anchor = anchor_for(RUN_DATE).isoformat()
    return subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, anchor], env=env, capture_output=True, text=True
    )


def raw_table(env) -> list[tuple]:
    with duckdb.connect(env["SFPD_DUCKDB_PATH"], read_only=True) as con:
        return con.execute("SELECT * FROM sfpd_raw.incidents ORDER BY row_id").fetchall()


def test_daily_dag_end_to_end_and_rerun_is_identical(env, replay_server):
    window = rolling_window(anchor_for(RUN_DATE))
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, window.soql_where())}
    assert len(expected) == 11887

    first = dags_test(env)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-5000:]

    raw = raw_table(env)
    assert len(raw) == len(expected)
    with duckdb.connect(env["SFPD_DUCKDB_PATH"], read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT row_id FROM sfpd_raw.incidents").fetchall()} == (
            expected
        )
        assert con.execute(
            "SELECT count(*) - count(DISTINCT row_id) FROM sfpd_raw.incidents"
        ).fetchone() == (0,)
        mart = con.execute(
            "SELECT count(*), sum(report_count), sum(offence_count) "
            "FROM sfpd_marts.rpt_daily_reports_by_district"
        ).fetchone()
        reports = con.execute("SELECT count(DISTINCT incident_id) FROM sfpd_raw.incidents")
        assert mart[0] > 0
        assert mart[2] == len(expected)
        # reports are counted per day and district; a report spans one of each
        assert mart[1] == reports.fetchone()[0]
        assert con.execute("SELECT count(*) FROM sfpd_seeds.police_districts").fetchone() == (11,)

    second = dags_test(env)
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-5000:]
    assert raw_table(env) == raw


def test_lake_holds_the_window_as_parquet(env):
    # runs after the DAG test above (module order)
    lake = Path(env["SFPD_LAKE_URI"].removeprefix("file://"))
    parts = sorted(lake.glob("wg3w-h783/window=2018-11-01_2019-01-01/part-*.parquet"))
    assert parts
    files = [str(p) for p in parts]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({files})").fetchall() == [(11887,)]
