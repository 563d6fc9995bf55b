"""End to end under a real scheduler, as users run the DAGs (the UI, `astro dev start`, `make
airflow`): api-server, scheduler (LocalExecutor, parallelism 4), dag-processor and triggerer on
127.0.0.1, runs triggered through the REST API, retries left at the DAGs' defaults.

One Airflow for the whole module; in it, at the same time:
- the daily DAG for 2019-01-01, once with ``logical_date: null`` (the UI's Trigger with no date),
  and the run the scheduler creates when the DAG is unpaused;
- a three-month backfill in week chunks, then a one-chunk backfill whose MERGE worker is killed
  with SIGKILL while it holds the warehouse (Airflow retries it).
Then: every run succeeded, no task needed a retry but the killed one, the raw table holds
exactly the source's rows of every window loaded (one copy each), the marts are built, and no
two tasks that open the DuckDB file ever ran at the same time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import time
from pathlib import Path

import pytest

from sfpd.backfill import plan_backfill
from sfpd.window import SF_TZ, Window, rolling_window
from sfpd_dev.airflow_local import LocalAirflow
from sfpd_dev.bench import synthetic_rows
from sfpd_dev.local import airflow_env
from sfpd_dev.replay import rows_in
from tests.conftest import PROJECT_ROOT, query

pytestmark = pytest.mark.e2e

DAILY, BACKFILL = "sfpd_incidents_daily", "sfpd_incidents_backfill"
BACKFILL_RANGE = Window(dt.date(2019, 9, 1), dt.date(2019, 12, 1))
# Sunday 2019-09-01 alone, 12 Monday-to-Sunday weeks, then 2019-11-25 to 2019-12-01
WEEKS = len(plan_backfill(BACKFILL_RANGE.start, BACKFILL_RANGE.end, "week", dt.date(2026, 1, 1)))
ONE_CHUNK = Window(dt.date(2018, 12, 1), dt.date(2019, 1, 1))  # December 2018 as one month
WAIT = 600  # seconds for all runs together
# The tasks that open the DuckDB file: the check of the source's metadata against the audit,
# MERGEs, the catch-up, the dbt build (the watcher's producer), reports.
DUCKDB_TASKS = (
    "source_changed", "merge", "catch_up", "chunk.merge", "dbt.dbt_producer_watcher", "report"
)  # fmt: skip


@pytest.fixture(scope="module")
def source(replay_server):
    """The bundled real rows plus 2,000 rows (real rows moved to new reports) over the last ten
    weeks, so the runs anchored on today (no logical date; the unpause run) have rows too."""
    today = dt.datetime.now(SF_TZ).date()
    recent = Window(today - dt.timedelta(weeks=10), today + dt.timedelta(days=1))
    bundled = list(replay_server.corpus)
    replay_server.replace_corpus(bundled + synthetic_rows(2000, span=recent))
    yield replay_server
    replay_server.replace_corpus(bundled)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, source):
    home = tmp_path_factory.mktemp("scheduler")
    env = {
        **airflow_env(PROJECT_ROOT, home),
        "SFPD_DUCKDB_PATH": str(home / "state" / "sfpd.duckdb"),
        "SFPD_LAKE_URI": (home / "state" / "lake").as_uri(),
        "AIRFLOW_CONN_SOCRATA_DEFAULT": source.connection_uri_json(),
    }
    env.pop("SFPD_TASK_RETRIES", None)  # the DAGs' defaults
    with LocalAirflow(home, env, parallelism=4) as running:
        running.wait_for_dags((DAILY, BACKFILL))
        yield running


def running_pid(ti_id: str, timeout: float = 120) -> int:
    """The pid of a task instance's process (its title: ``airflow worker -- <ti id>``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if f"airflow worker -- {ti_id}" in (proc / "cmdline").read_text():
                        return int(proc.name)
                except OSError:
                    continue
        time.sleep(0.01)
    raise TimeoutError(f"no process for task instance {ti_id}")


def kill_while_holding(pid: int, path: Path, timeout: float = 60) -> None:
    """SIGKILL ``pid`` as soon as it has ``path`` open (mid-MERGE: one transaction)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(fd.resolve() == path for fd in Path(f"/proc/{pid}/fd").iterdir()):
                os.kill(pid, signal.SIGKILL)
                return
        except OSError:
            pass  # an fd closed while we looked
        time.sleep(0.002)
    raise TimeoutError(f"process {pid} never opened {path}")


def ti_of(airflow, dag_id, run_id, task_id, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in airflow.api.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running":
                return ti
        time.sleep(0.2)
    raise TimeoutError(f"{dag_id}.{task_id} of {run_id} never ran")


@pytest.fixture(scope="module")
def runs(airflow):
    """Trigger everything, kill the one-chunk backfill's MERGE once, wait for every run."""
    api = airflow.api
    daily = [api.trigger(DAILY, "2019-01-01T14:00:00Z"), api.trigger(DAILY, None)]
    backfill = api.trigger(
        BACKFILL,
        None,
        {"start_date": str(BACKFILL_RANGE.start), "end_date": str(BACKFILL_RANGE.end),
         "chunk": "week"},
    )  # fmt: skip
    one_chunk = api.trigger(
        BACKFILL,
        None,
        {"start_date": str(ONE_CHUNK.start), "end_date": str(ONE_CHUNK.end), "chunk": "month"},
    )
    api.unpause(DAILY)  # the scheduler also creates today's scheduled run now
    api.unpause(BACKFILL)

    merge = ti_of(airflow, BACKFILL, one_chunk, "chunk.merge", timeout=WAIT)
    duckdb_file = Path(airflow.env["SFPD_DUCKDB_PATH"])
    kill_while_holding(running_pid(merge["id"]), duckdb_file)

    deadline = time.monotonic() + WAIT
    finished = {}
    for dag_id, run_id in [
        *((DAILY, r) for r in daily),
        (BACKFILL, backfill),
        (BACKFILL, one_chunk),
    ]:
        finished[run_id] = api.wait_for_run(dag_id, run_id, max(1, deadline - time.monotonic()))
    for run in api.dag_runs(DAILY):  # the run created on unpause
        finished[run["dag_run_id"]] = api.wait_for_run(
            DAILY, run["dag_run_id"], max(1, deadline - time.monotonic())
        )
    return {
        "runs": finished,
        "task_instances": {
            run_id: airflow.api.task_instances(run["dag_id"], run_id)
            for run_id, run in finished.items()
        },
        "one_chunk": one_chunk,
    }


def test_every_run_succeeds_without_retries_but_the_killed_merge(runs):
    assert len(runs["runs"]) == 5  # 2019-01-01, no logical date, the unpause run, 2 backfills
    failed = {r: run["state"] for r, run in runs["runs"].items() if run["state"] != "success"}
    assert not failed, failed
    retried = {
        (run_id, ti["task_id"], ti["map_index"]): ti["try_number"]
        for run_id, tis in runs["task_instances"].items()
        for ti in tis
        if ti["try_number"] > 1
    }
    assert retried == {(runs["one_chunk"], "chunk.merge", 0): 2}
    states = {ti["state"] for tis in runs["task_instances"].values() for ti in tis}
    assert states <= {"success", "skipped"}
    # skipped: only a daily run's extract and merge, when the source had not changed since a
    # run before it loaded the same window (two dailies are anchored on today)
    skipped = {ti["task_id"] for ti in skipped_tis(runs)}
    assert skipped <= {"extract", "merge"}


def skipped_tis(runs) -> list[dict]:
    return [ti for tis in runs["task_instances"].values() for ti in tis if ti["state"] == "skipped"]


def test_a_run_without_a_logical_date_anchors_on_when_it_was_triggered(runs, airflow):
    (manual,) = [
        run
        for run in runs["runs"].values()
        if run["dag_id"] == DAILY and run["logical_date"] is None
    ]
    run_after = dt.datetime.fromisoformat(manual["run_after"])
    audit = "SELECT window_start, window_end FROM sfpd_raw.load_audit WHERE kind = 'window' AND "
    loaded = query(airflow.env, audit + "run_id = ?", [manual["dag_run_id"]])
    if not loaded:  # it ran after the scheduled run, which loaded the same window: skipped
        tis = runs["task_instances"][manual["dag_run_id"]]
        assert {ti["task_id"] for ti in tis if ti["state"] == "skipped"} == {"extract", "merge"}
        window = rolling_window(run_after)
        loaded = query(airflow.env, audit + "window_start = ? AND window_end = ?",
                       [window.start, window.end])[:1]  # fmt: skip
    # two months ending at the San Francisco date of the trigger
    assert [Window(*row) for row in loaded] == [rolling_window(run_after)]


def windows_loaded(env) -> list[Window]:
    return [
        Window(start, end)
        for start, end in query(
            env,
            "SELECT DISTINCT window_start, window_end FROM sfpd_raw.load_audit "
            "WHERE window_start IS NOT NULL",
        )
    ]


def test_raw_table_is_exactly_the_sources_rows_of_every_window(runs, airflow, source):
    env = airflow.env
    windows = windows_loaded(env)
    expected = set()
    for window in windows:
        expected |= {row["row_id"] for row in rows_in(source.corpus, window.soql_where())}
    # the windows of all five runs: two dailies on today, 2019-01-01, the weeks, December 2018
    assert Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1)) in windows
    assert ONE_CHUNK in windows
    assert sum(BACKFILL_RANGE.start <= w.start < BACKFILL_RANGE.end for w in windows) == WEEKS
    assert len(expected) > 11887 + 1799 + 1000  # bundled windows plus recent synthetic rows
    raw = query(env, "SELECT row_id FROM sfpd_raw.incidents")
    assert len(raw) == len(expected)  # one copy each
    assert {row[0] for row in raw} == expected


def test_marts_are_built_from_every_row(runs, airflow):
    env = airflow.env
    raw, fact = query(
        env,
        "SELECT (SELECT count(*) FROM sfpd_raw.incidents), "
        "(SELECT count(*) FROM sfpd_marts.fct_incident_offences)",
    )[0]
    assert fact == raw
    assert query(env, "SELECT count(*) FROM sfpd_marts.rpt_hotspots_by_neighborhood") == [
        (41 * 168,)
    ]


def test_no_two_duckdb_tasks_ever_overlapped(runs):
    spans = sorted(
        (ti["start_date"], ti["end_date"], run_id, ti["task_id"], ti["map_index"])
        for run_id, tis in runs["task_instances"].items()
        for ti in tis
        if ti["task_id"] in DUCKDB_TASKS and ti["state"] != "skipped"
    )
    # 3 dailies x 5 but the merges skipped; the week backfill: a MERGE a week, its dbt build,
    # its report; one chunk: 3
    merges_skipped = sum(ti["task_id"] == "merge" for ti in skipped_tis(runs))
    assert len(spans) == 15 - merges_skipped + WEEKS + 2 + 3
    for before, after in itertools.pairwise(spans):
        assert after[0] >= before[1], f"{before[2:]} and {after[2:]} overlapped"


def test_zz_timeline(runs, capsys):
    """Not a check: each run's duration, printed (the benchmark measures them properly)."""
    lines = []
    for run_id, run in sorted(runs["runs"].items(), key=lambda item: item[1]["start_date"]):
        start, end = (dt.datetime.fromisoformat(run[k]) for k in ("start_date", "end_date"))
        lines.append(f"{run['dag_id']} {run_id}: {(end - start).total_seconds():.0f} s")
    with capsys.disabled():
        print("\nscheduler runs:\n  " + "\n  ".join(lines))
    assert lines
