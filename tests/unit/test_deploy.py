"""What the deploy targets rely on: the Docker build context leaves secrets, local state and
development tooling out, every install file pins what the tests run, and what workers run
imports no development tooling."""

from __future__ import annotations

import ast

import pytest

from sfpd_dev.local import pools
from sfpd_dev.targets import docker_excludes, dockerignore, pins
from tests.conftest import PROJECT_ROOT
from tests.dags.dagbag import dagbag_class

DOCKERIGNORE = dockerignore()


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", ".venv/bin/python", ".venv-emulators/bq/bin/python",
     "data/lake/x.parquet", "dist/composer/dags/x.py", ".airflow/airflow.db",
     "airflow_settings.yaml",
     "plugins/sfpd/__pycache__/tasks.cpython-312.pyc", "include/dbt/target/manifest.json",
     "dev/sfpd_dev/bench.py", "dev/sfpd_dev/replay.py", "dev/sfpd_dev/local.py",
     "tests/unit/test_window.py", "tests/e2e/conftest.py", "tests/fixtures/socrata/SOURCE.md",
     "tests/dags/__pycache__/test_dag_integrity.cpython-312.pyc", ".ci/run"],
)  # fmt: skip
def test_dockerignore_keeps_secrets_state_and_tooling_out_of_the_image(path):
    assert docker_excludes(path, DOCKERIGNORE)


@pytest.mark.parametrize(
    "path",
    ["Dockerfile", "requirements.txt", "packages.txt", "dags/sfpd_incidents_daily.py",
     "plugins/sfpd/tasks.py", "include/dbt/dbt_project.yml", "include/seeds/police_districts.csv",
     ".env.example", "tests/conftest.py", "tests/dags/test_dag_integrity.py", "pyproject.toml"],
)  # fmt: skip
def test_dockerignore_keeps_what_the_image_runs(path):
    assert not docker_excludes(path, DOCKERIGNORE)


def test_the_dockerignore_matcher_can_tell_the_difference():
    assert docker_excludes("a/b/c.txt", ["a"]) and not docker_excludes("b/a", ["a"])
    assert docker_excludes("x/__pycache__/y", ["**/__pycache__"])
    assert not docker_excludes(".env.example", [".env*", "!.env.example"])
    # a re-included folder under an excluded one (Docker matches each pattern on the parents too)
    assert not docker_excludes("t/d/x.py", ["t/*", "!t/d"])
    assert docker_excludes("t/u/x.py", ["t/*", "!t/d"])
    assert docker_excludes("t/d/c/x.pyc", ["t/*", "!t/d", "**/c"])


INSTALL_FILES = ["requirements.txt", "requirements-composer.txt", "include/dbt/requirements.txt"]


@pytest.mark.parametrize("install_file", INSTALL_FILES)
def test_every_install_file_pins_what_the_tests_run(install_file):
    """One version of each package everywhere: a deploy target installs what CI tested."""
    locked = pins((PROJECT_ROOT / "requirements.lock").read_text())
    pinned = pins((PROJECT_ROOT / install_file).read_text())
    assert pinned, f"{install_file} pins nothing"
    assert {name: locked.get(name) for name in pinned} == pinned


def test_what_workers_run_imports_no_development_tooling():
    """plugins/ (on every worker's sys.path, in the image and the Composer bucket) and dags/
    import neither the development package (replay server, local runner, benchmarks) nor the
    tests, and read no test fixtures."""
    runtime = [*(PROJECT_ROOT / "plugins").rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]
    assert len(runtime) > 10
    for path in runtime:
        text = path.read_text()
        tree = ast.parse(text)
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {name.split(".")[0] for name in imported} & {"sfpd_dev", "tests"}, path
        assert "fixtures" not in text, path


def test_every_pool_a_task_uses_is_declared_in_airflow_settings():
    """Astro (`astro dev start`), `make run`, `make airflow` and the e2e tests create the pools
    airflow_settings.yaml declares: a task in an undeclared pool would never be scheduled."""
    dagbag = dagbag_class()(dag_folder=str(PROJECT_ROOT / "dags"))
    used = {task.pool for dag in dagbag.dags.values() for task in dag.tasks} - {"default_pool"}
    assert used == {"socrata_api", "sfpd_warehouse"}
    assert used <= set(pools())
    assert pools()["sfpd_warehouse"]["slots"] == 1  # one writer at a time
