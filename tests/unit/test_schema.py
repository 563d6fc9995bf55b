"""One definition of the columns (sfpd.schema) drives Arrow, DuckDB and BigQuery."""

import duckdb
import pyarrow as pa

from sfpd.normalise import normalise_page
from sfpd.schema import ARROW_SCHEMA, FIELD_NAMES, FIELDS, bigquery_columns, duckdb_columns


def test_an_empty_page_has_the_schema():
    assert normalise_page([]).table.schema == ARROW_SCHEMA


def test_one_definition_drives_every_engine():
    assert [name for name, _ in duckdb_columns()] == list(FIELD_NAMES)
    assert [name for name, _ in bigquery_columns()] == list(FIELD_NAMES)
    assert dict(bigquery_columns())["incident_datetime"] == "DATETIME"  # floating time
    assert dict(bigquery_columns())["incident_date"] == "DATE"
    assert "point" not in FIELD_NAMES and len(FIELDS) == 28


def test_duckdb_reads_lake_parquet_as_the_declared_types(tmp_path, api_rows):
    import pyarrow.parquet as pq

    pq.write_table(normalise_page(api_rows).table, tmp_path / "part.parquet")
    described = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / 'part.parquet'}'").fetchall()
    expected = duckdb_columns()
    # pyarrow < 23 (Composer 3.1.7's 18.1) marks Parquet TIME as adjusted to UTC, which DuckDB
    # reads as TIMETZ; staging casts every column to the raw table's type (duckdb/load.sql)
    written = pq.ParquetFile(tmp_path / "part.parquet")
    time = written.schema_arrow.get_field_index("incident_time")
    if "isAdjustedToUTC=true" in str(written.schema.column(time).logical_type):
        expected[time] = ("incident_time", "TIME WITH TIME ZONE")
    assert [(name, kind) for name, kind, *_ in described] == expected
    assert pa.types.is_timestamp(ARROW_SCHEMA.field("report_datetime").type)
