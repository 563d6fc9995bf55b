"""End to end: `airflow dags test sfpd_incidents_backfill` on the embedded warehouse against the
replay server: three monthly chunks give the raw table three daily windows give, a second
backfill changes nothing, and rows changed or removed upstream are updated or deleted."""

from __future__ import annotations

import copy

import pytest

from sfpd.window import Window
from sfpd_dev.replay import rows_in
from tests.conftest import query
from tests.e2e.conftest import dags_test, state_env

pytestmark = pytest.mark.e2e

BACKFILL = "sfpd_incidents_backfill"
# Sep-Nov 2019: 208 + 1,153 + 438 bundled rows, one chunk per month.
RANGE = Window.from_dict({"start": "2019-09-01", "end": "2019-12-01"})
CONF = {"start_date": "2019-09-01", "end_date": "2019-12-01", "chunk": "month"}
# Daily runs whose two-month windows together cover RANGE exactly.
DAILY_RUN_DATES = ("2019-11-01", "2019-11-16", "2019-12-01")
# Every column but the load time (which differs between the two loads).
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


def test_three_month_backfill_equals_daily_windows(airflow_home_env, backfill_env, replay_server,
                                                   tmp_path_factory):  # fmt: skip
    expected = {row["row_id"] for row in rows_in(replay_server.corpus, RANGE.soql_where())}
    assert len(expected) == 208 + 1153 + 438

    dags_test(backfill_env, "2019-12-01", BACKFILL, CONF)
    backfilled = query(backfill_env, RAW)
    assert {row[0] for row in backfilled} == expected
    assert changes_of_last_run(backfill_env) == [
        ("2019-09-01", 208, 0, 0),
        ("2019-10-01", 1153, 0, 0),
        ("2019-11-01", 438, 0, 0),
    ]
    # dbt ran once, after the chunks, over the whole range
    offences = query(
        backfill_env, "SELECT sum(offence_count) FROM sfpd_marts.rpt_daily_reports_by_district"
    )
    assert offences == [(len(expected),)]

    daily_env = state_env(airflow_home_env, tmp_path_factory.mktemp("daily"))
    for run_date in DAILY_RUN_DATES:
        dags_test(daily_env, run_date)
    assert query(daily_env, RAW) == backfilled


def test_second_backfill_changes_nothing(backfill_env):
    before = query(backfill_env, RAW)
    dags_test(backfill_env, "2019-12-02", BACKFILL, {**CONF, "run_dbt": False})
    assert query(backfill_env, RAW) == before
    assert [changes[1:] for changes in changes_of_last_run(backfill_env)] == [(0, 0, 0)] * 3


def test_backfill_applies_upstream_changes_and_removals(backfill_env, replay_server):
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
        dags_test(backfill_env, "2019-12-03", BACKFILL, {**CONF, "run_dbt": False})
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


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"start_date": "2017-12-01"}, "start_date: 2017-12-01 is before the dataset starts"),
        (
            {"start_date": "2019-10-01", "end_date": "2019-09-01"},
            "end_date: 2019-09-01 must be after",
        ),
    ],
)
def test_bad_params_fail_the_first_task_before_any_work(backfill_env, conf, message):
    audit_rows = query(backfill_env, "SELECT count(*) FROM sfpd_raw.load_audit")
    log = dags_test(backfill_env, "2019-12-04", BACKFILL, {**CONF, **conf}, succeed=False)
    assert f"Bad backfill param {message}" in log
    assert "  plan_chunks     failed" in log and "The run failed. Its last error lines:" in log
    assert query(backfill_env, "SELECT count(*) FROM sfpd_raw.load_audit") == audit_rows
