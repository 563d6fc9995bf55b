"""The dbt project built on DuckDB from every bundled real row, loaded the pipeline's way
(replay server on 127.0.0.1 → extract → lake → MERGE), then `dbt build`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sfpd.config import Settings
from sfpd.lake import open_lake
from sfpd.pipeline import Loader
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Window
from tests.conftest import PROJECT_ROOT

DBT = str(Path(sys.executable).with_name("dbt"))
DBT_DIR = PROJECT_ROOT / "include" / "dbt"
# every bundled row: incidents from 2018-01 to 2019-11
ALL_ROWS = Window.from_dict({"start": "2018-01-01", "end": "2020-01-01"})
DBT_LIMIT = 600  # seconds for one dbt command (the whole build takes about a minute)


def dbt(
    env: dict,
    *args: str,
    check: bool = True,
    project_dir: Path = DBT_DIR,
    profiles_dir: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run dbt on the project with the test's warehouse; on failure, show its output."""
    done = subprocess.run(
        [DBT, *args, "--profiles-dir", str(profiles_dir or project_dir),
         "--project-dir", str(project_dir),
         "--target-path", env["DBT_TARGET_PATH"], "--log-path", env["DBT_LOG_PATH"]],
        env=env, capture_output=True, text=True, timeout=DBT_LIMIT,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="session")
def dbt_env(tmp_path_factory, replay_server) -> dict:
    """A DuckDB warehouse holding every bundled row in sfpd_raw.incidents."""
    state = tmp_path_factory.mktemp("dbt")
    warehouse = DuckDBWarehouse(state / "sfpd.duckdb")
    endpoint = SocrataEndpoint(host="127.0.0.1", port=replay_server.port, scheme="http")
    with SocrataSource(endpoint, page_size=5000) as source:
        lake = open_lake((state / "lake").as_uri())
        Loader(source, lake, warehouse, "wg3w-h783", "dbt-tests").load(ALL_ROWS)
    return {
        **os.environ,
        **Settings.from_env().dbt_env(),
        "SFPD_WAREHOUSE": "duckdb",
        "SFPD_DUCKDB_PATH": str(state / "sfpd.duckdb"),
        "DBT_TARGET_PATH": str(state / "target"),
        "DBT_LOG_PATH": str(state / "logs"),
    }


@pytest.fixture(scope="session")
def build(dbt_env) -> tuple[dict, list[dict]]:
    """`dbt build`: seeds, models and data tests (as the DAG runs them), and its run_results,
    read at once (a later dbt command in the same target path writes the file again)."""
    dbt(dbt_env, "build", "--exclude-resource-type", "unit_test")
    results = json.loads((Path(dbt_env["DBT_TARGET_PATH"]) / "run_results.json").read_text())
    return dbt_env, results["results"]


@pytest.fixture(scope="session")
def built(build) -> dict:
    """The built warehouse's settings. Read only: a test that changes the warehouse works on a
    copy (tests/dbt/test_dbt_project.py: copy_env)."""
    return build[0]


@pytest.fixture(scope="session")
def build_results(build) -> list[dict]:
    """That build's run_results."""
    return build[1]


@pytest.fixture
def copy_env(built, tmp_path) -> dict:
    """The built warehouse copied, for tests that change it."""
    path = tmp_path / "sfpd.duckdb"
    shutil.copy(built["SFPD_DUCKDB_PATH"], path)
    return {**built, "SFPD_DUCKDB_PATH": str(path), "DBT_TARGET_PATH": str(tmp_path / "target")}
