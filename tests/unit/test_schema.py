"""Normalisation of real API rows (nulls omitted, filed_online only when true, numbers as
strings, computed-region keys) into the one typed schema."""

import duckdb
import pyarrow as pa
import pytest

from sfpd.replay import rows_from_csv_export
from sfpd.schema import (
    ARROW_SCHEMA,
    FIELD_NAMES,
    FIELDS,
    NormalisationError,
    bigquery_columns,
    duckdb_columns,
    normalise_page,
)
from tests.conftest import CSV_EXPORT


def test_real_api_rows_normalise_with_their_quirks(api_rows):
    table = normalise_page(api_rows)
    assert table.schema == ARROW_SCHEMA
    assert table.num_rows == 1000
    by_row_id = {row["row_id"]: row for row in table.to_pylist()}
    assert len(by_row_id) == 1000

    # filed_online is sent only when true (241 rows); absent means false, never null
    assert table.column("filed_online").null_count == 0
    assert sum(table.column("filed_online").to_pylist()) == 241
    # 87 rows have no location: the keys are omitted, the columns are null
    assert table.column("latitude").null_count == 87
    assert table.column("analysis_neighborhood").null_count == 87
    assert table.column("cad_number").null_count == 260

    first = api_rows[0]
    row = by_row_id[first["row_id"]]
    assert row["incident_code"] == "06374"  # leading zero kept
    assert row["incident_id"] == 854240
    assert str(row["incident_datetime"]) == "2019-08-15 11:41:00"
    assert str(row["incident_date"]) == "2019-08-15"
    assert str(row["incident_time"]) == "11:41:00"
    assert row["filed_online"] is True


def test_coordinates_match_the_geojson_point(api_rows):
    table = normalise_page(api_rows).to_pylist()
    located = [(src, out) for src, out in zip(api_rows, table, strict=True) if "point" in src]
    assert len(located) == 913
    for src, out in located:
        assert [out["longitude"], out["latitude"]] == src["point"]["coordinates"]


def test_csv_export_rows_normalise_like_api_rows():
    rows = rows_from_csv_export(CSV_EXPORT)
    table = normalise_page(rows)
    assert table.num_rows == 11884
    assert table.column("latitude").null_count == 608  # 5.1% without location
    districts = table.column("police_district").to_pylist()
    assert districts.count("Out of SF") == 283
    assert len(set(table.column("incident_id").to_pylist())) == 9749  # several rows per report
    # row_id = incident_id || incident_code on every real row
    for row in table.select(["row_id", "incident_id", "incident_code"]).to_pylist():
        assert row["row_id"] == f"{row['incident_id']}{row['incident_code']}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("incident_datetime", "2019-13-01T00:00:00.000", "incident_datetime"),
        ("incident_date", "yesterday", "incident_date"),
        ("incident_time", "25:00", "incident_time"),
        ("incident_id", "12x", "incident_id"),
        ("cnn", "1.5", "cnn"),  # not a whole number
        ("latitude", "north", "latitude"),
        ("filed_online", "yes", "wrong JSON type"),
    ],
)
def test_bad_values_are_refused_with_the_column_named(api_rows, field, value, message):
    with pytest.raises(NormalisationError, match=message):
        normalise_page([*api_rows[:5], {**api_rows[5], field: value}])


@pytest.mark.parametrize("field", ["row_id", "incident_id", "incident_datetime", "incident_date"])
def test_required_fields_must_be_present(api_rows, field):
    row = {k: v for k, v in api_rows[0].items() if k != field}
    with pytest.raises(NormalisationError, match=f"{field}.*required"):
        normalise_page([row])


def test_an_empty_page_has_the_schema():
    assert normalise_page([]).schema == ARROW_SCHEMA


def test_one_definition_drives_every_engine():
    assert [name for name, _ in duckdb_columns()] == list(FIELD_NAMES)
    assert [name for name, _ in bigquery_columns()] == list(FIELD_NAMES)
    assert dict(bigquery_columns())["incident_datetime"] == "DATETIME"  # floating time
    assert dict(bigquery_columns())["incident_date"] == "DATE"
    assert "point" not in FIELD_NAMES and len(FIELDS) == 28


def test_duckdb_reads_lake_parquet_as_the_declared_types(tmp_path, api_rows):
    import pyarrow.parquet as pq

    pq.write_table(normalise_page(api_rows), tmp_path / "part.parquet")
    described = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / 'part.parquet'}'").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == duckdb_columns()
    assert pa.types.is_timestamp(ARROW_SCHEMA.field("report_datetime").type)
