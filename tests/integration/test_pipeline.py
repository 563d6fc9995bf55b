"""The load (sfpd.pipeline.Loader: extract, then merge) keeps the window trustworthy: upstream
changes and removals, an unreliable API, short reads and malformed rows, against a
fault-injecting replay server on 127.0.0.1 and DuckDB. Its catch-up: test_pipeline_catch_up.py;
the warehouse held by another process: test_warehouse_duckdb.py."""

from __future__ import annotations

import datetime as dt

import pytest

from sfpd.extract import IncompleteRead, TooManyRejects
from sfpd.pipeline import Loader
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Window
from sfpd_dev.replay import Faults, rows_in

WINDOW = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
AUTUMN = Window(dt.date(2019, 9, 1), dt.date(2019, 11, 1))
ID = "wg3w-h783"
# A page of 1,000 rows answers in well under a second even on a loaded machine; a slow fault
# answers after twice this, so the client gives up on it and retries.
READ_TIMEOUT = 3.0


@pytest.fixture
def source(server):
    endpoint = SocrataEndpoint(
        host="127.0.0.1", port=server.port, scheme="http",
        read_timeout=READ_TIMEOUT, backoff_factor=0.05, retries=8,
    )  # fmt: skip
    with SocrataSource(endpoint, page_size=1000) as src:
        yield src


def load(window, source, lake, warehouse, **kwargs):
    return Loader(source, lake, warehouse, ID, "run", **kwargs).load(window)


def raw(warehouse, columns="* EXCLUDE (_loaded_at)"):
    with warehouse.connect(read_only=True) as con:
        return con.execute(f"SELECT {columns} FROM sfpd_raw.incidents ORDER BY row_id").fetchall()


def window_ids(server, window=WINDOW):
    return {row["row_id"] for row in rows_in(server.corpus, window.soql_where())}


def check_exact(server, warehouse, window=WINDOW):
    """The raw table's window holds exactly the source's rows."""
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT row_id FROM sfpd_raw.incidents WHERE incident_date BETWEEN ? AND ?",
            [window.start, window.end - dt.timedelta(days=1)],
        ).fetchall()
    loaded = {r[0] for r in rows}
    assert loaded == window_ids(server, window)


def test_changed_added_and_removed_rows_upstream(server, source, lake, tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    load(AUTUMN, source, lake, warehouse)
    load(WINDOW, source, lake, warehouse)
    autumn = [r for r in raw(warehouse) if r[5] >= AUTUMN.start]
    in_window = sorted(rows_in(server.corpus, WINDOW.soql_where()), key=lambda r: r["row_id"])
    removed = {r["row_id"] for r in in_window[:3]}
    changed = {r["row_id"] for r in in_window[3:5]}
    new = {**in_window[5], "incident_code": "99999", ":id": "row-new"}
    new["row_id"] = f"{new['incident_id']}99999"
    outside_removed = autumn[0][0]  # gone upstream too, but outside the window: kept
    rows = [
        {**r, "resolution": "Cite or Arrest Adult (corrected)"} if r["row_id"] in changed else r
        for r in server.corpus
        if r["row_id"] not in removed and r["row_id"] != outside_removed
    ]
    server.replace_corpus([*rows, new])

    result = load(WINDOW, source, lake, warehouse)

    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 2, 3)
    check_exact(server, warehouse)
    assert set(autumn) <= set(raw(warehouse))  # the other window, removed row included
    with warehouse.connect(read_only=True) as con:
        audit = con.execute(
            "SELECT rows_inserted, rows_updated, rows_deleted FROM sfpd_raw.load_audit"
        )
        assert audit.fetchall()[-1] == (1, 2, 3)


def test_an_unreliable_api_gives_the_same_table_as_a_clean_one(server, source, lake, tmp_path):
    clean = DuckDBWarehouse(tmp_path / "clean.duckdb")
    load(WINDOW, source, lake, clean)
    server.requests.clear()
    server.faults = Faults(rate=0.35, seed=7, slow_seconds=2 * READ_TIMEOUT)
    faulty = DuckDBWarehouse(tmp_path / "faulty.duckdb")

    load(WINDOW, source, lake, faulty)

    pages = [p for p in server.requests if "$order" in p]
    injected = sum(server.faults.injected.values())
    assert set(server.faults.injected) == {"429", "500", "503", "202", "slow"}
    assert injected >= 0.2 * len(pages)
    assert raw(faulty) == raw(clean)
    check_exact(server, faulty)


@pytest.mark.parametrize("fault", ["cut_next_page", "count_offset"])
def test_a_short_read_merges_nothing_and_a_retry_completes(server, source, lake, tmp_path, fault):
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    load(AUTUMN, source, lake, warehouse)
    before = raw(warehouse, "*")
    setattr(server.faults, fault, 1)
    with pytest.raises(IncompleteRead, match="nothing was merged"):
        load(WINDOW, source, lake, warehouse)
    assert raw(warehouse, "*") == before
    server.faults = Faults()  # the API recovers; the task's retry
    load(WINDOW, source, lake, warehouse)
    check_exact(server, warehouse)


def test_a_reload_mid_extract_still_lands_the_window_exactly(server, source, lake, tmp_path):
    """The publisher replaces the whole dataset after the second page: new :id for every row
    (their :id order shuffled), new :updated_at. The window lands exactly, in one try."""
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    server.faults.reload_after_pages = 2
    result = load(WINDOW, source, lake, warehouse)
    assert server.faults.injected["reload"] == 1
    assert result.rows_inserted == len(window_ids(server))
    check_exact(server, warehouse)


def malformed(rows: list[dict]) -> list[dict]:
    """Eleven kinds of broken rows, made from real ones (new row_ids so none replaces another)."""
    breakers = [
        lambda r: {k: v for k, v in r.items() if k != "row_id"},
        lambda r: {**r, "incident_datetime": "2018-12-32T10:00:00.000"},
        lambda r: {**r, "report_datetime": "yesterday"},
        lambda r: {**r, "incident_time": "25:61"},
        lambda r: {**r, "incident_id": "12ab"},
        lambda r: {**r, "cnn": "not a number"},
        lambda r: {**r, "latitude": "90", "longitude": "-120.5"},
        lambda r: {**r, "filed_online": "yes"},
        lambda r: {**r, "resolution": {"text": "Open"}},
        lambda r: {**r, "incident_date": "2018-11-15T00:00:00.000"},
        lambda r: {k: v for k, v in r.items() if k != "longitude"},
    ]
    broken = []
    for index, (make, row) in enumerate(zip(breakers, rows, strict=False)):
        row = {**row, ":id": f"row-bad-{index:02d}", "incident_code": f"9{index:04d}"}
        row["row_id"] = f"{row['incident_id']}{row['incident_code']}"
        broken.append(make(row))
    broken.append({**rows[20], ":id": "row-bad-99", "row_id": "1234506244"})  # row_id mismatch
    return broken


def test_malformed_rows_are_quarantined_with_their_reason(server, source, lake, tmp_path):
    good = rows_in(server.corpus, WINDOW.soql_where())
    located = [r for r in good if "latitude" in r and r["incident_datetime"] < "2018-12-31"]
    bad = malformed(located)
    server.replace_corpus([*server.corpus, *bad])
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")

    result = load(WINDOW, source, lake, warehouse)

    assert result.rows_rejected == len(bad) == 12
    assert result.rows_read == len(good) + len(bad)
    with warehouse.connect(read_only=True) as con:
        reasons = con.execute("SELECT reason FROM sfpd_raw.incidents_rejects").fetchall()
        assert len(reasons) == 12
        assert len({r[0].split(":")[0] for r in reasons}) >= 10  # ten and more kinds
        assert con.execute("SELECT count(*) FROM sfpd_raw.incidents").fetchone() == (len(good),)

    # more than the allowed share of bad rows: the run fails before the warehouse changes
    before = raw(warehouse, "*")
    with pytest.raises(TooManyRejects, match="nothing was merged"):
        load(WINDOW, source, lake, warehouse, max_reject_share=0.0005)
    assert raw(warehouse, "*") == before
