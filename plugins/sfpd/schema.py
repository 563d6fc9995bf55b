"""The one definition of the incident table: Socrata field names, and the Arrow, DuckDB and
BigQuery types derived from it; plus the normalisation of a page of API rows into a typed Arrow
table.

Socrata returns every value as a JSON string (except ``filed_online``, a boolean present only
when true) and leaves out keys whose value is null. Timestamps are DataSF "floating" local times
(America/Los_Angeles, no zone), e.g. ``2019-10-04T14:25:00.000``; they stay floating here
(Arrow timestamp without zone, DuckDB TIMESTAMP, BigQuery DATETIME).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Kind:
    """A logical column type and its spelling in each engine."""

    arrow: pa.DataType
    duckdb: str
    bigquery: str


STRING = Kind(pa.string(), "VARCHAR", "STRING")
INT64 = Kind(pa.int64(), "BIGINT", "INT64")
FLOAT64 = Kind(pa.float64(), "DOUBLE", "FLOAT64")
BOOL = Kind(pa.bool_(), "BOOLEAN", "BOOL")
DATE = Kind(pa.date32(), "DATE", "DATE")
TIME = Kind(pa.time64("us"), "TIME", "TIME")
DATETIME = Kind(pa.timestamp("us"), "TIMESTAMP", "DATETIME")


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = False
    description: str = ""


# Order = column order of the lake files and the raw table. `point` is not selected: it is the
# GeoJSON form of (longitude, latitude), which are kept. The `:@computed_region_*` columns change
# over time and are never selected.
FIELDS: tuple[Field, ...] = (
    Field("row_id", STRING, True, "incident_id followed by incident_code: one row per offence"),
    Field("incident_id", INT64, True, "The report; one report has one row per offence code"),
    Field("incident_number", INT64, False, "The case; supplements share it"),
    Field("cad_number", INT64, False, "Computer-aided dispatch number, when dispatched"),
    Field("incident_datetime", DATETIME, True, "When the incident happened (floating local time)"),
    Field("incident_date", DATE, True, "Date of incident_datetime; the raw table's partition"),
    Field("incident_time", TIME),
    Field("incident_year", INT64),
    Field("incident_day_of_week", STRING),
    Field("report_datetime", DATETIME, False, "When it was reported (floating local time)"),
    Field("report_type_code", STRING),
    Field("report_type_description", STRING),
    Field("filed_online", BOOL, False, "True when filed online; the API omits it otherwise"),
    Field("incident_code", STRING),
    Field("incident_category", STRING),
    Field("incident_subcategory", STRING),
    Field("incident_description", STRING),
    Field("resolution", STRING),
    Field("intersection", STRING),
    Field("cnn", INT64, False, "Centerline network number of the intersection"),
    Field("police_district", STRING),
    Field("analysis_neighborhood", STRING),
    Field("supervisor_district", INT64),
    Field("supervisor_district_2012", INT64),
    Field("latitude", FLOAT64),
    Field("longitude", FLOAT64),
    Field("data_as_of", DATETIME),
    Field("data_loaded_at", DATETIME),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
ARROW_SCHEMA = pa.schema([pa.field(f.name, f.kind.arrow, nullable=not f.required) for f in FIELDS])
# What the API sends: strings, except filed_online.
_WIRE_SCHEMA = pa.schema([(f.name, pa.bool_() if f.kind is BOOL else pa.string()) for f in FIELDS])


def duckdb_columns() -> list[tuple[str, str]]:
    return [(f.name, f.kind.duckdb) for f in FIELDS]


def bigquery_columns() -> list[tuple[str, str]]:
    return [(f.name, f.kind.bigquery) for f in FIELDS]


class NormalisationError(ValueError):
    """A page holds a value that cannot be converted to the column's type."""


def _convert(name: str, column: pa.ChunkedArray, kind: Kind) -> pa.ChunkedArray:
    if kind is STRING or kind is BOOL:
        return column
    if kind is INT64:
        # Socrata numbers may arrive as "28009000", "28009000.0" or "2.4e+07"; the safe cast
        # to int64 refuses anything that is not a whole number.
        return pc.cast(pc.cast(column, pa.float64()), pa.int64())
    if kind is FLOAT64:
        return pc.cast(column, pa.float64())
    if kind is DATETIME:
        return pc.cast(column, pa.timestamp("us"))
    if kind is DATE:
        return pc.cast(pc.cast(column, pa.timestamp("us")), pa.date32())
    if kind is TIME:
        # "HH:MM" -> microseconds since midnight
        parts = pc.split_pattern(column, ":")
        hours = pc.cast(pc.list_element(parts, 0), pa.int64())
        minutes = pc.cast(pc.list_element(parts, 1), pa.int64())
        bad = pc.or_(pc.greater_equal(hours, 24), pc.greater_equal(minutes, 60))
        if pc.any(bad).as_py():
            raise ValueError("hour or minute out of range")
        micros = pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60_000_000)
        return pc.cast(micros, pa.time64("us"))
    raise AssertionError(f"unknown kind for {name}")


def normalise_page(rows: Iterable[Mapping]) -> pa.Table:
    """Turn API rows (dicts, null keys omitted, unknown keys ignored) into a typed table.

    Raises NormalisationError naming the column and the offending value.
    """
    rows = list(rows)
    try:
        wire = pa.Table.from_pylist(rows, schema=_WIRE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise NormalisationError(f"row has a value of the wrong JSON type: {exc}") from exc
    columns = []
    for f in FIELDS:
        column = wire.column(f.name)
        try:
            converted = _convert(f.name, column, f.kind)
        except (pa.ArrowInvalid, ValueError) as exc:
            raise NormalisationError(
                f"column {f.name!r}: cannot read {_first_bad(column, f.kind)!r} as "
                f"{f.kind.bigquery}: {exc}"
            ) from exc
        if f.kind is BOOL:
            # The API sends filed_online only when it is true.
            converted = pc.fill_null(converted, False)
        if f.required and converted.null_count:
            raise NormalisationError(f"column {f.name!r} is required but missing in a row")
        columns.append(converted)
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def _first_bad(column: pa.ChunkedArray, kind: Kind) -> object:
    for value in column.to_pylist():
        if value is None:
            continue
        try:
            _convert("", pa.chunked_array([[value]], type=column.type), kind)
        except (pa.ArrowInvalid, ValueError):
            return value
    return None
