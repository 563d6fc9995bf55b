"""The Airflow tasks' own decisions (sfpd.tasks), without a run: what a DAG run does with them is
tests/e2e."""

import json

from sfpd.tasks import source_changed
from sfpd_dev.ports import refusing_port

WINDOW = {"start": "2018-11-01", "end": "2019-01-01"}


def test_a_forced_pull_reads_without_asking_the_source_or_the_warehouse(monkeypatch, tmp_path):
    # neither is reachable: a connection to a closed port, a DuckDB file in a missing folder
    monkeypatch.setenv("SFPD_DUCKDB_PATH", str(tmp_path / "missing" / "sfpd.duckdb"))
    with refusing_port() as port:
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        monkeypatch.setenv("AIRFLOW_CONN_SOCRATA_DEFAULT", json.dumps(conn))
        assert source_changed.function(WINDOW, params={"force_pull": True}) is True
