"""The deploy targets (deploy/targets, dev/sfpd_dev/targets.py): each committed lock installs the
target's file on top of what its image preinstalls without moving a pinned package, and what
depends on the environment passes in a virtualenv built from a target's lock.

What depends on the environment is chosen from the locks: the test files that exercise a
package run where the target's version of it differs from the project's own (requirements.lock,
where the whole suite runs), and one daily run (`airflow dags test` against the replay server,
dbt where the target puts it) always does. On Astro the DAG checks run as the image runs them
(`astro dev pytest`): from the files .dockerignore lets in, after the Dockerfile's RUN steps."""

from __future__ import annotations

import os
import subprocess

import pytest

from sfpd_dev.targets import TARGETS, copy_image_files, dockerfile_runs, moved, pins
from tests.conftest import PROJECT_ROOT

# The oldest Airflow (3.1.0, Astro; dbt in Airflow's environment) and Composer's oldest build
# (the oldest pyarrow and pandas; dbt in Cosmos's virtualenv). The newest Airflow (3.3.2) is the
# project's own venv. `make target-venvs` builds them.
VENV_TARGETS = ("astro-3.1", "composer-3.1")
TARGET_VENVS = PROJECT_ROOT / ".venv-targets"
# The test files whose outcome a package's version can change (what else they import is the
# same everywhere, or is one of these packages too).
EXERCISE = {
    "apache-airflow": ("tests/dags", "tests/unit/test_cosmos_dbt.py"),
    "astronomer-cosmos": ("tests/dags", "tests/unit/test_cosmos_dbt.py"),
    "pyarrow": ("tests/unit/test_normalise.py", "tests/unit/test_schema.py"),
    "pandas": ("tests/unit/test_normalise.py",),
    "requests": ("tests/integration/test_socrata.py", "tests/integration/test_socrata_recorded.py"),
    "urllib3": ("tests/integration/test_socrata.py", "tests/integration/test_socrata_recorded.py"),
    "sodapy": ("tests/integration/test_socrata.py",),
    "google-cloud-storage": ("tests/integration/test_lake.py",),
    "google-cloud-bigquery": ("tests/integration/test_warehouse_bigquery.py",),
    "apache-airflow-providers-google": ("tests/integration/test_warehouse_bigquery.py",),
    "duckdb": ("tests/integration/test_warehouse_duckdb.py",),
}
# the daily run and what is checked on it (its rerun's skip is our own logic: not here)
DAILY_RUN = ["tests/e2e/test_daily_dag.py", "-k", "not rerun"]
LIMIT = 1500  # seconds for one pytest run in a target's venv


def checks(name: str) -> list[str]:
    """The test files to run in a target's venv: those of the packages its lock pins to another
    version than the project's; on Astro, tests/dags runs in the image's layout instead."""
    ours, theirs = (
        pins((PROJECT_ROOT / "requirements.lock").read_text()),
        pins((TARGETS[name].folder / "lock.txt").read_text()),
    )
    files = {
        path
        for package, paths in EXERCISE.items()
        if theirs.get(package) != ours.get(package)
        for path in paths
    }
    if TARGETS[name].install_file == "requirements.txt":  # an Astro image
        files.discard("tests/dags")
    return sorted(files)


def test_what_runs_where_follows_the_locks():
    """Astro 3.1-1 differs in Airflow and urllib3; Composer 3.1.7 also in pyarrow, pandas and
    the Google clients. What both share with the project (duckdb) runs only here."""
    assert checks("astro-3.1") == [
        "tests/integration/test_socrata.py",
        "tests/integration/test_socrata_recorded.py",
        "tests/unit/test_cosmos_dbt.py",
    ]
    assert checks("composer-3.1") == [
        "tests/dags",
        "tests/integration/test_lake.py",
        "tests/integration/test_socrata.py",
        "tests/integration/test_socrata_recorded.py",
        "tests/integration/test_warehouse_bigquery.py",
        "tests/unit/test_cosmos_dbt.py",
        "tests/unit/test_normalise.py",
        "tests/unit/test_schema.py",
    ]
    for paths in EXERCISE.values():
        assert all((PROJECT_ROOT / path).exists() for path in paths), paths


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


def pytest_in(python, args: list[str], cwd, env: dict) -> None:
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=LIMIT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout[-2000:]


def run_the_images_own_tests(python, image) -> None:
    """`astro dev pytest`: the files .dockerignore lets in (Docker's matching rules), the
    Dockerfile's RUN steps, then pytest over the image's tests/. They import nothing the image
    leaves out (the development tooling, the fixtures, airflow_settings.yaml)."""
    files = copy_image_files(image)
    assert "tests/dags/test_dag_integrity.py" in files and "include/dbt/seeds" in files
    assert not [f for f in files if f.startswith(("dev/", "tests/unit/", "tests/fixtures/"))]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "SFPD_", "PYTHON"))
    }
    env.update(PATH=f"{python.parent}:{env['PATH']}", AIRFLOW_HOME=str(image))
    for command in dockerfile_runs():  # the manifest Cosmos renders from
        subprocess.run(["bash", "-c", command], cwd=image, env=env, check=True, timeout=600)
    pytest_in(python, ["tests"], image, env)


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
    else:  # the image's AIRFLOW_HOME and work dir
        run_the_images_own_tests(python, tmp_path / "usr" / "local" / "airflow")
    pytest_in(python, checks(name), PROJECT_ROOT, env)
    pytest_in(python, DAILY_RUN, PROJECT_ROOT, {**env, **dbt})
