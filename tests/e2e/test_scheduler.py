"""End to end under a real scheduler, as users run the DAGs (the UI, `astro dev start`, `make
airflow`): api-server, scheduler (LocalExecutor, parallelism 4), dag-processor and triggerer on
127.0.0.1, runs triggered through the REST API, retries left at the DAGs' defaults.

One Airflow for the whole module; in it, at the same time:
- the daily DAG for 2019-10-01, once with ``logical_date: null`` (the UI's Trigger with no date),
  and the run the scheduler creates when the DAG is unpaused;
- a one-month backfill in week chunks, then a one-chunk backfill whose MERGE worker is killed
  with SIGKILL inside the MERGE's open transaction (pause_in_merge/sitecustomize.py holds it
  there; Airflow retries it). Its month is no other run's, so the MERGE it kills has written
  every row of it inside its transaction, whichever run reaches the warehouse first.
Then: every run succeeded, no task needed a retry but the killed one, the killed MERGE left
nothing behind, the raw table holds exactly the source's rows of every window loaded (one copy
each), the marts are built, and no two tasks that open the DuckDB file ever ran at the same time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
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
from tests.conftest import HOURS_OF_A_WEEK, NEIGHBORHOODS, PROJECT_ROOT, query, rows_of

pytestmark = pytest.mark.slow

DAILY, BACKFILL = "sfpd_incidents_daily", "sfpd_incidents_backfill"
DAILY_DATE = "2019-10-01T13:00:00Z"  # its window: August and September 2019
BACKFILL_RANGE = Window(dt.date(2019, 10, 1), dt.date(2019, 11, 1))
# Tuesday 2019-10-01 to Sunday, three Monday-to-Sunday weeks, then 2019-10-28 to 2019-10-31
WEEKS = len(plan_backfill(BACKFILL_RANGE.start, BACKFILL_RANGE.end, "week", dt.date(2026, 1, 1)))
ONE_CHUNK = Window(dt.date(2018, 12, 1), dt.date(2019, 1, 1))  # December 2018 as one month
# The one-chunk backfill's MERGE, and only it, bounds its target by these dates.
ONE_CHUNK_MERGE = (
    f"target.incident_date >= DATE '{ONE_CHUNK.start}' AND target.incident_date < DATE "
    f"'{ONE_CHUNK.end}'"
)
PAUSE_HOOK = Path(__file__).parent / "pause_in_merge"
WAIT = 600  # seconds for all runs together
# The tasks that open the DuckDB file: the check of the source's metadata against the audit,
# MERGEs, the catch-up, the dbt build (the watcher's producer), source freshness, dbt docs,
# reports.
DUCKDB_TASKS = (
    "source_changed", "merge", "catch_up", "chunk.merge", "dbt.dbt_producer_watcher",
    "dbt_source_freshness", "dbt_docs", "report",
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
        # every Airflow process loads the hook that pauses the one-chunk MERGE, once
        "PYTHONPATH": f"{PAUSE_HOOK}:{os.environ.get('PYTHONPATH', '')}",
        "SFPD_TEST_PAUSE_MERGE_OF": ONE_CHUNK_MERGE,
        "SFPD_TEST_PAUSE_MARKER": str(home / "paused-merge.json"),
    }
    env.pop("SFPD_TASK_RETRIES", None)  # the DAGs' defaults
    with LocalAirflow(home, env, parallelism=4) as running:
        running.wait_for_dags((DAILY, BACKFILL))
        yield running


def paused_merge(marker: Path, timeout: float) -> dict:
    """What the hook wrote once the MERGE paused inside its transaction: its pid, its load's time
    stamp and the rows carrying it there."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no MERGE paused ({marker} never written)")
        time.sleep(0.2)
    return json.loads(marker.read_text())


@pytest.fixture(scope="module")
def runs(airflow):
    """Trigger everything, kill the one-chunk backfill's MERGE inside its transaction once, wait
    for every run."""
    api = airflow.api
    daily = [api.trigger(DAILY, DAILY_DATE), api.trigger(DAILY, None)]
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

    killed = paused_merge(Path(airflow.env["SFPD_TEST_PAUSE_MARKER"]), timeout=WAIT)
    os.kill(killed["pid"], signal.SIGKILL)

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
        "killed": killed,
    }


def test_every_run_succeeds_without_retries_but_the_killed_merge(runs):
    assert len(runs["runs"]) == 5  # 2019-10-01, no logical date, the unpause run, 2 backfills
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


def test_the_killed_merge_left_nothing_behind(runs, airflow):
    """Inside its transaction the MERGE had written the chunk's rows (stamped with its load's
    time); after the kill no row and no audit row carries that time: DuckDB rolled it back, and
    the retry loaded the chunk anew."""
    stamp = runs["killed"]["loaded_at_us"]
    # every row of December 2018, written inside the open transaction
    assert runs["killed"]["stamped"] == len(rows_of(ONE_CHUNK))
    at = f"make_timestamp({stamp})"
    assert query(
        airflow.env, f"SELECT count(*) FROM sfpd_raw.incidents WHERE _loaded_at = {at}"
    ) == [(0,)]
    assert query(
        airflow.env, f"SELECT count(*) FROM sfpd_raw.load_audit WHERE loaded_at = {at}"
    ) == [(0,)]
    retried = query(
        airflow.env,
        "SELECT rows_read FROM sfpd_raw.load_audit WHERE run_id = ? AND kind = 'window'",
        [runs["one_chunk"]],
    )
    assert retried and retried[0][0] > 1000


def skipped_tis(runs) -> list[dict]:
    return [ti for tis in runs["task_instances"].values() for ti in tis if ti["state"] == "skipped"]


def test_a_run_without_a_logical_date_anchors_on_when_it_was_triggered(runs, airflow):
    (manual,) = [
        run
        for run in runs["runs"].values()
        if run["dag_id"] == DAILY and run["logical_date"] is None
    ]
    # two months ending at the San Francisco date of the trigger: the window it planned
    window = Window.from_dict(airflow.api.xcom(DAILY, manual["dag_run_id"], "plan_window"))
    assert window == rolling_window(dt.datetime.fromisoformat(manual["run_after"]))
    audit = "SELECT window_start, window_end FROM sfpd_raw.load_audit WHERE kind = 'window' AND "
    loaded = query(airflow.env, audit + "run_id = ?", [manual["dag_run_id"]])
    tis = runs["task_instances"][manual["dag_run_id"]]
    if loaded:  # and loaded it
        assert [Window(*row) for row in loaded] == [window]
    else:  # or found it loaded by the run before it (the unpause run), the source unchanged
        assert {ti["task_id"] for ti in tis if ti["state"] == "skipped"} == {"extract", "merge"}
        assert window in windows_loaded(airflow.env)


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
    # the windows of all five runs: two dailies on today, 2019-10-01, the weeks, December 2018
    assert rolling_window(dt.datetime.fromisoformat(DAILY_DATE)) in windows
    assert ONE_CHUNK in windows
    assert sum(BACKFILL_RANGE.start <= w.start < BACKFILL_RANGE.end for w in windows) == WEEKS
    bundled = {row["row_id"] for w in windows for row in rows_of(w)}
    assert len(expected) > len(bundled) > len(rows_of(ONE_CHUNK))  # and recent synthetic rows
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
        (NEIGHBORHOODS * HOURS_OF_A_WEEK,)
    ]


def test_no_two_duckdb_tasks_ever_overlapped(runs):
    spans = sorted(
        (ti["start_date"], ti["end_date"], run_id, ti["task_id"], ti["map_index"])
        for run_id, tis in runs["task_instances"].items()
        for ti in tis
        if ti["task_id"] in DUCKDB_TASKS and ti["state"] != "skipped"
    )
    # 3 dailies x 7 but the merges skipped; the week backfill: a MERGE a week, its dbt build,
    # freshness, docs, report; one chunk: 5
    merges_skipped = sum(ti["task_id"] == "merge" for ti in skipped_tis(runs))
    assert len(spans) == 21 - merges_skipped + WEEKS + 4 + 5
    for before, after in itertools.pairwise(spans):
        assert after[0] >= before[1], f"{before[2:]} and {after[2:]} overlapped"
