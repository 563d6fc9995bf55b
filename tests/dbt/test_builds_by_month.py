"""dbt's builds by month (include/dbt/macros/incremental_months.sql) on DuckDB: after two days
of real loads, the second changing an old month, the daily builds rebuild only the months the
loads touched and leave marts equal to a full refresh's.

The loads are the pipeline's (replay server on 127.0.0.1 → extract → lake → MERGE, then the
catch-up), on a copy of the warehouse tests/dbt built in full from every bundled row."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from sfpd.lake import open_lake
from sfpd.pipeline import Loader
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Window
from sfpd_dev.replay import ReplayServer, rows_in
from tests.conftest import FIXTURES, moved, query
from tests.dbt.conftest import dbt

ID = "wg3w-h783"
WINDOW = Window(dt.date(2019, 10, 1), dt.date(2019, 12, 1))  # the daily run's window
DECEMBER_2018 = Window(dt.date(2018, 12, 1), dt.date(2019, 1, 1))  # an old month
REBUILT = re.compile(r"(\w+): rebuilding months ([\d\- ]+|none)")


@pytest.fixture
def server():
    with ReplayServer(FIXTURES) as replay:
        yield replay


def daily_load(server, env, lake, run_id: str) -> None:
    """What sfpd_incidents_daily loads: its window, then the catch-up."""
    warehouse = DuckDBWarehouse(Path(env["SFPD_DUCKDB_PATH"]))
    endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
    with SocrataSource(endpoint, page_size=5000) as source:
        Loader(source, lake, warehouse, ID, run_id).load(WINDOW)
        Loader(source, lake, warehouse, ID, run_id).catch_up()


def rebuilt(done) -> dict[str, list[str]]:
    """The months each model built by month rebuilt, from dbt's log."""
    return {name: months.split() for name, months in REBUILT.findall(done.stdout)}


def differences(env: dict, other: str) -> dict[str, int]:
    """Rows of each mart not found in the other warehouse, both ways: every column but the
    build's own stamp (loaded_through), floats to 9 decimals (sums over rows stored in another
    order differ in their last bits)."""
    with duckdb.connect(env["SFPD_DUCKDB_PATH"], read_only=True) as con:
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        columns: dict[str, list[str]] = {}
        for table, column, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'sfpd_marts' AND table_catalog = current_database() "
            "ORDER BY table_name, ordinal_position"
        ).fetchall():
            if column != "loaded_through":
                expression = f"round({column}, 9)" if kind == "DOUBLE" else column
                columns.setdefault(table, []).append(expression)
        assert len(columns) == 9
        found = {}
        for table, selected in columns.items():
            rows = f"SELECT {', '.join(selected)} FROM {{}}sfpd_marts.{table}"
            here, there = rows.format(""), rows.format("other.")
            found[table] = con.execute(
                f"SELECT (SELECT count(*) FROM ({here} EXCEPT ALL {there})) "
                f"+ (SELECT count(*) FROM ({there} EXCEPT ALL {here}))"
            ).fetchone()[0]
        return found


def test_daily_builds_rebuild_the_months_loads_touched_and_equal_a_full_refresh(
    server, copy_env, tmp_path
):
    lake = open_lake((tmp_path / "lake").as_uri())
    recent = sorted(rows_in(server.corpus, WINDOW.soql_where()), key=lambda r: r["row_id"])
    old = sorted(rows_in(server.corpus, DECEMBER_2018.soql_where()), key=lambda r: r["row_id"])

    # day 1: the window's rows edited and sealed, an old report moved into the window (the
    # date is the report's: all its rows move)
    report = [row for row in old if row["incident_id"] == old[0]["incident_id"]]
    server.upsert([{**row, "resolution": "Unfounded"} for row in recent[:3]]
                  + [moved(row, "2019-11-02T13:00:00") for row in report])  # fmt: skip
    server.delete(row["row_id"] for row in recent[3:5])
    daily_load(server, copy_env, lake, "day-1")
    day_1 = rebuilt(dbt(copy_env, "run"))
    # the window's months, and the moved row's old month
    assert day_1["fct_incident_offences"] == ["2018-12-01", "2019-10-01", "2019-11-01"]
    assert day_1["fct_incident_reports"] == day_1["fct_incident_offences"]
    assert day_1["rpt_monthly_reports_by_district"] == [
        "2018-12-01", "2019-10-01", "2019-11-01", "2019-12-01", "2020-10-01", "2020-11-01"
    ]  # fmt: skip

    # day 2: the window unchanged; an old month changes (an edit, a sealed row): the catch-up
    server.upsert([{**old[-1], "resolution": "Cite or Arrest Adult"}])
    server.delete([old[-2]["row_id"]])
    daily_load(server, copy_env, lake, "day-2")
    day_2 = dbt(copy_env, "build", "--exclude-resource-type", "unit_test")  # data tests too
    assert rebuilt(day_2)["fct_incident_offences"] == ["2018-12-01"]
    # the rolling counts reach 27 days and 364 to 391 days ahead
    assert rebuilt(day_2)["rpt_daily_reports_by_district"] == [
        "2018-12-01", "2019-01-01", "2019-11-01", "2019-12-01", "2020-01-01"
    ]  # fmt: skip
    # the raw table is read for that month only
    model = "/compiled/sfpd/models/marts/core/fct_incident_offences.sql"
    with open(copy_env["DBT_TARGET_PATH"] + model) as compiled:
        assert (
            "(incident_date >= date '2018-12-01' and incident_date < date '2019-01-01')"
            in compiled.read()
        )
    edited = "SELECT resolution FROM sfpd_marts.fct_incident_offences WHERE row_id = ?"
    assert query(copy_env, edited, [old[-1]["row_id"]]) == [("Cite or Arrest Adult",)]

    # a build with no load since rebuilds nothing
    assert set(map(tuple, rebuilt(dbt(copy_env, "run")).values())) == {("none",)}

    full = tmp_path / "full.duckdb"
    shutil.copy(copy_env["SFPD_DUCKDB_PATH"], full)
    full_env = {**copy_env, "SFPD_DUCKDB_PATH": str(full), "DBT_TARGET_PATH": str(tmp_path / "ft")}
    assert rebuilt(dbt(full_env, "run", "--full-refresh")) == {}  # a full build reads every month
    different = differences(copy_env, str(full))
    assert [table for table, rows in different.items() if rows] == []
