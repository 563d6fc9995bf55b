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
from sfpd.window import Days, UpdatedBetween, Window

SQL_DIR = Path(sfpd.sql.__file__).parent
WAREHOUSES = {
    "duckdb": DuckDBWarehouse(Path("never-opened.duckdb")),
    "bigquery": BigQueryWarehouse(client=None, project="prod-project", dataset="sfpd_raw"),
}
NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
SCOPES = {
    "window": NOV_DEC_2018,
    "catch-up": UpdatedBetween(dt.datetime(2026, 11, 25), dt.datetime(2026, 11, 26)),
    # days loaded again: two runs of consecutive days and a lone one
    "days": Days(
        tuple(
            dt.date.fromisoformat(d)
            for d in ("2018-11-03", "2018-11-04", "2018-12-24", "2019-03-01")
        )
    ),
}


def folder(name: str) -> set[str]:
    return {path.stem for path in (SQL_DIR / name).glob("*.sql")}


def statements(dialect: str) -> set[str]:
    """What an engine runs: the shared statements (sql/load/) and its own (sql/<dialect>/)."""
    return folder("load") | folder(dialect)


def test_both_dialects_hold_the_same_statements():
    """DuckDB reads Parquet in SQL (BigQuery runs a load job); BigQuery moves a raw table an
    earlier version partitioned by day to months (DuckDB has no partitions)."""
    assert statements("duckdb") - {"load"} == statements("bigquery") - {"repartition"}
    assert "merge" in statements("bigquery")


def test_each_statement_is_written_once():
    """A dialect's folder holds only what its engine does its own way (making tables and
    columns) or alone; every other statement is one file for both."""
    assert not folder("load") & (folder("duckdb") | folder("bigquery"))
    assert folder("duckdb") & folder("bigquery") == {"create_tables", "add_audit_columns"}
    for name in folder("duckdb") & folder("bigquery"):
        duckdb_sql = (SQL_DIR / "duckdb" / f"{name}.sql").read_text()
        assert duckdb_sql != (SQL_DIR / "bigquery" / f"{name}.sql").read_text(), name


# what the statements that need more than a scope are rendered with
CONTEXT = {
    "missing": [("kind", "STRING"), ("source_rows_updated_at", "TIMESTAMP")],
    "repartitioned": "`prod-project.sfpd_raw.incidents__repartitioned`",
    "raw_name": "incidents",
    "finish": False,
    "staged": ["2018-11-05", "2018-12-24"],
}


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_every_statement_renders_and_parses_in_its_dialect(dialect, scope):
    warehouse = WAREHOUSES[dialect]
    for name in sorted(statements(dialect) - {"load"}):
        sql = warehouse.sql(
            name, scope, dt.datetime(2026, 11, 26), [dt.date(2019, 10, 2)], **CONTEXT
        )
        parsed = [tree for tree in sqlglot.parse(sql, dialect=dialect) if tree]
        assert parsed, name
        assert "'None'" not in sql and "{{" not in sql, name


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_report_queries_name_the_marts_in_each_dialect(dialect):
    """The report reads the marts; what the run's loads billed, the audit (sfpd_raw)."""
    warehouse, window = WAREHOUSES[dialect], SCOPES["window"]
    for path in sorted((SQL_DIR / "report").glob("*.sql")):
        sql = warehouse.render(f"report/{path.name}", window, limit=15)
        (tree,) = sqlglot.parse(sql, dialect=dialect)
        tables = list(tree.find_all(sqlglot.exp.Table))
        schema = "sfpd_raw" if path.name == "load_bytes.sql" else "sfpd_marts"
        assert {table.db for table in tables} == {schema}, path.name
        if dialect == "bigquery":
            assert {table.catalog for table in tables} == {"prod-project"}, path.name


SQL = WAREHOUSES["bigquery"]


def test_raw_table_ddl_is_partitioned_by_month_and_clustered():
    ddl = sqlglot.parse(SQL.sql("create_tables"), dialect="bigquery")[0]  # the raw table first
    assert ddl.this.sql("bigquery").startswith("`prod-project.sfpd_raw.incidents`")
    assert isinstance(ddl, exp.Create) and ddl.args.get("exists")  # IF NOT EXISTS
    partition = ddl.find(exp.PartitionedByProperty)
    assert partition.this.sql("bigquery") == "DATE_TRUNC(incident_date, MONTH)"
    cluster = ddl.find(exp.ClusterProperty)
    assert cluster is not None
    assert [c.sql("bigquery") for c in cluster.expressions] == list(CLUSTER_BY)
    columns = {c.name: c.args["kind"].sql("bigquery") for c in ddl.find_all(exp.ColumnDef)}
    assert columns["incident_date"] == "DATE" and columns["incident_datetime"] == "DATETIME"


RAW = "`prod-project.sfpd_raw.incidents`"
# Statements that must read the raw table whole, and the only columns they read: where a staged
# row_id is now can be any date; the day counts span every day (docs/bigquery.md prices them).
MUST_SCAN = {
    "moved_dates": {"row_id", "incident_date"},
    "daily_counts": {"incident_date"},
    "repartition": None,  # once, for a table an earlier version made: every column
}


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _only_dates(condition: exp.Expression, alias: str) -> bool:
    """``condition`` compares only the partition column with DATE literals (through AND/OR):
    a constant predicate, which BigQuery evaluates at planning time to prune partitions."""

    def column(node):
        return (
            isinstance(node, exp.Column)
            and node.name == "incident_date"
            and (node.table in ("", alias))
        )

    def literal(node):
        return node.sql("bigquery").startswith("CAST('") and node.sql("bigquery").endswith(
            "AS DATE)"
        )

    if isinstance(condition, exp.Paren):
        return _only_dates(condition.this, alias)
    if isinstance(condition, exp.Boolean):  # FALSE: no partition at all
        return not condition.this
    if isinstance(condition, exp.And | exp.Or):
        return _only_dates(condition.left, alias) and _only_dates(condition.right, alias)
    if isinstance(condition, exp.GTE | exp.LT | exp.GT | exp.LTE | exp.EQ):
        return column(condition.this) and literal(condition.expression)
    if isinstance(condition, exp.In):
        return column(condition.this) and all(map(literal, condition.expressions))
    return False


def _pruned(condition: exp.Expression | None, alias: str) -> bool:
    if isinstance(condition, exp.Where):
        condition = condition.this
    return condition is not None and any(_only_dates(c, alias) for c in _conjuncts(condition))


def raw_reads(tree: exp.Expression) -> list[tuple[exp.Expression, exp.Table]]:
    """(the query or statement that reads it, the raw table) for each read of the raw table
    (DDL, which makes or alters it, reads nothing)."""
    found = []
    for table in tree.find_all(exp.Table):
        reader = table.find_ancestor(exp.Select, exp.Delete, exp.Merge, exp.DDL, exp.Alter)
        if table.sql("bigquery").split(" AS ")[0] == RAW and not isinstance(
            reader, exp.DDL | exp.Alter
        ):
            found.append((reader, table))
    return found


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
def test_every_read_of_the_raw_table_carries_a_constant_partition_predicate(scope):
    for name in sorted(statements("bigquery") - set(MUST_SCAN)):
        sql = SQL.sql(name, scope, dt.datetime(2026, 11, 26), [dt.date(2019, 10, 2)], **CONTEXT)
        for tree in filter(None, sqlglot.parse(sql, dialect="bigquery")):
            for reader, table in raw_reads(tree):
                alias = table.alias_or_name
                if isinstance(reader, exp.Select) and not list(reader.find_all(exp.Column)):
                    continue  # COUNT(*) of the whole table: from its metadata, no bytes
                if isinstance(reader, exp.Merge):  # pruned in the match and where it updates
                    matched = [w for w in reader.find_all(exp.When) if w.args.get("matched")]
                    assert _pruned(reader.args["on"], alias), name
                    assert all(_pruned(w.args.get("condition"), alias) for w in matched), name
                else:
                    assert _pruned(reader.args.get("where"), alias), name


def test_what_must_scan_reads_only_its_columns():
    for name, allowed in MUST_SCAN.items():
        if allowed is None:
            continue
        sql = SQL.sql(name, NOV_DEC_2018, dt.datetime(2026, 11, 26), **CONTEXT)
        for reader, table in raw_reads(sqlglot.parse_one(sql, dialect="bigquery")):
            alias = table.alias_or_name
            aliases = {e.alias for e in reader.expressions if isinstance(reader, exp.Select)}
            read = {c.name for c in reader.find_all(exp.Column) if c.table in ("", alias)}
            assert read - aliases <= allowed, (name, read)


def test_the_window_merge_has_no_not_matched_by_source_beside_not_matched():
    """Both together make a full outer join BigQuery cannot prune: the window's rows gone
    upstream are deleted by delete_gone.sql instead."""
    sql = SQL.sql("merge", NOV_DEC_2018, dt.datetime(2026, 11, 26), [dt.date(2019, 10, 2)])
    merge = sqlglot.parse_one(sql, dialect="bigquery")
    whens = list(merge.find_all(exp.When))
    assert [w for w in whens if not w.args.get("matched") and not w.args.get("source")]
    assert not [w for w in whens if w.args.get("source")]
    inserted = merge.find(exp.Insert)
    assert [c.name for c in inserted.this.expressions] == [*FIELD_NAMES, "_loaded_at"]
    (moved,) = [i for i in merge.args["on"].find_all(exp.In)]  # the moved rows' partitions
    assert [e.sql("bigquery") for e in moved.expressions] == ["CAST('2019-10-02' AS DATE)"]
    delete = sqlglot.parse_one(SQL.sql("delete_gone", NOV_DEC_2018), dialect="bigquery")
    assert isinstance(delete, exp.Delete)
    assert _pruned(delete.args["where"], "incidents")


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


def _partitions(condition: exp.Expression, granularity: str) -> set[dt.date]:
    """The partitions (first days) a constant date predicate on the raw table can reach."""

    def first_day(day: dt.date) -> dt.date:
        return day.replace(day=1) if granularity == "MONTH" else day

    def date(node: exp.Expression) -> dt.date:
        return dt.date.fromisoformat(node.sql("bigquery").split("'")[1])

    days: set[dt.date] = set()
    for found in condition.find_all(exp.In):
        days |= {first_day(date(e)) for e in found.expressions}
    lower = [date(c.expression) for c in condition.find_all(exp.GTE)]
    upper = [date(c.expression) for c in condition.find_all(exp.LT)]
    for start, end in zip(lower, upper, strict=True):
        day = start
        while day < end:
            days.add(first_day(day))
            day += dt.timedelta(days=1)
    return days


def test_no_job_modifies_more_than_4000_partitions_through_2040():
    """Any history the source might hold, 2003 to 2040: a backfill of all of it as one window,
    and a catch-up after the publisher replaced the dataset (every row changed, one moved to
    every day). BigQuery refuses a job that modifies more than 4,000 partitions."""
    (granularity,) = [
        p.this.args["unit"].name
        for p in sqlglot.parse(SQL.sql("create_tables"), dialect="bigquery")[0].find_all(
            exp.PartitionedByProperty
        )
    ]
    assert granularity == "MONTH"
    everything = Window(dt.date(2003, 1, 1), dt.date(2041, 1, 1))
    every_day = [everything.start + dt.timedelta(days=n) for n in range(len(everything.days()))]
    catch_up = UpdatedBetween(dt.datetime(2040, 1, 1), dt.datetime(2040, 1, 2))
    jobs = {
        "backfill delete_gone": SQL.sql("delete_gone", everything),
        "backfill merge": SQL.sql("merge", everything, dt.datetime(2040, 1, 2), every_day),
        "catch-up merge": SQL.sql("merge", catch_up, dt.datetime(2040, 1, 2), every_day),
    }
    for name, sql in jobs.items():
        statement = sqlglot.parse_one(sql, dialect="bigquery")
        condition = statement.args.get("where") or statement.args["on"]
        assert len(_partitions(condition, granularity)) == 456, name  # 38 years of months
        # the same job on a table partitioned by day would be refused
        assert len(_partitions(condition, "DAY")) > 4000, name


def test_the_audits_missing_columns_are_added_in_one_bigquery_statement():
    missing = [("kind", "STRING"), ("source_rows_updated_at", "TIMESTAMP")]
    sql = SQL.sql("add_audit_columns", missing=missing)
    (alter,) = sqlglot.parse(sql, dialect="bigquery")  # one statement: one metadata update
    assert isinstance(alter, exp.Alter)
    assert [a.this.name for a in alter.args["actions"]] == ["kind", "source_rows_updated_at"]


def test_the_move_to_monthly_partitions_copies_drops_and_renames_and_its_finish_renames():
    from google.cloud import bigquery

    from sfpd.warehouse import partitioned_by_day

    day = bigquery.Table("p.d.incidents")
    day.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="incident_date")
    month = bigquery.Table("p.d.incidents")
    month.time_partitioning = bigquery.TimePartitioning(type_="MONTH", field="incident_date")
    assert partitioned_by_day(day) and not partitioned_by_day(month)
    assert not partitioned_by_day(bigquery.Table("p.d.incidents"))
    move = sqlglot.parse(SQL.sql("repartition", **CONTEXT), dialect="bigquery")
    create, drop, rename = move
    assert isinstance(create, exp.Create) and create.args.get("replace")
    partition = create.find(exp.PartitionedByProperty).this.sql("bigquery")
    assert partition == "DATE_TRUNC(incident_date, MONTH)"
    assert create.expression.find(exp.Table).sql("bigquery") == RAW  # AS SELECT * FROM raw
    assert isinstance(drop, exp.Drop) and drop.find(exp.Table).sql("bigquery") == RAW
    assert isinstance(rename, exp.Alter)
    # stopped after the DROP: the next run renames the copy, nothing else
    finish = SQL.sql("repartition", **{**CONTEXT, "finish": True})
    (only,) = sqlglot.parse(finish, dialect="bigquery")
    assert isinstance(only, exp.Alter)
