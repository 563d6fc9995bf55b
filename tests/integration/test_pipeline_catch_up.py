"""Every upstream change lands once, wherever its incident date is (issue 15 §1): rows whose
date moves into or out of the window, old rows edited or removed upstream. Real rows from the
replay server, changed through its upsert/delete (new ``:updated_at``, like Socrata), loaded
into DuckDB by the same functions the DAGs call."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from sfpd.extract import IncompleteRead
from sfpd.pipeline import CatchUp, Loader
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Days, Window
from sfpd_dev.replay import rows_in
from tests.conftest import moved

ID = "wg3w-h783"
OLD = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))  # loaded once, by a backfill
WINDOW = Window(dt.date(2019, 9, 1), dt.date(2019, 11, 1))  # the daily run's window
UNLOADED_DAY = "2019-07-04"  # a date no load has covered


@pytest.fixture
def source(server):
    endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
    with SocrataSource(endpoint, page_size=2000) as src:
        yield src


@pytest.fixture
def warehouse(tmp_path):
    return DuckDBWarehouse(tmp_path / "wh.duckdb")


def daily_run(source, lake, warehouse, run_id="daily"):
    """What sfpd_incidents_daily does: its window, then the catch-up."""
    window = Loader(source, lake, warehouse, ID, run_id).load(WINDOW)
    return window, Loader(source, lake, warehouse, ID, run_id).catch_up()


def raw(warehouse) -> dict[str, tuple]:
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT row_id, incident_datetime, resolution, _loaded_at FROM sfpd_raw.incidents"
        ).fetchall()
    assert len(rows) == len({row[0] for row in rows}), "row_id repeated in the raw table"
    return {row[0]: row[1:] for row in rows}


def upstream(server, row_ids: set[str]) -> dict[str, tuple]:
    """The source's rows: those of the loaded windows, and any other of ``row_ids``."""
    loaded = {
        row["row_id"] for w in (OLD, WINDOW) for row in rows_in(server.corpus, w.soql_where())
    }
    return {
        row["row_id"]: (dt.datetime.fromisoformat(row["incident_datetime"]), row.get("resolution"))
        for row in server.corpus
        if row["row_id"] in loaded | row_ids
    }


def assert_level(server, warehouse, moved_away=frozenset()):
    """The raw table holds exactly the source's rows, one copy each, upstream values."""
    assert {k: v[:2] for k, v in raw(warehouse).items()} == upstream(server, set(moved_away))


def test_moved_edited_and_removed_rows_land_once_and_a_rerun_changes_nothing(
    server, source, lake, warehouse
):
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    daily_run(source, lake, warehouse, "first")
    assert_level(server, warehouse)
    old = sorted(rows_in(server.corpus, OLD.soql_where()), key=lambda r: r["row_id"])
    recent = sorted(rows_in(server.corpus, WINDOW.soql_where()), key=lambda r: r["row_id"])
    moved_in = [moved(row, "2019-10-20T13:00:00") for row in old[:10]]
    moved_out = [moved(row, "2018-12-24T09:30:00") for row in recent[:5]] + [
        moved(row, f"{UNLOADED_DAY}T21:15:00") for row in recent[5:10]
    ]
    edited = [{**row, "resolution": "Cite or Arrest Adult (corrected)"} for row in old[10:20]]
    server.upsert(moved_in + moved_out + edited)
    server.delete(row["row_id"] for row in old[20:25])

    window, caught = daily_run(source, lake, warehouse, "second")

    moved_away = {row["row_id"] for row in recent[5:10]}
    assert_level(server, warehouse, moved_away)
    # for dbt's builds by month: the window's months and the old months of the rows moved in
    came_from = {row["incident_datetime"][:7] + "-01" for row in old[:10]}
    assert window.months_touched.split() == sorted(came_from | {"2019-09-01", "2019-10-01"})
    # the window's merge moves the rows that came in and deletes those that left it
    assert (window.rows_inserted, window.rows_updated, window.rows_deleted) == (0, 10, 10)
    # the catch-up reads the 30 rows changed since the first run, wherever they are now: the
    # rows that left the window come back at their new dates, the old edits land
    changed = caught.changed
    assert (changed.rows_read, changed.rows_inserted, changed.rows_updated) == (30, 10, 10)
    assert changed.rows_deleted == 0
    # the day counts find the removed old rows: their days are loaded again
    assert caught.days_differing == len({row["incident_datetime"][:10] for row in old[20:25]})
    assert sum(r.rows_deleted for r in caught.reloaded) == 5
    with warehouse.connect(read_only=True) as con:
        for row in old[20:25]:
            assert not con.execute(
                "SELECT 1 FROM sfpd_raw.incidents WHERE row_id = ?", [row["row_id"]]
            ).fetchall()

    before = raw(warehouse)
    window, caught = daily_run(source, lake, warehouse, "third")
    assert raw(warehouse) == before  # nothing changed, _loaded_at included
    assert (window.rows_inserted, window.rows_updated, window.rows_deleted) == (0, 0, 0)
    assert window.months_touched is None  # nothing changed: no month to rebuild
    assert caught.changed is None and caught.days_differing == 0 and caught.reloaded == []


def test_scattered_days_that_differ_are_loaded_again_in_one_load(server, source, lake, warehouse):
    """Rows removed upstream on five days a week apart: one extract and one transaction for
    all five (not five loads, each billed at least 10 MB a table on BigQuery), the removed rows
    deleted, nothing else changed, and the loaded windows as they were."""
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    daily_run(source, lake, warehouse, "first")
    covered = warehouse.covered_windows()
    by_day: dict[str, list[dict]] = {}
    for row in sorted(rows_in(server.corpus, OLD.soql_where()), key=lambda r: r["row_id"]):
        by_day.setdefault(row["incident_datetime"][:10], []).append(row)
    days = sorted(by_day)[::7][:5]
    server.delete(by_day[day][0]["row_id"] for day in days)

    before = raw(warehouse)
    _, caught = daily_run(source, lake, warehouse, "second")

    assert caught.days_differing == 5
    (reload,) = caught.reloaded
    scope = Days(tuple(dt.date.fromisoformat(day) for day in days))
    assert len(scope.ranges) == 5  # scattered: no two days adjacent
    assert reload.kind == "days" and reload.rows_read == len(
        rows_in(server.corpus, scope.soql_where())
    )
    assert (reload.rows_inserted, reload.rows_updated, reload.rows_deleted) == (0, 0, 5)
    gone = {by_day[day][0]["row_id"] for day in days}
    assert raw(warehouse) == {k: v for k, v in before.items() if k not in gone}
    assert_level(server, warehouse)
    assert warehouse.covered_windows() == covered
    with warehouse.connect(read_only=True) as con:
        kinds = con.execute(
            "SELECT kind, COUNT(*) FROM sfpd_raw.load_audit WHERE run_id = 'second' GROUP BY kind"
        ).fetchall()
    assert dict(kinds) == {"window": 1, "days": 1, "check": 1}


def test_a_failed_catch_up_does_not_move_the_watermark_and_the_next_run_catches_up(
    server, source, lake, warehouse
):
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    daily_run(source, lake, warehouse, "first")
    watermark = warehouse.watermark()
    old = sorted(rows_in(server.corpus, OLD.soql_where()), key=lambda r: r["row_id"])
    server.upsert([{**row, "resolution": "Unfounded"} for row in old[:7]])
    server.upsert([moved(old[7], "2019-10-02T08:00:00")])

    server.faults.count_offset = 1  # the server's count disagrees with its rows: no merge
    with pytest.raises(IncompleteRead):
        Loader(source, lake, warehouse, ID, "failed").catch_up()
    server.faults.count_offset = 0
    assert warehouse.watermark() == watermark

    server.upsert([{**old[8], "resolution": "Exceptional Adult"}])  # and one more meanwhile
    _, caught = daily_run(source, lake, warehouse, "retried")
    assert caught.changed.rows_read == 9
    assert_level(server, warehouse)
    assert warehouse.watermark() > watermark


def test_the_catch_up_is_audited_and_pages_like_a_window(server, source, lake, warehouse):
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    rows = rows_in(server.corpus, OLD.soql_where())
    server.upsert([{**row, "resolution": "Unfounded (reviewed)"} for row in rows[:4500]])
    source.page_size = 1000
    caught = Loader(source, lake, warehouse, ID, "big").catch_up()
    assert caught.changed.rows_read == caught.changed.rows_updated == 4500
    pages = [r for r in server.requests if ":updated_at >" in r.get("$where", "")]
    keyset = [r for r in pages if r.get("$order") == "row_id" and "IS NULL" not in r["$where"]]
    assert len(keyset) == 5  # 4 full pages and the short one
    watermark = warehouse.watermark()
    changed_at = source.metadata().rows_updated_at
    with warehouse.connect(read_only=True) as con:
        assert con.execute(
            "SELECT kind, window_start, rows_read, source_updated_through, source_rows_updated_at "
            "FROM sfpd_raw.load_audit ORDER BY rowid"
        ).fetchall() == [
            ("window", OLD.start, len(rows), dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1)),
            ("catch-up", None, 4500, watermark, changed_at),
            ("check", None, 0, watermark, changed_at),  # the catch-up completed
        ]
    assert changed_at == watermark.replace(microsecond=0) > dt.datetime(2026, 1, 1)


def test_a_warehouse_holding_a_row_twice_from_before_is_repaired(
    server, source, lake, warehouse, logs
):
    """Before 0.3 a row whose date moved across the window's start kept its old copy."""
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    daily_run(source, lake, warehouse, "first")
    recent = sorted(rows_in(server.corpus, WINDOW.soql_where()), key=lambda r: r["row_id"])
    twice = [row["row_id"] for row in recent[:3]]
    with warehouse.connect() as con:  # the old copies, on a day of the old window
        con.execute(
            "INSERT INTO sfpd_raw.incidents SELECT * REPLACE (DATE '2018-12-24' AS incident_date, "
            "TIMESTAMP '2018-12-24 10:00' AS incident_datetime) "
            "FROM sfpd_raw.incidents WHERE list_contains(?, row_id)",
            [twice],
        )
    daily_run(source, lake, warehouse, "after the upgrade")
    assert "Removed 6 copies of row_ids the table held twice" in logs.text
    assert_level(server, warehouse)  # one copy each, at the source's date


def test_nothing_changed_upstream_skips_the_reads_until_something_does(
    server, source, lake, warehouse
):
    """The dataset's metadata (its last data change) against what the loads recorded: a run
    after an unchanged source reads nothing but the metadata; any change reads again."""
    check = Loader(source, lake, warehouse, ID, "check")
    Loader(source, lake, warehouse, ID, "backfill").load(OLD)
    daily_run(source, lake, warehouse, "first")
    state = warehouse.source_state()
    changed_at = source.metadata().rows_updated_at
    assert state.rows_updated_at == state.caught_up_at == changed_at

    server.requests.clear()
    assert "nothing changed upstream since" in Loader(
        source, lake, warehouse, ID, "check"
    ).skip_reason(WINDOW)
    assert Loader(source, lake, warehouse, ID, "second").catch_up() == CatchUp(None, 0)
    assert server.requests == []  # the metadata only, no query
    # the run still says it ran: a heartbeat, level with the source as before (nothing moves)
    assert warehouse.source_state() == state
    with warehouse.connect(read_only=True) as con:
        assert con.execute(
            "SELECT kind, source_updated_through, source_rows_updated_at, months_touched "
            "FROM sfpd_raw.load_audit WHERE run_id = 'second'"
        ).fetchall() == [("check", None, changed_at, None)]
    # a day never loaded, on or before the first load's date: read
    assert check.skip_reason(Window(dt.date(2019, 8, 31), WINDOW.end)) is None
    # days after the first load: their rows came in through the catch-ups
    today = dt.datetime.now(dt.UTC).date()
    ahead = Window(today + dt.timedelta(days=1), today + dt.timedelta(days=3))
    assert check.skip_reason(ahead) is not None

    server.upsert([{**rows_in(server.corpus, WINDOW.soql_where())[0], "resolution": "Unfounded"}])
    assert check.skip_reason(WINDOW) is None
    assert Loader(source, lake, warehouse, ID, "third").catch_up().changed.rows_updated == 1
    assert check.skip_reason(WINDOW) is not None  # level again
    server.requests.clear()
    assert Loader(source, lake, warehouse, ID, "forced").catch_up(force=True).days_differing == 0
    assert any("$group" in params for params in server.requests)  # read anyway


def test_without_metadata_every_run_reads(server, source, lake, warehouse):
    """Any SODA 2.x server need not serve /api/views: nothing is skipped then."""
    check = Loader(source, lake, warehouse, ID, "check")
    server.serve_metadata = False
    daily_run(source, lake, warehouse, "first")
    assert warehouse.source_state().rows_updated_at is None
    assert check.skip_reason(WINDOW) is None
    server.requests.clear()
    Loader(source, lake, warehouse, ID, "second").catch_up()
    assert any("$group" in params for params in server.requests)


def test_a_catch_up_that_reads_more_than_the_bound_says_the_dataset_was_replaced(
    server, source, lake, warehouse, logs, monkeypatch
):
    """A publisher's full reload gives every row a new :updated_at: the next catch-up reads the
    whole dataset once, and says so as a warning. The bound (50,000 rows; the bundled rows are
    fewer) is lowered here to what a reload of the bundled rows reads."""
    daily_run(source, lake, warehouse, "first")
    server.reload()
    rows = len(server.corpus)
    monkeypatch.setattr("sfpd.pipeline.CATCH_UP_WARN_ROWS", rows - 1)
    caught_up = Loader(source, lake, warehouse, ID, "after the reload").catch_up()
    assert caught_up.changed.rows_read == rows
    (warning,) = logs.messages("sfpd.pipeline", logging.WARNING)
    assert f"Catch-up: read {rows} rows changed upstream since" in warning
    assert "the publisher probably replaced the dataset" in warning

    logs.clear()
    monkeypatch.setattr("sfpd.pipeline.CATCH_UP_WARN_ROWS", rows)  # at the bound: no warning
    server.reload()
    Loader(source, lake, warehouse, ID, "after another").catch_up()
    assert logs.messages("sfpd.pipeline", logging.WARNING) == []
