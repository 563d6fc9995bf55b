"""End to end: `airflow dags test sfpd_incidents_daily` against the replay server on 127.0.0.1,
embedded warehouse (local lake + DuckDB + dbt-duckdb), as `make run` runs it; then the same run
again, which reads nothing (the dataset's metadata says nothing changed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sfpd.window import rolling_window
from sfpd_dev.local import anchor_for
from sfpd_dev.replay import rows_in
from tests.conftest import POLICE_DISTRICTS, query, reports_of, rows_of
from tests.e2e.conftest import RUN_DATE, dags_test, state_env

WINDOW = rolling_window(anchor_for(RUN_DATE))  # [2018-11-01, 2019-01-01)
OFFENCES = len(rows_of(WINDOW))  # the bundled rows of the window, one per offence


@pytest.fixture(scope="module")
def env(airflow_home_env, tmp_path_factory):
    return state_env(airflow_home_env, tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def printed(env) -> str:
    """What the first run printed (and its log)."""
    return dags_test(env)


def test_the_run_prints_a_line_per_task_with_its_rows(printed):
    rows = f"{OFFENCES:,}"
    for line in [
        rf"    extract\s+{rows} of {rows} rows",  # the extract's progress
        rf"  extract\s+success\s+[\d.]+ s  {rows} rows read, 0 quarantined",
        rf"  merge\s+success\s+[\d.]+ s  {rows} inserted, 0 updated, 0 deleted",
        r"  dbt\s+success\s+[\d.]+ s  \d+ nodes built and tested",
        r"  check_upstream\s+success\s+[\d.]+ s  DataSF last published 2026-01-01 00:00 UTC",
        r"  dbt_source_freshness\s+success",
        r"  dbt_docs\s+success",
        r"  report\s+success",
        r"  prune_lake\s+success\s+[\d.]+ s  0 lake entries past the retention removed",
    ]:
        assert re.search(f"^{line}", printed, re.MULTILINE), line


def test_the_raw_table_is_the_window_and_the_marts_hold_it(printed, env, replay_server):
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, WINDOW.soql_where())}
    assert len(expected) == OFFENCES
    raw = query(env, "SELECT row_id FROM sfpd_raw.incidents")
    assert sorted(row[0] for row in raw) == sorted(expected)  # each row once
    mart = "sfpd_marts.rpt_daily_reports_by_district"
    offences, reports = query(env, f"SELECT sum(offence_count), sum(report_count) FROM {mart}")[0]
    assert offences == len(expected)
    # a report falls on one day in one district, so per-day counts add up to all reports
    assert reports == query(env, "SELECT count(DISTINCT incident_id) FROM sfpd_raw.incidents")[0][0]
    assert query(env, "SELECT count(*) FROM sfpd_seeds.police_districts") == [(POLICE_DISTRICTS,)]


def test_the_lake_holds_the_window_as_parquet_and_the_report(printed, env):
    lake = Path(env["SFPD_LAKE_URI"].removeprefix("file://")) / "wg3w-h783"
    parts = sorted(lake.glob("windows/2018-11-01_2019-01-01/part-*.parquet"))
    files = [str(p) for p in parts]
    assert files and duckdb.sql(f"SELECT count(*) FROM read_parquet({files})").fetchall() == [
        (OFFENCES,)
    ]
    html = (lake / "reports" / "sfpd_report_2018-11-01_2019-01-01.html").read_text()
    reports = f"{reports_of(rows_of(WINDOW)):,} reports"
    assert "2018-11-01" in html and reports in html and 'id="chart-day_by_hour"' in html


def test_the_run_shows_source_freshness_and_writes_the_dbt_docs_to_the_lake(printed, env):
    # the load just landed: both sources fresh, in the freshness task's log
    for source in ("sfpd.incidents", "sfpd.load_audit"):
        assert re.search(rf"PASS freshness of {source}", printed), source
    docs = Path(env["SFPD_LAKE_URI"].removeprefix("file://")) / "wg3w-h783" / "docs"
    assert sorted(p.name for p in docs.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    manifest = json.loads((docs / "manifest.json").read_text())
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "/marts/" in node["original_file_path"]
    }
    assert len(marts) == 9
    for name, node in marts.items():
        assert node["description"].strip(), name
        catalog = json.loads((docs / "catalog.json").read_text())["nodes"][node["unique_id"]]
        built = {column.lower() for column in catalog["columns"]}
        described = {c for c, spec in node["columns"].items() if spec["description"].strip()}
        assert built == described, f"{name}: columns without a description {built - described}"


def test_a_rerun_reads_nothing_when_nothing_changed_upstream(printed, env):
    raw = query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id")
    log = dags_test(env)
    assert "Skipping the extract: the dataset's data last changed at" in log
    assert "Nothing changed upstream since the last catch-up" in log
    assert re.search(r"^  extract\s+skipped", log, re.MULTILINE)
    assert query(env, "SELECT * FROM sfpd_raw.incidents ORDER BY row_id") == raw


def test_a_task_on_a_worker_with_other_settings_fails_naming_them(printed, env):
    """The run's plan task recorded its settings (XCom); the same run's report, run again where
    SFPD_RAW_SCHEMA differs (as on a worker whose environment differs from the DAG processor's),
    fails before it reads anything, naming the setting and both values."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "tasks", "test", "sfpd_incidents_daily", "report",
         anchor_for(RUN_DATE).isoformat()],
        env={**env, "SFPD_RAW_SCHEMA": "elsewhere"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # `tasks test` exits 0 whatever the task did; Airflow 3.1.0 colours its log lines
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert "new_state=failed" in output, output
    assert "SFPD_RAW_SCHEMA is 'elsewhere' here but was 'sfpd_raw' in plan_window" in output
