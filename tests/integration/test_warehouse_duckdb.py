"""The DuckDB warehouse (sfpd.warehouse): lake files staged, checked and MERGEd into the raw
table, real rows from the replay server."""

import contextlib
import datetime as dt
import subprocess
import sys
import threading
import time
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sfpd.extract import extract_to_lake
from sfpd.lake import file_uri_to_path, path_to_file_uri
from sfpd.pipeline import Loader
from sfpd.warehouse import (
    DuckDBWarehouse,
    LakeUnreadable,
    SourceState,
    StagingRejected,
    WarehouseDamaged,
    WarehouseLocked,
)
from sfpd.window import Window
from tests.conftest import rows_of

RUN = "test-run"
ID = "wg3w-h783"
NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
AUTUMN_2019 = Window(dt.date(2019, 9, 1), dt.date(2019, 11, 1))
IN_WINDOW = len(rows_of(NOV_DEC_2018))  # the bundled rows of November-December 2018


@pytest.fixture
def warehouse(tmp_path):
    return DuckDBWarehouse(tmp_path / "wh" / "sfpd.duckdb")


def raw_rows(warehouse):
    with warehouse.connect(read_only=True) as con:
        return con.execute("SELECT * FROM sfpd_raw.incidents ORDER BY row_id").fetchall()


def test_merge_loads_the_window_and_a_rerun_changes_nothing(source, lake, warehouse):
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    result = Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert (result.rows_read, result.rows_inserted, result.rows_rejected) == (
        IN_WINDOW,
        IN_WINDOW,
        0,
    )
    assert (result.rows_in_window_before, result.rows_in_window_after) == (0, IN_WINDOW)
    before = raw_rows(warehouse)
    again = Loader(source, lake, warehouse, "wg3w-h783", RUN).load(NOV_DEC_2018)
    assert again.rows_in_window_before == again.rows_in_window_after == IN_WINDOW
    assert (again.rows_inserted, again.rows_updated, again.rows_deleted) == (0, 0, 0)
    assert raw_rows(warehouse) == before  # byte-identical, _loaded_at included
    assert (again.bytes_billed, again.bytes_processed) == (None, None)  # nothing is billed
    with warehouse.connect(read_only=True) as con:
        billed = "SELECT DISTINCT bytes_billed, bytes_processed FROM sfpd_raw.load_audit"
        assert con.execute(billed).fetchall() == [(None, None)]


def test_merge_updates_changed_rows_inserts_new_ones_and_leaves_other_windows(
    source, lake, warehouse
):
    Loader(source, lake, warehouse, "wg3w-h783", RUN).load(AUTUMN_2019)
    autumn = raw_rows(warehouse)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    # The first load of December misses one row and has an older resolution for another.
    path = extract.uris[0].removeprefix("file://")
    table = pq.read_table(path)
    missing, corrected = table.slice(0, 1), table.column("row_id")[1].as_py()
    older = table.slice(1).set_column(
        table.schema.get_field_index("resolution"),
        "resolution",
        pc.if_else(
            pc.equal(table.slice(1).column("row_id"), corrected),
            pa.scalar("Resolution before the correction"),
            table.slice(1).column("resolution"),
        ),
    )
    pq.write_table(older, path)
    Loader(source, lake, warehouse, ID, RUN).merge(
        replace(extract, rows=extract.rows - 1, rows_read=extract.rows - 1)
    )
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")  # upstream as it is now
    result = Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert (result.rows_in_window_before, result.rows_in_window_after) == (IN_WINDOW - 1, IN_WINDOW)
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 1, 0)
    with warehouse.connect(read_only=True) as con:
        resolution = con.execute(
            "SELECT resolution FROM sfpd_raw.incidents WHERE row_id = ?", [corrected]
        ).fetchone()[0]
        assert resolution == table.column("resolution")[1].as_py()
        assert con.execute(
            "SELECT count(*) FROM sfpd_raw.incidents WHERE row_id = ?",
            [missing.column("row_id")[0].as_py()],
        ).fetchone() == (1,)
    assert set(autumn) <= set(raw_rows(warehouse))  # the other window is untouched


def test_staging_with_repeated_keys_or_rows_outside_the_window_is_refused(
    source, lake, warehouse, tmp_path
):
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    Loader(source, lake, warehouse, ID, RUN).merge(extract)
    before = raw_rows(warehouse)
    duplicated = pq.read_table(extract.uris[0].removeprefix("file://")).slice(0, 10)
    pq.write_table(pa.concat_tables([duplicated, duplicated]), tmp_path / "dup.parquet")
    dup = replace(extract, uris=[path_to_file_uri(tmp_path / "dup.parquet")], rows=20)
    with pytest.raises(StagingRejected, match="10 repeated row_id"):
        Loader(source, lake, warehouse, ID, RUN).merge(dup)
    narrow = replace(extract, scope=Window(dt.date(2018, 12, 1), dt.date(2018, 12, 2)))
    with pytest.raises(StagingRejected, match="outside the window"):
        Loader(source, lake, warehouse, ID, RUN).merge(narrow)
    short = replace(extract, rows=extract.rows + 1)
    with pytest.raises(StagingRejected, match="the extract wrote 11888"):
        Loader(source, lake, warehouse, ID, RUN).merge(short)
    assert raw_rows(warehouse) == before


def test_a_refused_first_load_leaves_a_warehouse_the_retry_can_load(source, lake, warehouse):
    """The tables are created outside the merge's transaction: a first load refused on a new
    file rolls back its own work only, and the same warehouse object then loads the window."""
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    with pytest.raises(StagingRejected, match="the extract wrote 11888"):
        Loader(source, lake, warehouse, ID, RUN).merge(replace(extract, rows=extract.rows + 1))
    assert warehouse.watermark() is None  # the audit table is there, empty
    assert Loader(source, lake, warehouse, ID, RUN).merge(extract).rows_inserted == IN_WINDOW
    assert len(raw_rows(warehouse)) == IN_WINDOW


def test_duckdb_file_is_a_real_database(source, lake, warehouse):
    Loader(source, lake, warehouse, "wg3w-h783", RUN).load(NOV_DEC_2018)
    out_of_sf = [r for r in rows_of(NOV_DEC_2018) if r.get("police_district") == "Out of SF"]
    assert out_of_sf  # a quirk of the real rows: reports outside the city
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM sfpd_raw.incidents WHERE police_district = 'Out of SF'"
        ).fetchone() == (len(out_of_sf),)


def test_a_failure_between_the_merge_and_the_audit_leaves_every_table_as_it_was(
    source, lake, warehouse, monkeypatch
):
    Loader(source, lake, warehouse, "wg3w-h783", RUN).load(AUTUMN_2019)
    tables = ("incidents", "incidents_rejects", "load_audit")

    def contents():
        with warehouse.connect(read_only=True) as con:
            return [
                con.execute(f"SELECT * FROM sfpd_raw.{t} ORDER BY ALL").fetchall() for t in tables
            ]

    before = contents()

    def fail(*args, **kwargs):
        raise RuntimeError("injected: the audit row was not written")

    monkeypatch.setattr(warehouse, "_insert_audit", fail)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    with pytest.raises(RuntimeError, match="injected"):
        Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert contents() == before
    monkeypatch.undo()
    retried = Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert retried.rows_inserted == IN_WINDOW  # the retry


def test_the_audit_gets_the_columns_it_lacks_once(warehouse, logs):
    warehouse.watermark()  # makes the tables
    with warehouse.connect() as con:  # as an earlier version left it
        con.execute("ALTER TABLE sfpd_raw.load_audit DROP COLUMN source_rows_updated_at")
        con.execute("ALTER TABLE sfpd_raw.load_audit DROP COLUMN kind")
    DuckDBWarehouse(warehouse.path).watermark()
    assert "Adding column(s) ['kind', 'source_rows_updated_at'] to load_audit" in logs.text
    logs.clear()
    assert DuckDBWarehouse(warehouse.path).source_state().rows_updated_at is None
    assert "Adding column" not in logs.text


def tables_of(path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute(
            "SELECT table_name, list(column_name ORDER BY column_name) FROM duckdb_columns() "
            "WHERE schema_name = 'sfpd_raw' GROUP BY table_name"
        ).fetchall()
    return dict(found)


def test_a_warehouse_that_only_reads_makes_no_table_and_adds_no_column(warehouse, logs):
    """A task outside the merge pool (sfpd.tasks.in_merge_pool) opens it with writes=False: an
    empty warehouse reads as nothing loaded, an audit an earlier version made is left as it
    is (read as empty, so the run reads the source); the next merge makes and adds them."""
    reader = DuckDBWarehouse(warehouse.path, writes=False)
    assert reader.source_state() == SourceState(None, None, None)
    assert (reader.watermark(), reader.covered_windows(), reader.daily_counts()) == (None, [], {})
    assert tables_of(warehouse.path) == {}
    assert "read as empty; the next merge makes them (this task only reads)" in logs.text
    warehouse.watermark()  # a writer makes the tables
    with warehouse.connect() as con:  # as an earlier version left the audit
        con.execute("ALTER TABLE sfpd_raw.load_audit DROP COLUMN kind")
    before = tables_of(warehouse.path)
    logs.clear()
    again = DuckDBWarehouse(warehouse.path, writes=False)  # a reader checks once, when it opens
    assert again.source_state().first_loaded_at is None
    assert "(missing: columns of load_audit): read as empty" in logs.text
    assert tables_of(warehouse.path) == before and "kind" not in before["load_audit"]


@contextlib.contextmanager
def holding(path):
    """Another process (a user's duckdb session) with the DuckDB file open until it is told to
    close it (:func:`release`) or the block ends."""
    hold = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "sys.stdin.readline(); con.close(); print('released', flush=True)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def release(holder) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"


def window_rows(warehouse, window=NOV_DEC_2018):
    with warehouse.connect(read_only=True) as con:
        return con.execute(
            "SELECT * EXCLUDE (_loaded_at) FROM sfpd_raw.incidents "
            "WHERE incident_date >= ? AND incident_date < ? ORDER BY row_id",
            [window.start, window.end],
        ).fetchall()


def test_a_held_warehouse_fails_the_merge_naming_the_holder_and_the_retry_loads_once(
    source, lake, tmp_path
):
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", lock_wait=1)
    Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
    before = raw_rows(warehouse)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    # the merge task waits, then fails after the lake write, saying who holds the file and
    # what to do
    with holding(warehouse.path) as holder:
        with pytest.raises(WarehouseLocked) as caught:
            Loader(source, lake, warehouse, ID, RUN).merge(extract)
    message = str(caught.value)
    assert f"in use by PID {holder.pid} ({sys.executable} -c import duckdb" in message
    assert "waited 1 s and stopped without writing anything" in message
    assert "Close that program" in message
    assert raw_rows(warehouse) == before
    # the retry: the whole run again (the extract rewrites the window's files), then once more
    Loader(source, lake, warehouse, ID, RUN).load(NOV_DEC_2018)
    Loader(source, lake, warehouse, ID, RUN).load(NOV_DEC_2018)
    clean = DuckDBWarehouse(tmp_path / "clean.duckdb")
    Loader(source, lake, clean, ID, RUN).load(NOV_DEC_2018)
    assert window_rows(warehouse) == window_rows(clean)  # one clean load's rows, no duplicate
    assert len(window_rows(warehouse)) == IN_WINDOW


def test_a_merge_waits_for_another_process_to_let_go_of_the_warehouse(source, lake, tmp_path, logs):
    """The merge starts while another process holds the file, says so and waits; once that
    process closes the file, the merge loads the window (no sleep: the test releases the file
    when the merge has said it waits)."""
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", lock_wait=300)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    outcome = {}

    def merge():
        try:
            outcome["result"] = Loader(source, lake, warehouse, ID, RUN).merge(extract)
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    merging = threading.Thread(target=merge)
    with holding(warehouse.path) as h:
        merging.start()
        deadline = time.monotonic() + 120
        while "is in use by PID" not in logs.text:
            assert merging.is_alive() and time.monotonic() < deadline, outcome or logs.text
            time.sleep(0.05)
        assert not outcome  # waiting, not done
        release(h)
        merging.join(300)
    assert "error" not in outcome, outcome
    assert outcome["result"].rows_inserted == len(window_rows(warehouse)) == IN_WINDOW


BAD_FILES = {
    "cut short": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "not Parquet": lambda path: path.write_bytes(b"<html>a proxy's error page</html>"),
    "gone": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", BAD_FILES)
def test_a_lake_file_that_cannot_be_read_fails_the_merge_naming_it_and_changes_nothing(
    source, lake, warehouse, damage
):
    Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
    before = raw_rows(warehouse)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    BAD_FILES[damage](file_uri_to_path(extract.uris[-1]))
    with pytest.raises(LakeUnreadable) as caught:
        Loader(source, lake, warehouse, ID, RUN).merge(extract)
    message = str(caught.value)
    assert f"({len(extract.uris)} in {extract.uris[-1].rsplit('/', 1)[0]}/)" in message
    assert str(file_uri_to_path(extract.uris[-1])) in message  # DuckDB names the file
    assert "clear it (or the whole run)" in message and "the raw table was not changed" in message
    assert raw_rows(warehouse) == before
    # what the message says: the extract again, then the merge
    assert Loader(source, lake, warehouse, ID, RUN).load(NOV_DEC_2018).rows_inserted == IN_WINDOW


def test_a_damaged_duckdb_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "sfpd.duckdb"
    path.write_bytes(b"\0not a database\0" * 512)
    with pytest.raises(WarehouseDamaged) as caught:
        DuckDBWarehouse(path).watermark()
    assert f'"{path}" exists, but it is not a valid DuckDB database file' in str(caught.value)
    assert "Move it aside" in str(caught.value)
    assert path.read_bytes() == b"\0not a database\0" * 512  # left as it was, for its owner
