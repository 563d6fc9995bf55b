"""Shared fixtures. Airflow reads its settings at import, so they are set before any test module
imports it: a throw-away AIRFLOW_HOME, this project's dags/ and plugins/, no examples.

Every test has a time limit (pytest-timeout, fixture setup included): a hang fails that test
with its stack instead of eating CI's time. ``SFPD_TEST_ORDER=reversed`` runs the modules, and
the tests of each module, in reverse order: a test that leans on another's state shows."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import tempfile
from pathlib import Path

import duckdb
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "socrata"
API_SAMPLE = FIXTURES / "sfpd_wg3w-h783_api_sample_2019-10.json"
CSV_EXPORT = FIXTURES / "sfpd_incident_reports_export_2018-12.csv"

# Published figures, where a test states a count that is not the fixtures': DataSF's 41
# Analysis Neighborhoods and SFPD's 10 police districts with the dataset's 'Out of SF'
# (include/seeds, their sources in models/_seeds.yml; tests/unit/test_seeds.py holds them to it).
NEIGHBORHOODS, POLICE_DISTRICTS = 41, 10 + 1
HOURS_OF_A_WEEK = 7 * 24

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sfpd-airflow-home-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"


# Seconds per test, setup included: a module's first test also waits for its module fixtures
# (a scheduler's runs, a dbt build). About four times what each takes on a 2-core machine.
TIME_LIMIT = {"slow": 1800, "default": 600}
# The modules that take longest, first: with `pytest -n` (Makefile) each worker is handed a
# work unit at a time in collection order (pytest_xdist_make_scheduler below), so they finish
# together.
LONGEST_FIRST = (
    "tests/targets/test_targets.py",
    "tests/e2e/test_scheduler.py",
    "tests/e2e/test_operations.py",
    "tests/e2e/test_daily_dag_bigquery.py",
    "tests/e2e/test_backfill_dag.py",
    "tests/e2e/test_daily_dag.py",
)


def work_unit(nodeid: str) -> str:
    """What one worker runs together: a module (its module fixtures are set up once); the dbt
    tests, which share one build (tests/dbt/conftest.py); each case of the deploy targets'
    test, which are long."""
    path = nodeid.split("::")[0]
    if path.startswith("tests/dbt/"):  # they share one dbt build
        return "tests/dbt"
    if "::test_what_depends_on_the_environment_passes_in_the_target_venv[" in nodeid:
        return nodeid
    return path


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which an image's venv lacks
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # the collection's order: LONGEST_FIRST
    return ByWorkUnit(config, log)


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("timeout"):  # not in an image's venv
        for item in items:
            if not item.get_closest_marker("timeout"):
                kind = "slow" if item.get_closest_marker("slow") else "default"
                item.add_marker(pytest.mark.timeout(TIME_LIMIT[kind]))
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = os.environ.get("SFPD_TEST_ORDER", "")
    if order not in ("", "reversed"):
        raise pytest.UsageError(f"SFPD_TEST_ORDER must be 'reversed' or unset, not {order!r}")
    first = [path for path in LONGEST_FIRST if path in modules]
    paths = first + [path for path in modules if path not in first]
    if order == "reversed":
        items[:] = [item for path in reversed(paths) for item in reversed(modules[path])]
    else:
        items[:] = [item for path in paths for item in modules[path]]


def query(env: dict, sql: str, parameters: list | None = None) -> list[tuple]:
    """A read-only query on the DuckDB warehouse ``env`` (SFPD_DUCKDB_PATH) points at."""
    with duckdb.connect(env["SFPD_DUCKDB_PATH"], read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


class Logged(logging.Handler):
    """The records the project's loggers (``sfpd.*``) emitted, each once."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, logger: str = "sfpd", level: int = logging.DEBUG) -> list[str]:
        """What ``logger`` (and the loggers below it) said at ``level`` or above."""
        return [
            r.getMessage() for r in self.records
            if (r.name == logger or r.name.startswith(logger + ".")) and r.levelno >= level
        ]  # fmt: skip

    @property
    def text(self) -> str:
        return "\n".join(self.messages())

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def logs():
    """What the project's loggers said during the test (INFO and above), each record once. A
    handler on the ``sfpd`` logger itself: pytest's caplog sits on the root logger, whose
    handlers Airflow's logging setup replaces once a test imported it (caplog then sees a
    record twice, or not at all, by the order the tests ran in)."""
    loggers = [logging.getLogger("sfpd")] + [
        logger for name, logger in logging.root.manager.loggerDict.items()
        if name.startswith("sfpd.") and isinstance(logger, logging.Logger)
    ]  # fmt: skip
    saved = [(logger.level, logger.disabled, logger.propagate) for logger in loggers]
    for logger in loggers[1:]:  # each reaches the handler, whatever a setup did to it
        logger.disabled, logger.propagate = False, True
        logger.setLevel(logging.NOTSET)
    loggers[0].disabled = False
    loggers[0].setLevel(logging.INFO)
    handler = Logged()
    loggers[0].addHandler(handler)
    try:
        yield handler
    finally:
        loggers[0].removeHandler(handler)
        for logger, (level, disabled, propagate) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.disabled, logger.propagate = disabled, propagate


@functools.cache
def bundled_rows() -> tuple[dict, ...]:
    """Every bundled real row once, as the replay server serves them (tests count from these
    rather than type a count in)."""
    from sfpd_dev.replay import load_corpus

    return tuple(load_corpus(FIXTURES))


def rows_of(window) -> list[dict]:
    """The bundled rows of a window (anything with ``soql_where()``), as the server selects
    them."""
    from sfpd_dev.replay import rows_in

    return rows_in(bundled_rows(), window.soql_where())


def reports_of(rows) -> int:
    """Reports (distinct incident_id) among rows: a report has a row per offence."""
    return len({row["incident_id"] for row in rows})


@pytest.fixture(scope="session")
def api_rows() -> list[dict]:
    """1,000 real rows as the SODA API returns them (nulls omitted)."""
    return json.loads(API_SAMPLE.read_text())


@pytest.fixture(scope="session")
def replay_server():
    from sfpd_dev.replay import ReplayServer

    with ReplayServer(FIXTURES) as server:
        yield server


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    """fake-gcs-server and bqemulator sharing one filesystem root (BigQuery loads gs:// URIs)."""
    from tests.emulators.servers import start_bigquery, start_gcs

    workdir = tmp_path_factory.mktemp("emulators")
    root = workdir / "gcs-root"
    root.mkdir()
    gcs = start_gcs(root, workdir)
    try:
        bq = start_bigquery(root, workdir)
    except BaseException:
        gcs.stop()
        raise
    try:
        yield {"gcs": gcs, "bq": bq, "root": root}
    finally:
        try:
            bq.stop()
        finally:
            gcs.stop()


def moved(row: dict, when: str) -> dict:
    """The row corrected upstream to another incident date (every date field follows)."""
    from sfpd.schema import FIELD_NAMES

    at = dt.datetime.fromisoformat(when)
    fields = {key: row[key] for key in FIELD_NAMES if key in row}
    return {
        **fields,
        "incident_datetime": at.isoformat(timespec="milliseconds"),
        "incident_date": at.date().isoformat() + "T00:00:00.000",
        "incident_year": str(at.year),
        "incident_day_of_week": at.strftime("%A"),
    }
