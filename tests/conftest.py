"""Shared fixtures. Airflow reads its settings at import, so they are set before any test module
imports it: a throw-away AIRFLOW_HOME, this project's dags/ and plugins/, no examples."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import duckdb
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "socrata"
API_SAMPLE = FIXTURES / "sfpd_wg3w-h783_api_sample_2019-10.json"
CSV_EXPORT = FIXTURES / "sfpd_incident_reports_export_2018-12.csv"

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sfpd-airflow-home-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"


def query(env: dict, sql: str, parameters: list | None = None) -> list[tuple]:
    """A read-only query on the DuckDB warehouse ``env`` (SFPD_DUCKDB_PATH) points at."""
    with duckdb.connect(env["SFPD_DUCKDB_PATH"], read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


@pytest.fixture(scope="session")
def api_rows() -> list[dict]:
    """1,000 real rows as the SODA API returns them (nulls omitted)."""
    return json.loads(API_SAMPLE.read_text())


@pytest.fixture(scope="session")
def replay_server():
    from sfpd_dev.replay import ReplayServer

    with ReplayServer(FIXTURES) as server:
        yield server


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    """fake-gcs-server and bqemulator sharing one filesystem root (BigQuery loads gs:// URIs)."""
    from tests.emulators.servers import start_bigquery, start_gcs

    workdir = tmp_path_factory.mktemp("emulators")
    root = workdir / "gcs-root"
    root.mkdir()
    gcs = start_gcs(root, workdir)
    try:
        bq = start_bigquery(root, workdir)
    except BaseException:
        gcs.stop()
        raise
    try:
        yield {"gcs": gcs, "bq": bq, "root": root}
    finally:
        try:
            bq.stop()
        finally:
            gcs.stop()
