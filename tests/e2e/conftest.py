from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sfpd_dev.local import DAG_ID, airflow_env, anchor_for, create_pools
from tests.conftest import PROJECT_ROOT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_DATE = "2019-01-01"  # window [2018-11-01, 2019-01-01): 11,887 bundled rows


@pytest.fixture(scope="module")
def airflow_home_env(tmp_path_factory, replay_server) -> dict:
    """A migrated, throw-away Airflow home whose socrata_default is the replay server."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = airflow_env(PROJECT_ROOT, home)
    env.update(
        SFPD_TASK_RETRIES="0",
        AIRFLOW_CONN_SOCRATA_DEFAULT=replay_server.connection_uri_json(),
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
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
    """`airflow dags test` of a DAG, which must succeed (or fail, with ``succeed=False``);
    if not, the error lines and the log's path. Returns the log."""
    log = Path(env["AIRFLOW_HOME"]) / f"dags-test-{dag_id}-{run_date}.log"
    command = [AIRFLOW, "dags", "test", dag_id, anchor_for(run_date).isoformat()]
    if conf is not None:
        command += ["--conf", json.dumps(conf)]
    with log.open("w") as handle:
        done = subprocess.run(
            command,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    errors = [line for line in log.read_text().splitlines() if "error" in line.lower()]
    assert (done.returncode == 0) == succeed, "\n".join([*errors[-40:], f"full log: {log}"])
    return log.read_text()
