from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sfpd.local import DAG_ID, airflow_env, anchor_for
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
    return env


def dags_test(env: dict, run_date: str = RUN_DATE) -> None:
    """`airflow dags test` of the daily DAG; on failure, the error lines and the full log."""
    log = Path(env["AIRFLOW_HOME"]) / f"dags-test-{run_date}.log"
    with log.open("w") as handle:
        done = subprocess.run(
            [AIRFLOW, "dags", "test", DAG_ID, anchor_for(run_date).isoformat()],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    errors = [line for line in log.read_text().splitlines() if "error" in line.lower()]
    assert done.returncode == 0, "\n".join([*errors[-40:], f"full log: {log}"])
