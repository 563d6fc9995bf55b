"""End to end: `airflow dags test sfpd_incidents_backfill` on the embedded warehouse against the
replay server: three monthly chunks give the raw table the same windows loaded by the pipeline's
own functions give, dbt builds once over the range; rows changed or removed upstream are updated
or deleted inside their chunk, and with run_dbt off dbt does not run; a bad param fails the
first task before anything is read. Each test sets up what it asserts on (the module's runs
share one warehouse, as a deployment does)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from sfpd.lake import open_lake
from sfpd.pipeline import Loader
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Window
from tests.conftest import query, rows_of
from tests.e2e.conftest import dags_test, state_env

pytestmark = pytest.mark.slow

BACKFILL = "sfpd_incidents_backfill"
# Sep-Nov 2019, one chunk per month.
CHUNKS = [
    Window.from_dict({"start": start, "end": end})
    for start, end in (("2019-09-01", "2019-10-01"), ("2019-10-01", "2019-11-01"),
                       ("2019-11-01", "2019-12-01"))
]  # fmt: skip
CONF = {"start_date": "2019-09-01", "end_date": "2019-12-01", "chunk": "month"}
# Every column but the load time (which differs between two loads).
RAW = "SELECT * EXCLUDE (_loaded_at) FROM sfpd_raw.incidents ORDER BY row_id"


def changes_of_last_run(env) -> list[tuple]:
    """(window_start, inserted, updated, deleted) per chunk of the latest run in load_audit
    (each backfill here has its own logical date, hence its own run_id)."""
    return query(
        env,
        "SELECT window_start::VARCHAR, rows_inserted, rows_updated, rows_deleted "
        "FROM sfpd_raw.load_audit "
        "WHERE run_id = (SELECT run_id FROM sfpd_raw.load_audit ORDER BY loaded_at DESC LIMIT 1) "
        "ORDER BY window_start",
    )


@pytest.fixture(scope="module")
def backfill_env(airflow_home_env, tmp_path_factory):
    return state_env(airflow_home_env, tmp_path_factory.mktemp("backfill"))


def reference(replay_server, directory: Path) -> dict:
    """The same chunks loaded by the pipeline's functions, no Airflow: the table to compare."""
    warehouse = DuckDBWarehouse(directory / "reference.duckdb")
    endpoint = SocrataEndpoint(host="127.0.0.1", port=replay_server.port, scheme="http")
    with SocrataSource(endpoint) as source:
        loader = Loader(source, open_lake(directory.as_uri()), warehouse, "wg3w-h783", "reference")
        for window in CHUNKS:
            loader.load(window)
    return {"SFPD_DUCKDB_PATH": str(warehouse.path)}


@pytest.fixture(scope="module")
def backfilled(backfill_env) -> dict:
    """A backfill of the range: the state the module's other tests start from, and what it
    left right after it (the raw table, each chunk's changes, the mart's offences), whatever
    ran after it."""
    dags_test(backfill_env, "2019-12-01", BACKFILL, CONF)
    mart = "SELECT sum(offence_count) FROM sfpd_marts.rpt_daily_reports_by_district"
    return {
        "table": query(backfill_env, RAW),
        "changes": changes_of_last_run(backfill_env),
        "offences": query(backfill_env, mart)[0][0],
    }


def test_three_monthly_chunks_give_the_table_their_windows_give(
    backfilled, replay_server, tmp_path
):
    per_chunk = [len(rows_of(window)) for window in CHUNKS]
    assert all(per_chunk)
    table = backfilled["table"]
    assert len(table) == sum(per_chunk)
    assert table == query(reference(replay_server, tmp_path), RAW)
    assert backfilled["changes"] == [
        (str(window.start), rows, 0, 0) for window, rows in zip(CHUNKS, per_chunk, strict=True)
    ]
    assert backfilled["offences"] == len(table)  # dbt ran once, after the chunks, over them all


def test_backfill_applies_upstream_changes_and_removals_and_run_dbt_off_skips_dbt(
    backfilled, backfill_env, replay_server
):
    original = copy.deepcopy(replay_server.corpus)
    in_october = [r for r in original if r["incident_datetime"].startswith("2019-10")]
    removed, changed = in_october[0]["row_id"], in_october[1]["row_id"]
    resolution = "Unfounded" if in_october[1].get("resolution") != "Unfounded" else "Open or Active"
    rows = []
    for row in copy.deepcopy(original):
        if row["row_id"] == removed:
            continue  # sealed upstream: gone without a tombstone
        if row["row_id"] == changed:
            row["resolution"] = resolution
        rows.append(row)
    replay_server.replace_corpus(rows)
    try:
        log = dags_test(backfill_env, "2019-12-03", BACKFILL, {**CONF, "run_dbt": False})
    finally:
        replay_server.replace_corpus(original)
    assert changes_of_last_run(backfill_env) == [
        ("2019-09-01", 0, 0, 0),
        ("2019-10-01", 0, 1, 1),
        ("2019-11-01", 0, 0, 0),
    ]
    assert query(
        backfill_env, f"SELECT count(*) FROM sfpd_raw.incidents WHERE row_id = '{removed}'"
    ) == [(0,)]
    assert query(
        backfill_env, f"SELECT resolution FROM sfpd_raw.incidents WHERE row_id = '{changed}'"
    ) == [(resolution,)]
    # run_dbt off: the gate ran, no dbt task did, what follows the build was skipped, and the
    # marts are as the first backfill's build left them (the removed row still in the fact)
    states = dict(re.findall(r"^  (\S+)\s+(success|failed|skipped)", log, re.MULTILINE))
    assert states["dbt_requested"] == "success"
    assert "nodes built and tested" not in log
    assert not {task for task, state in states.items() if task.startswith("dbt.")} - {
        task for task, state in states.items() if state == "skipped"
    }
    after_dbt = ("dbt_docs", "dbt_source_freshness", "report")
    assert [states[task] for task in after_dbt] == ["skipped"] * 3
    assert query(
        backfill_env,
        f"SELECT count(*) FROM sfpd_marts.fct_incident_offences WHERE row_id = '{removed}'",
    ) == [(1,)]


def test_a_bad_param_fails_the_first_task_before_any_work(backfilled, backfill_env):
    """Every bad value's message: tests/unit/test_backfill.py. Here, what a run does with one,
    to a warehouse that holds loads."""
    audit_rows = query(backfill_env, "SELECT count(*) FROM sfpd_raw.load_audit")
    conf = {**CONF, "start_date": "2017-12-01"}
    log = dags_test(backfill_env, "2019-12-04", BACKFILL, conf, succeed=False)
    assert "Bad backfill param start_date: 2017-12-01 is before the dataset starts" in log
    assert re.search(r"^  plan_chunks\s+failed", log, re.MULTILINE)
    assert "The run failed. Its last error lines:" in log
    assert query(backfill_env, "SELECT count(*) FROM sfpd_raw.load_audit") == audit_rows
