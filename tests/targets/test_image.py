"""The Astro image's own tests (`astro dev pytest`), without Docker: the project's files that
.dockerignore lets into the image (Docker's matching rules), the Dockerfile's RUN steps, then
pytest over the image's tests/ in the venv of its package set (Astro Runtime 3.1-1). They import
nothing the image leaves out (the development tooling, the fixtures, airflow_settings.yaml)."""

from __future__ import annotations

import os
import subprocess

import pytest

from sfpd_dev.targets import copy_image_files, dockerfile_runs
from tests.targets.test_targets import target_python

pytestmark = pytest.mark.slow


def test_the_images_tests_pass_on_the_files_it_holds(tmp_path):
    python = target_python("astro-3.1")
    image = tmp_path / "usr" / "local" / "airflow"  # the image's AIRFLOW_HOME and work dir
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
    done = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=image, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout
