"""Every DAG file imports cleanly and follows the project's rules (Astro template style), each
DAG file on its own so one broken file does not hide another. These tests ship in the image
(`astro dev pytest`): they import only what the image holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.dags.dagbag import dagbag_class

DAGS_FOLDER = PROJECT_ROOT / "dags"
DAG_FILES = {"sfpd_incidents_daily.py": "sfpd_incidents_daily",
             "sfpd_incidents_backfill.py": "sfpd_incidents_backfill"}  # fmt: skip
PRODUCER = "dbt.dbt_producer_watcher"
PARSE_LIMIT = 300  # seconds for a subprocess that parses the DAG files
# a subprocess's path: the runtime package and this package (tests.dags.dagbag)
PYTHONPATH = os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)])


def parsed(script: str, *args: str, env: dict | None = None) -> object:
    """What ``script`` printed last (JSON), run in a new Python with the settings ``env``: a
    DAG file parsed in a process of its own, as the DAG processor parses it."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": PYTHONPATH, **(env or {})},
        capture_output=True, text=True, check=True, timeout=PARSE_LIMIT,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=sorted(DAG_FILES))
def dag_file(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def dagbag(dag_file):
    """The DAG file parsed alone."""
    return dagbag_class()(dag_folder=str(DAGS_FOLDER / dag_file))


@pytest.fixture(scope="module")
def dag(dagbag, dag_file):
    assert dagbag.import_errors == {}, "\n".join(
        f"{path}: {error}" for path, error in dagbag.import_errors.items()
    )
    assert list(dagbag.dags) == [DAG_FILES[dag_file]]
    return dagbag.dags[DAG_FILES[dag_file]]


def test_every_dag_file_is_checked():
    assert {path.name for path in DAGS_FOLDER.glob("*.py")} == set(DAG_FILES)


def test_the_dag_file_imports_and_defines_its_dag(dag):
    assert dag.fileloc.endswith(dag.dag_id + ".py")


def test_the_dag_has_tags_docs_and_retries(dag):
    assert dag.tags, f"{dag.dag_id} has no tags"
    assert dag.doc_md, f"{dag.dag_id} has no doc_md"
    for task in dag.tasks:
        if task.task_id == PRODUCER:
            # Cosmos skips a retried watcher producer: a failed dbt build fails the run
            assert task.retries == 0
            continue
        assert task.retries >= 2, f"{dag.dag_id}.{task.task_id} retries {task.retries} < 2"


@pytest.fixture(scope="module")
def daily():
    return dagbag_class()(dag_folder=str(DAGS_FOLDER / "sfpd_incidents_daily.py")).dags[
        "sfpd_incidents_daily"
    ]


@pytest.fixture(scope="module")
def backfill():
    return dagbag_class()(dag_folder=str(DAGS_FOLDER / "sfpd_incidents_backfill.py")).dags[
        "sfpd_incidents_backfill"
    ]


def test_daily_dag_schedule_and_concurrency(daily):
    dag = daily
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert str(dag.timetable.description).startswith("At 06:00")
    assert dag.timezone.name == "America/Los_Angeles"
    # source_changed (may skip) -> extract -> merge -> catch_up (runs either way) -> dbt
    assert dag.get_task("source_changed").downstream_task_ids == {"extract"}
    assert dag.get_task("catch_up").trigger_rule == "none_failed"
    assert dag.get_task("extract").downstream_task_ids == {"merge"}
    assert dag.get_task("merge").downstream_task_ids == {"catch_up"}
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.")}
    assert "dbt.stg_sfpd__incidents.run" in dbt_tasks
    assert dag.get_task("catch_up").downstream_task_ids & dbt_tasks
    # the lake's old load folders and reports go once the run's report is written
    assert dag.get_task("report").downstream_task_ids == {"prune_lake"}
    # force_pull on the Trigger form, its default from SFPD_FORCE_PULL
    assert dag.params.get_param("force_pull").schema["type"] == "boolean"
    assert dag.params["force_pull"] is False
    assert forced_pull_default() is True


def test_backfill_dag_is_manual_with_a_validated_form(backfill):
    dag = backfill
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None
    assert dag.max_active_runs == 1
    params = dag.params
    assert set(params) == {"start_date", "end_date", "chunk", "run_dbt"}
    assert params.get_param("start_date").schema["format"] == "date"
    assert params.get_param("chunk").schema["enum"] == ["week", "month", "quarter"]
    assert all(params.get_param(name).description for name in params)
    # chunks map over extract -> merge; the gate for dbt comes after all of them
    assert dag.get_task("chunk.extract").downstream_task_ids == {"chunk.merge"}
    assert dag.get_task("chunk.merge").downstream_task_ids == {"summarise_backfill"}
    dbt_roots = dag.get_task("dbt_requested").downstream_task_ids
    assert dbt_roots and all(task_id.startswith("dbt.") for task_id in dbt_roots)


# Libraries the tasks need but parsing does not: a DAG file is parsed every few seconds by the
# DAG processor, so these load only when a task runs (docs/benchmarks.md has the parse times).
# Not requests: with the OpenLineage provider installed, Cosmos's operators import its client,
# which imports requests.
TASK_ONLY_MODULES = [
    "pyarrow",
    "duckdb",
    "sodapy",
    "pandas",
    "plotly",
    "dbt.cli.main",
    "google.cloud.bigquery",
    "airflow.providers.google.cloud.hooks.gcs",
]

PARSE_AND_LIST_MODULES = """
import json, sys
from tests.dags.dagbag import dagbag_class
DagBag = dagbag_class()
already = set(sys.modules)  # what Airflow itself imports (Airflow 3.1's DagBag: requests)
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors and bag.dags, bag.import_errors
print(json.dumps([name for name in sys.argv[2:] if name in sys.modules and name not in already]))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS_FOLDER.glob("*.py")))
def test_parsing_a_dag_file_imports_no_task_only_library(dag_file):
    loaded = parsed(PARSE_AND_LIST_MODULES, str(DAGS_FOLDER / dag_file), *TASK_ONLY_MODULES)
    assert loaded == []


TASKS_AS_JSON = """
import json, sys
from tests.dags.dagbag import dagbag_class
DagBag = dagbag_class()
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors and bag.dags, bag.import_errors
print(json.dumps({dag_id: {t.task_id: [t.pool, type(t).__name__, sorted(t.upstream_task_ids),
                                       t.trigger_rule.value, getattr(t, "full_refresh", None)]
                           for t in dag.tasks}
                  for dag_id, dag in bag.dags.items()}))
"""


def tasks_parsed_with(env: dict) -> dict:
    """{dag_id: {task_id: [pool, operator, upstream ids, trigger rule, dbt's --full-refresh]}},
    parsed with ``env``."""
    return parsed(TASKS_AS_JSON, str(DAGS_FOLDER), env=env)


FORCE_PULL_DEFAULT = """
import json, sys
from tests.dags.dagbag import dagbag_class
bag = dagbag_class()(dag_folder=sys.argv[1])
print(json.dumps(bag.dags["sfpd_incidents_daily"].params["force_pull"]))
"""


def forced_pull_default() -> bool:
    """The daily DAG's force_pull default, parsed with SFPD_FORCE_PULL=true."""
    daily = str(DAGS_FOLDER / "sfpd_incidents_daily.py")
    return parsed(FORCE_PULL_DEFAULT, daily, env={"SFPD_FORCE_PULL": "true"})


BIGQUERY = {"SFPD_WAREHOUSE": "bigquery", "SFPD_GCP_PROJECT": "sfpd-p", "SFPD_LAKE_URI": "gs://b/x"}
MERGES = {"merge", "catch_up", "chunk.merge"}
# after the build: source freshness and docs open the warehouse too
AFTER_DBT = {"report", "source_changed", "dbt_source_freshness", "dbt_docs"}


@pytest.mark.parametrize(
    ("env", "one_at_a_time"),
    [
        # DuckDB: one dbt build (watcher); it, the MERGEs and the reports share the 1-slot pool
        ({}, lambda task_id: task_id in {*MERGES, PRODUCER, *AFTER_DBT}),
        # DuckDB with a task per dbt node: every one of those in the pool too
        (
            {"SFPD_DBT_EXECUTION_MODE": "local"},
            lambda task_id: task_id in {*MERGES, *AFTER_DBT} or task_id.startswith("dbt."),
        ),
        # BigQuery: only the MERGEs (DML on one table); dbt nodes and reports run in parallel
        (BIGQUERY, lambda task_id: task_id in MERGES),
        # BigQuery with dbt in Cosmos's virtualenv (Composer): the same
        ({**BIGQUERY, "SFPD_DBT_EXECUTION_MODE": "virtualenv"}, lambda task_id: task_id in MERGES),
    ],
)
def test_tasks_that_open_a_single_writer_warehouse_share_one_pool(env, one_at_a_time):
    for dag_id, tasks in tasks_parsed_with(env).items():
        pooled = {task_id for task_id, (pool, *_) in tasks.items() if pool == "sfpd_warehouse"}
        assert pooled == set(filter(one_at_a_time, tasks)), dag_id
        socrata = {task_id for task_id, (pool, *_) in tasks.items() if pool == "socrata_api"}
        # every task that reads Socrata (the merges read it through the catch-up, in theirs)
        daily = {"extract", "check_upstream"}
        assert socrata == (daily if dag_id == "sfpd_incidents_daily" else {"chunk.extract"})


def test_virtualenv_mode_runs_every_dbt_node_in_cosmos_virtualenv_operators():
    env = {**BIGQUERY, "SFPD_DBT_EXECUTION_MODE": "virtualenv"}
    for dag_id, tasks in tasks_parsed_with(env).items():
        operators = {v[1] for t, v in tasks.items() if t.startswith("dbt.")}
        assert operators == {"DbtBuildVirtualenvOperator", "DbtTestVirtualenvOperator"}, dag_id
        assert (tasks["dbt_docs"][1], tasks["dbt_source_freshness"][1]) == (
            "DbtDocsByProductVirtualenvOperator",
            "DbtSourceVirtualenvOperator",
        )


def test_watcher_sensors_start_after_the_producer():
    for dag_id, tasks in tasks_parsed_with({}).items():
        assert tasks[PRODUCER][1] == "DbtProducerWatcherOperator"
        sensors = {t: v for t, v in tasks.items() if t.startswith("dbt.") and t != PRODUCER}
        assert len(sensors) > 30, dag_id
        first = {t for t, (_, _, upstream, *_) in sensors.items() if PRODUCER in upstream}
        # the seeds and the staging model start at the producer's end, even if it failed
        assert {t.split(".")[1] for t in first} >= {"stg_sfpd__incidents", "police_districts"}
        assert {sensors[t][3] for t in first} == {"none_failed"}
        # every other sensor waits for an upstream sensor
        assert all(upstream for _, _, upstream, *_ in sensors.values()), dag_id


@pytest.mark.parametrize("env", [{}, BIGQUERY], ids=["watcher", "local"])
def test_the_backfill_builds_dbt_in_full_and_the_daily_run_by_month(env):
    """The daily build rebuilds the months its loads touched (include/dbt/macros/
    incremental_months.sql); a backfill, which may change any month, rebuilds everything."""
    parsed_tasks = tasks_parsed_with(env)
    for dag_id, full in (("sfpd_incidents_daily", False), ("sfpd_incidents_backfill", True)):
        builds = {t: v[4] for t, v in parsed_tasks[dag_id].items()
                  if v[1] in ("DbtProducerWatcherOperator", "DbtBuildLocalOperator")}  # fmt: skip
        assert builds and set(builds.values()) == {full}, dag_id


CALLBACKS_AS_JSON = """
import json, sys
try:
    from airflow.serialization.serialized_objects import DagSerialization
except ImportError:  # Airflow 3.1
    from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization
from tests.dags.dagbag import dagbag_class
bag = dagbag_class()(dag_folder=sys.argv[1])
assert not bag.import_errors and bag.dags, bag.import_errors
out = {}
for dag_id, dag in bag.dags.items():
    DagSerialization.to_dict(dag)  # what the scheduler stores: deadlines, callbacks serialise
    kinds = lambda cbs: sorted({type(c).__name__ for c in (cbs if isinstance(cbs, list) else [cbs])
                                if c})
    deadlines = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    out[dag_id] = {
        "run_failure": kinds(dag.on_failure_callback),
        "run_success": kinds(dag.on_success_callback),
        "deadlines": [[str(d.interval), d.callback.path] for d in deadlines if d],
        "tasks_without_alert": sorted(t.task_id for t in dag.tasks
                                      if "Alert" not in kinds(t.on_failure_callback)),
        "tasks": sorted(t.task_id for t in dag.tasks),
    }
print(json.dumps(out))
"""


@pytest.mark.parametrize("alerts", [True, False], ids=["alerts configured", "no alert channel"])
def test_every_task_and_run_alerts_only_when_a_channel_is_configured(alerts):
    env = {"SFPD_ALERT_EMAILS": "ops@example.org", "SFPD_LATE_AFTER_HOURS": "2.5"} if alerts else {}
    dags = parsed(CALLBACKS_AS_JSON, str(DAGS_FOLDER), env=env)
    daily, backfill = dags["sfpd_incidents_daily"], dags["sfpd_incidents_backfill"]
    if not alerts:  # no callback on any run or task, no deadline
        for dag_id, d in dags.items():
            assert (d["run_failure"], d["run_success"], d["deadlines"]) == ([], [], []), dag_id
            assert d["tasks_without_alert"] == d["tasks"], dag_id
            assert len(d["tasks"]) > 30, dag_id  # the dbt nodes' tasks among them
        return
    assert daily["run_failure"] == ["Alert"] and daily["run_success"] == []
    assert daily["deadlines"] == [["2:30:00", "sfpd.alerts.run_late"]]
    # the backfill: one summary when a run ends, either way; no deadline (it runs as long as
    # its range needs)
    assert (backfill["run_failure"], backfill["run_success"]) == (["Alert"], ["Alert"])
    assert backfill["deadlines"] == []
    assert daily["tasks_without_alert"] == backfill["tasks_without_alert"] == []
    assert len(daily["tasks"]) > 30 and len(backfill["tasks"]) > 30


def test_the_tasks_that_write_a_table_update_its_asset(dag):
    outlets = {
        task.task_id: sorted(o.name for o in task.outlets if type(o).__name__ == "Asset")
        for task in dag.tasks
    }
    writers = {task_id: names for task_id, names in outlets.items() if names}
    raw = {t: n for t, n in writers.items() if n == ["sfpd_raw.incidents"]}
    assert set(raw) == ({"merge", "catch_up"} if "daily" in dag.dag_id else {"chunk.merge"})
    marts = {t: n for t, n in writers.items() if t not in raw}
    # each mart's model: the task that finishes it (the watcher's test of the node)
    assert {n[0].removeprefix("sfpd_marts.") for n in marts.values()} == {
        t.split(".")[1] for t in marts
    }
    assert len(marts) == 9 and all(t.endswith(".test") for t in marts)


IMPORT_ERRORS = """
import json, sys
from tests.dags.dagbag import dagbag_class
bag = dagbag_class()(dag_folder=sys.argv[1])
print(json.dumps({path.rsplit("/", 1)[-1]: error for path, error in bag.import_errors.items()}))
"""


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"SFPD_WAREHOUSE": "snowflake"}, "SFPD_WAREHOUSE='snowflake' is not supported"),
        ({"SFPD_FORCE_PULL": "maybe"}, "SFPD_FORCE_PULL='maybe' is not one of"),
    ],
)
def test_a_bad_setting_is_an_import_error_of_each_dag_naming_it(setting, message):
    """What the DAG processor shows (Airflow's import errors) for a setting it cannot use."""
    errors = parsed(IMPORT_ERRORS, str(DAGS_FOLDER), env=setting)
    assert set(errors) == set(DAG_FILES)
    for error in errors.values():
        assert f"ConfigError: {message}" in error
