"""The warehouse's statements: one set of names in two dialects, each rendering to SQL its
engine parses, for a window and for a catch-up (sqlglot, no engine needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlglot

import sfpd.sql
from sfpd.warehouse import BigQueryWarehouse, DuckDBWarehouse
from sfpd.window import UpdatedBetween, Window

SQL_DIR = Path(sfpd.sql.__file__).parent
WAREHOUSES = {
    "duckdb": DuckDBWarehouse(Path("never-opened.duckdb")),
    "bigquery": BigQueryWarehouse(client=None, project="prod-project", dataset="sfpd_raw"),
}
SCOPES = {
    "window": Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1)),
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
