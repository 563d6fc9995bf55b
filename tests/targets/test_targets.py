"""The deploy targets (deploy/targets, dev/sfpd_dev/targets.py): each install file resolves on
top of what its image preinstalls without moving a pinned package, and the suite's core runs in
a virtualenv built from a target's lock (its Airflow, Python, pyarrow and pandas), with dbt
where that target puts it."""

from __future__ import annotations

import os
import subprocess

import pytest

from sfpd_dev.targets import TARGETS, moved, pins
from tests.conftest import PROJECT_ROOT

# The oldest Airflow (3.1.0, Astro; dbt in Airflow's environment) and Composer's oldest build
# (the oldest pyarrow and pandas; dbt in Cosmos's virtualenv). The newest Airflow (3.3.2) is the
# project's own venv, where the rest of the suite runs.
VENV_TARGETS = ("astro-3.1", "composer-3.1")
# What each venv runs: the unit tests and every DAG file's import and rules (default settings),
# then one daily run (`airflow dags test` against the replay server, twice: the rerun changes
# nothing) with dbt where the target puts it. The forced and SODA3 runs check the source code,
# which does not change with the environment: the project's own venv runs them.
CHECKS = ["tests/unit", "tests/dags/test_dag_integrity.py"]
DAILY_RUN = ["tests/e2e/test_daily_dag.py", "-k", "not soda3"]


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


@pytest.mark.parametrize("name", VENV_TARGETS)
def test_the_suite_passes_in_the_target_environment(name, tmp_path):
    subprocess.run(["make", "-s", "target-venv", f"TARGET={name}"], cwd=PROJECT_ROOT, check=True)
    python = PROJECT_ROOT / ".venv-targets" / name / "bin" / "python"
    env = {
        **os.environ,
        "PATH": f"{python.parent}:{os.environ['PATH']}",  # as on the image: its tools first
        "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}:{PROJECT_ROOT / 'dev'}",
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
    }
    dbt = {}
    if TARGETS[name].install_file == "requirements-composer.txt":
        dbt = {
            "SFPD_DBT_EXECUTION_MODE": "virtualenv",
            "SFPD_DBT_VIRTUALENV_DIR": str(PROJECT_ROOT / ".venv-targets" / "dbt-virtualenv"),
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
