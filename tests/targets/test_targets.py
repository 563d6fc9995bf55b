"""The deploy targets (deploy/targets, dev/sfpd_dev/targets.py): each committed lock installs the
target's file on top of what its image preinstalls without moving a pinned package, and what
depends on the environment passes in a virtualenv built from a target's lock (its Airflow,
Python, pyarrow and pandas), with dbt where that target puts it."""

from __future__ import annotations

import os
import subprocess

import pytest

from sfpd_dev.targets import TARGETS, moved, pins
from tests.conftest import PROJECT_ROOT

# The oldest Airflow (3.1.0, Astro; dbt in Airflow's environment) and Composer's oldest build
# (the oldest pyarrow and pandas; dbt in Cosmos's virtualenv). The newest Airflow (3.3.2) is the
# project's own venv, where the whole suite runs. `make target-venvs` builds them.
VENV_TARGETS = ("astro-3.1", "composer-3.1")
TARGET_VENVS = PROJECT_ROOT / ".venv-targets"
# What depends on the environment, run in each venv: every DAG file's import and rules, the
# normaliser and the schema on its pyarrow, the Socrata client on its requests/urllib3, the Cosmos
# profile on its Airflow, the lake and both warehouses on its Google clients and DuckDB; then one
# daily run (`airflow dags test` against the replay server) with dbt where the target puts it.
# The rest (the rerun's skip included) checks our own code, which does not change with the
# environment.
CHECKS = [
    "tests/dags",
    "tests/unit/test_normalise.py",
    "tests/unit/test_schema.py",
    "tests/unit/test_cosmos_dbt.py",
    "tests/integration/test_socrata.py",
    "tests/integration/test_lake.py",
    "tests/integration/test_warehouse_duckdb.py",
    "tests/integration/test_warehouse_bigquery.py",
]
DAILY_RUN = ["tests/e2e/test_daily_dag.py", "-k", "not rerun"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_committed_lock_installs_the_file_without_moving_the_images_pins(name):
    """Read from the committed files only: re-resolving them against the package index is
    `make target-locks-check`, not a test (the index receives uploads days late)."""
    target = TARGETS[name]
    preinstalled = (target.folder / "preinstalled.txt").read_text()
    lock = (target.folder / "lock.txt").read_text()
    assert moved(target, preinstalled, lock) == {}
    install = pins((PROJECT_ROOT / target.install_file).read_text())
    assert install and {n: pins(lock).get(n) for n in install} == install
    airflow = pins(preinstalled)["apache-airflow"]
    assert pins(lock)["apache-airflow"] == airflow, "the install file must never move Airflow"


def target_python(name: str):
    python = TARGET_VENVS / name / "bin" / "python"
    assert python.exists(), f"{python} is missing: `make target-venvs` builds it"
    return python


@pytest.mark.slow
@pytest.mark.parametrize("name", VENV_TARGETS)
def test_what_depends_on_the_environment_passes_in_the_target_venv(name, tmp_path):
    python = target_python(name)
    env = {
        **os.environ,
        "PATH": f"{python.parent}:{os.environ['PATH']}",  # as on the image: its tools first
        "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}:{PROJECT_ROOT / 'dev'}",
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        # nothing may be installed from the index now: the venvs are built (make target-venvs)
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
    }
    dbt = {}
    if TARGETS[name].install_file == "requirements-composer.txt":
        dbt = {
            "SFPD_DBT_EXECUTION_MODE": "virtualenv",
            "SFPD_DBT_VIRTUALENV_DIR": str(TARGET_VENVS / "dbt-virtualenv"),
        }
    for tests, settings in ((CHECKS, {}), (DAILY_RUN, dbt)):
        done = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=PROJECT_ROOT,
            env={**env, **settings},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
