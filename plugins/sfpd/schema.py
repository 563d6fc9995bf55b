"""The one definition of the incident table: Socrata field names, and the Arrow, DuckDB and
BigQuery types derived from it (:mod:`sfpd.normalise` turns API pages into it).

Socrata returns every value as a JSON string (except ``filed_online``, a boolean present only
when true) and leaves out keys whose value is null. Timestamps are DataSF "floating" local times
(America/Los_Angeles, no zone), e.g. ``2019-10-04T14:25:00.000``; they stay floating here
(Arrow timestamp without zone, DuckDB TIMESTAMP, BigQuery DATETIME).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


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


def duckdb_columns() -> list[tuple[str, str]]:
    return [(f.name, f.kind.duckdb) for f in FIELDS]


def bigquery_columns() -> list[tuple[str, str]]:
    return [(f.name, f.kind.bigquery) for f in FIELDS]
