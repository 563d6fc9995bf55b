"""The warehouse's statements: one set of names in two dialects, each rendering to SQL its
engine parses, for a window and for a catch-up; and what an emulator cannot judge of the
BigQuery SQL (partitioning, clustering, partition pruning), read from the SQL itself (sqlglot,
no engine needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

import sfpd.sql
from sfpd.schema import FIELD_NAMES
from sfpd.warehouse import CLUSTER_BY, BigQueryWarehouse, DuckDBWarehouse
from sfpd.window import UpdatedBetween, Window

SQL_DIR = Path(sfpd.sql.__file__).parent
WAREHOUSES = {
    "duckdb": DuckDBWarehouse(Path("never-opened.duckdb")),
    "bigquery": BigQueryWarehouse(client=None, project="prod-project", dataset="sfpd_raw"),
}
NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
SCOPES = {
    "window": NOV_DEC_2018,
    "catch-up": UpdatedBetween(dt.datetime(2026, 11, 25), dt.datetime(2026, 11, 26)),
}


def statements(dialect: str) -> set[str]:
    return {path.stem for path in (SQL_DIR / dialect).glob("*.sql")}


def test_both_dialects_hold_the_same_statements():
    """Only the file load differs: DuckDB reads Parquet in SQL, BigQuery runs a load job."""
    assert statements("duckdb") - {"load"} == statements("bigquery")
    assert "merge" in statements("bigquery")


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_every_statement_renders_and_parses_in_its_dialect(dialect, scope):
    warehouse = WAREHOUSES[dialect]
    for name in sorted(statements(dialect) - {"load"}):
        sql = warehouse.sql(name, scope, dt.datetime(2026, 11, 26), [dt.date(2019, 10, 2)])
        parsed = [tree for tree in sqlglot.parse(sql, dialect=dialect) if tree]
        assert parsed, name
        assert "'None'" not in sql and "{{" not in sql, name


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_report_queries_name_the_marts_in_each_dialect(dialect):
    warehouse, window = WAREHOUSES[dialect], SCOPES["window"]
    for path in sorted((SQL_DIR / "report").glob("*.sql")):
        sql = warehouse.render(f"report/{path.name}", window, limit=15)
        (tree,) = sqlglot.parse(sql, dialect=dialect)
        tables = list(tree.find_all(sqlglot.exp.Table))
        assert {table.db for table in tables} == {"sfpd_marts"}, path.name
        if dialect == "bigquery":
            assert {table.catalog for table in tables} == {"prod-project"}, path.name


SQL = WAREHOUSES["bigquery"]


def parse(name: str) -> exp.Expression:
    return sqlglot.parse_one(SQL.sql(name, NOV_DEC_2018), dialect="bigquery")


def test_raw_table_ddl_is_partitioned_by_incident_date_and_clustered():
    ddl = sqlglot.parse(SQL.sql("create_tables"), dialect="bigquery")[0]  # the raw table first
    assert ddl.this.sql("bigquery").startswith("`prod-project.sfpd_raw.incidents`")
    assert isinstance(ddl, exp.Create) and ddl.args.get("exists")  # IF NOT EXISTS
    partition = ddl.find(exp.PartitionedByProperty)
    assert partition is not None and partition.this.sql("bigquery") == "incident_date"
    cluster = ddl.find(exp.ClusterProperty)
    assert cluster is not None
    assert [c.sql("bigquery") for c in cluster.expressions] == list(CLUSTER_BY)
    columns = {c.name: c.args["kind"].sql("bigquery") for c in ddl.find_all(exp.ColumnDef)}
    assert columns["incident_date"] == "DATE" and columns["incident_datetime"] == "DATETIME"


def _date_bounds_on(condition: exp.Expression, table_alias: str) -> dict[str, str]:
    bounds = {}
    for comparison in condition.find_all(exp.GTE, exp.LT):
        column, literal = comparison.this, comparison.expression
        if isinstance(column, exp.Column) and column.table == table_alias:
            assert column.name == "incident_date"
            assert literal.sql("bigquery").startswith("CAST('")  # DATE '…' literal
            bounds[type(comparison).__name__] = literal.sql("bigquery")
    return bounds


def test_merge_limits_the_target_to_the_window_and_the_moved_rows_partitions():
    sql = SQL.sql("merge", NOV_DEC_2018, dt.datetime(2026, 11, 26), [dt.date(2019, 10, 2)])
    merge = sqlglot.parse_one(sql, dialect="bigquery")
    assert isinstance(merge, exp.Merge)
    assert merge.this.sql("bigquery").startswith("`prod-project.sfpd_raw.incidents`")
    on = merge.args["on"]
    assert any(
        eq.this.sql() == "target.row_id" and eq.expression.sql() == "source.row_id"
        for eq in on.find_all(exp.EQ)
    )
    assert _date_bounds_on(on, "target") == {
        "GTE": "CAST('2018-11-01' AS DATE)",
        "LT": "CAST('2019-01-01' AS DATE)",
    }
    (moved,) = on.find_all(exp.In)  # the partitions where staged row_ids are now
    assert moved.this.sql() == "target.incident_date"
    assert [e.sql("bigquery") for e in moved.expressions] == ["CAST('2019-10-02' AS DATE)"]
    inserted = merge.find(exp.Insert)
    assert [c.name for c in inserted.this.expressions] == [*FIELD_NAMES, "_loaded_at"]
    # rows gone from the source are deleted, but only inside the window
    (delete,) = [w for w in merge.find_all(exp.When) if w.args.get("source")]
    assert delete.args["then"].sql("bigquery") == "DELETE"
    assert _date_bounds_on(delete.args["condition"], "target") == _date_bounds_on(on, "target")


def test_a_catch_up_merge_deletes_nothing_and_touches_only_the_rows_partitions():
    changes = UpdatedBetween(dt.datetime(2026, 11, 25), dt.datetime(2026, 11, 26))
    merge = sqlglot.parse_one(
        SQL.sql("merge", changes, dt.datetime(2026, 11, 26), [dt.date(2018, 12, 24)]),
        dialect="bigquery",
    )
    assert not [w for w in merge.find_all(exp.When) if w.args.get("source")]
    (moved,) = merge.args["on"].find_all(exp.In)
    assert [e.sql("bigquery") for e in moved.expressions] == ["CAST('2018-12-24' AS DATE)"]
    assert not list(merge.args["on"].find_all(exp.GTE, exp.LT))
    nothing = sqlglot.parse_one(SQL.sql("merge", changes, dt.datetime(2026, 11, 26)), "bigquery")
    assert "FALSE" in nothing.args["on"].sql("bigquery")  # new rows only: no partition read


def test_the_moved_rows_lookup_reads_two_columns_of_the_raw_table():
    lookup = parse("moved_dates")
    raw_columns = {c.name for c in lookup.find_all(exp.Column) if c.table in ("", None)}
    assert raw_columns <= {"incident_date", "row_id"}
