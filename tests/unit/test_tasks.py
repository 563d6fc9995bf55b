"""The Airflow tasks' own decisions (sfpd.tasks), without a run: what a DAG run does with them is
tests/e2e."""

import json

import pytest

from sfpd.config import Settings
from sfpd.pools import pools_for
from sfpd.tasks import in_merge_pool, source_changed
from sfpd_dev.ports import refusing_port

WINDOW = {"start": "2018-11-01", "end": "2019-01-01"}


def test_a_forced_pull_reads_without_asking_the_source_or_the_warehouse(monkeypatch, tmp_path):
    # neither is reachable: a connection to a closed port, a DuckDB file in a missing folder
    monkeypatch.setenv("SFPD_DUCKDB_PATH", str(tmp_path / "missing" / "sfpd.duckdb"))
    with refusing_port() as port:
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        monkeypatch.setenv("AIRFLOW_CONN_SOCRATA_DEFAULT", json.dumps(conn))
        assert source_changed.function(WINDOW, params={"force_pull": True}) is True


@pytest.mark.parametrize(("warehouse", "readers_write"), [("duckdb", True), ("bigquery", False)])
def test_only_a_task_of_the_merge_pool_changes_the_warehouses_tables(warehouse, readers_write):
    """On BigQuery the skip check, dbt and the report run outside the merge pool (which tasks
    sit where: tests/dags/test_dag_integrity.py), so they make no table; on DuckDB they share
    the merge's one-slot pool, one task at a time."""
    bigquery = {"SFPD_GCP_PROJECT": "sfpd-p", "SFPD_LAKE_URI": "gs://b/x"}
    env = {"SFPD_WAREHOUSE": warehouse, **(bigquery if warehouse == "bigquery" else {})}
    settings = Settings.from_env(env)
    pools = pools_for(settings)
    assert in_merge_pool(settings, pools.merge)
    assert in_merge_pool(settings, pools.warehouse) is readers_write
    assert not in_merge_pool(settings, pools.socrata)
