from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from sfpd_dev.local import DAG_ID, airflow_env, anchor_for, create_pools, run_dag
from tests.conftest import PROJECT_ROOT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_DATE = "2019-01-01"  # window [2018-11-01, 2019-01-01)
DAG_RUN_LIMIT = 900  # seconds for one `airflow dags test` (a daily run takes about 1-2 min)


@pytest.fixture(scope="module")
def airflow_home_env(tmp_path_factory, replay_server) -> dict:
    """A migrated, throw-away Airflow home whose socrata_default is the replay server, for the
    `airflow dags test` runs of one test module (its warehouse: state_env). One per module, as
    one per deployment: the Assets' URIs name the warehouse, and `dags test` re-serialises only
    the DAG it runs, so another warehouse's DAGs left in the same database would hold the same
    asset names with other URIs (Airflow then refuses the task: inactive asset)."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = airflow_env(PROJECT_ROOT, home)
    env.update(
        SFPD_TASK_RETRIES="0",
        AIRFLOW_CONN_SOCRATA_DEFAULT=replay_server.connection_uri_json(),
    )
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    create_pools(env)
    return env


def state_env(base: dict, directory: Path) -> dict:
    """``base`` with its own DuckDB file and lake under ``directory``."""
    return {
        **base,
        "SFPD_DUCKDB_PATH": str(directory / "sfpd.duckdb"),
        "SFPD_LAKE_URI": (directory / "lake").as_uri(),
    }


def dags_test(
    env: dict,
    run_date: str = RUN_DATE,
    dag_id: str = DAG_ID,
    conf: dict | None = None,
    succeed: bool = True,
) -> str:
    """`airflow dags test` of a DAG the way `make run` runs it (:func:`sfpd_dev.local.run_dag`),
    which must succeed (or fail, with ``succeed=False``); if not, what it printed. Returns what
    it printed followed by the whole log."""
    log = Path(env["AIRFLOW_HOME"]) / f"dags-test-{dag_id}-{run_date}.log"
    printed = io.StringIO()
    succeeded = run_dag(anchor_for(run_date), env, log, printed, dag_id, conf, DAG_RUN_LIMIT)
    assert succeeded == succeed, printed.getvalue()
    return printed.getvalue() + log.read_text()
