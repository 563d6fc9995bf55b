"""Normalise a page of API rows into the typed table of :mod:`sfpd.schema` (which says what the
API sends: strings, omitted nulls, floating local times), quarantining the rows that break a
rule (:data:`RULES`) whole, with the reason.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sfpd.schema import (
    ARROW_SCHEMA,
    BOOL,
    DATE,
    DATETIME,
    FIELD_NAMES,
    FIELDS,
    FLOAT64,
    INT64,
    STRING,
    TIME,
    Kind,
)

# Before the checks every column may hold nulls (a missing required value is a reject).
_NULLABLE_SCHEMA = pa.schema([pa.field(f.name, f.kind.arrow) for f in FIELDS])
# What the API sends: strings, except filed_online.
_WIRE_SCHEMA = pa.schema([(f.name, pa.bool_() if f.kind is BOOL else pa.string()) for f in FIELDS])

# San Francisco's land with a margin (Treasure Island included, the Farallones not): a
# coordinate outside it is a placeholder or an error, never an incident location.
SF_BBOX = {"lat": (37.60, 37.95), "lon": (-122.55, -122.30)}


def _outside(column: pa.ChunkedArray, axis: str) -> pa.ChunkedArray:
    low, high = SF_BBOX[axis]
    return pc.or_(pc.less(column, low), pc.greater(column, high))


def _required(name: str) -> Callable[[dict], pa.ChunkedArray]:
    return lambda c: pc.is_null(c[name])


# The quarantine rules on the typed columns, in the order a row's first reason is taken: a check
# (the columns by name -> True for a row that breaks the rule) and the reason it is quarantined
# with. Before these, a value of the wrong JSON type ("<field>: expected a JSON str") or one that
# cannot be read as its column's type ("<field>: cannot read '…' as INT64") already gave its row
# a reason.
RULES: tuple[tuple[Callable[[dict], pa.ChunkedArray], str], ...] = (
    *((_required(f.name), f"{f.name}: required, missing") for f in FIELDS if f.required),
    (
        lambda c: pc.not_equal(
            c["row_id"],
            pc.binary_join_element_wise(
                pc.cast(c["incident_id"], pa.string()), c["incident_code"], ""
            ),
        ),
        "row_id: is not incident_id followed by incident_code",
    ),
    (
        lambda c: pc.not_equal(pc.cast(c["incident_datetime"], pa.date32()), c["incident_date"]),
        "incident_date: is not the date of incident_datetime",
    ),
    (
        lambda c: _outside(c["latitude"], "lat"),
        f"latitude: {SF_BBOX['lat'][0]}..{SF_BBOX['lat'][1]} is San Francisco, got a point outside",
    ),
    (
        lambda c: _outside(c["longitude"], "lon"),
        f"longitude: {SF_BBOX['lon'][0]}..{SF_BBOX['lon'][1]} is San Francisco, got a point "
        "outside",
    ),
    (
        lambda c: pc.xor(pc.is_null(c["latitude"]), pc.is_null(c["longitude"])),
        "latitude/longitude: one without the other",
    ),
)


@dataclass(frozen=True)
class Reject:
    """A row that could not be normalised, kept whole with the reason."""

    raw_json: str
    reason: str


@dataclass(frozen=True)
class Normalised:
    table: pa.Table
    rejects: list[Reject]
    unknown_fields: frozenset[str]

    def __len__(self) -> int:
        """Rows read: those that passed and those quarantined."""
        return self.table.num_rows + len(self.rejects)


def _convert(column: pa.ChunkedArray, kind: Kind) -> pa.ChunkedArray:
    """Vectorised conversion of a wire column (strings) to the column's type; raises on any
    value it cannot convert."""
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
    if kind is TIME:  # "HH:MM" -> microseconds since midnight
        parts = pc.split_pattern(column, ":")
        if pc.any(pc.not_equal(pc.list_value_length(parts), 2)).as_py():
            raise ValueError("not HH:MM")
        hours = pc.cast(pc.list_element(parts, 0), pa.int64())
        minutes = pc.cast(pc.list_element(parts, 1), pa.int64())
        bad = pc.or_(
            pc.or_(pc.less(hours, 0), pc.greater_equal(hours, 24)),
            pc.or_(pc.less(minutes, 0), pc.greater_equal(minutes, 60)),
        )
        if pc.any(bad).as_py():
            raise ValueError("hour or minute out of range")
        micros = pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60_000_000)
        return pc.cast(micros, pa.time64("us"))
    raise AssertionError(f"unknown kind {kind}")


def _convert_or_flag(
    name: str, column: pa.ChunkedArray, kind: Kind, reasons: list[str | None]
) -> pa.ChunkedArray:
    """Convert a column; values that cannot be converted become null and their rows get a
    reason. The value-by-value path runs only for a column that failed as a whole."""
    try:
        return _convert(column, kind)
    except (pa.ArrowInvalid, ValueError):
        pass
    values = column.to_pylist()
    for index, value in enumerate(values):
        if value is None:
            continue
        try:
            _convert(pa.chunked_array([[value]], type=column.type), kind)
        except (pa.ArrowInvalid, ValueError):
            values[index] = None
            if reasons[index] is None:
                reasons[index] = f"{name}: cannot read {value!r} as {kind.bigquery}"
    return _convert(pa.chunked_array([values], type=column.type), kind)


def _wire_table(rows: list[dict], reasons: list[str | None]) -> pa.Table:
    """Rows as Arrow strings (booleans for filed_online). A page with a value of the wrong
    JSON type is retried row by row, and those rows get a reason and are blanked."""
    try:
        return pa.Table.from_pylist(rows, schema=_WIRE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    checked = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            reasons[index] = f"row: expected a JSON object, got {type(row).__name__}"
            checked.append({})
            continue
        for name, kind in _WIRE_TYPES.items():
            value = row.get(name)
            if value is not None and not isinstance(value, kind):
                reasons[index] = reasons[index] or (
                    f"{name}: expected a JSON {kind.__name__}, got {type(value).__name__}"
                )
        checked.append({} if reasons[index] else row)
    return pa.Table.from_pylist(checked, schema=_WIRE_SCHEMA)


_WIRE_TYPES = {f.name: bool if f.kind is BOOL else str for f in FIELDS}


def _flag(reasons: list[str | None], mask: pa.ChunkedArray | pa.Array, reason: str) -> None:
    if len(mask) == 0:  # pyarrow < 26 (Composer's images) crashes on indices_nonzero of nothing
        return
    for index in pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist():
        if reasons[index] is None:
            reasons[index] = reason


def normalise_page(rows: Iterable[Mapping]) -> Normalised:
    """Turn API rows (dicts, null keys omitted) into a typed table of the rows that pass, and
    the rejects with their reasons. Unknown keys are ignored and reported."""
    rows = list(rows)
    reasons: list[str | None] = [None] * len(rows)
    keys = set().union(*(row for row in rows if isinstance(row, Mapping)))
    unknown = frozenset(keys - set(FIELD_NAMES))
    wire = _wire_table(rows, reasons)
    return _normalise(wire, reasons, unknown, lambda: rows)


def normalise_json(body: bytes) -> Normalised:
    """:func:`normalise_page` of a raw API page (a JSON array of objects). A page of strings
    only (and ``filed_online`` booleans) in Socrata's compact layout, which is what Socrata
    sends, is read by DuckDB straight into Arrow string columns, faster than decoding it into
    dicts (docs/benchmarks.md); any other page (a value of the wrong JSON type, whitespace
    around the colons, a body DuckDB cannot read) is decoded row by row, which words the
    reasons. Same table, same rejects either way. Keys outside the schema are not looked for:
    the pipeline asks for its fields with ``$select``."""
    wire = _read_strings(body)
    if wire is not None and _strings_only(body, wire):
        reasons: list[str | None] = [None] * wire.num_rows
        return _normalise(wire, reasons, frozenset(), lambda: json.loads(body))
    rows = json.loads(body)
    if not isinstance(rows, list):
        raise ValueError(
            f"expected a JSON array of rows, got {type(rows).__name__}: {body[:200]!r}"
        )
    return normalise_page(rows)


def _read_strings(body: bytes) -> pa.Table | None:
    """The page's columns as Arrow strings (booleans for filed_online), read by DuckDB; None
    for a body it cannot read that way."""
    try:
        with duckdb.connect() as con:
            page = con.read_json(io.BytesIO(body), format="array", columns=_WIRE_COLUMNS)
            return page.to_arrow_table().cast(_WIRE_SCHEMA)
    except duckdb.Error:
        return None


_WIRE_COLUMNS = {f.name: "BOOLEAN" if f.kind is BOOL else "VARCHAR" for f in FIELDS}


def _strings_only(body: bytes, wire: pa.Table) -> bool:
    """Whether every value DuckDB read was a JSON string, but filed_online's booleans (DuckDB
    would turn 123 or {...} into text), counted on the raw body. A member laid out compactly
    (``"name":``) is counted once, as a quote inside a string is escaped; those whose value is
    a string (``"name":"``), with filed_online's ``true`` and ``false``, must be all of them and
    as many as the values DuckDB read, and filed_online's booleans as many as it read. A body
    laid out otherwise, an explicit null, or an escaped ``\\":`` inside a string fails the
    count and is decoded row by row: slower, never wrong. (Counting bytes costs a fraction of a
    regular expression that allows whitespace.)"""
    members = body.count(b'":')
    strings = body.count(b'":"')
    booleans = body.count(b'"filed_online":t') + body.count(b'"filed_online":f')
    values = sum(len(column) - column.null_count for column in wire.columns)
    filed_online = wire.column("filed_online")
    read_as_booleans = len(filed_online) - filed_online.null_count  # "true" would be one too
    return members == values == strings + booleans and booleans == read_as_booleans


def _normalise(
    wire: pa.Table,
    reasons: list[str | None],
    unknown: frozenset[str],
    raw_rows: Callable[[], list[Mapping]],
) -> Normalised:
    """Typed columns, the quarantine rules, the rows that pass; ``raw_rows`` gives the page
    as decoded rows, asked for only when some row is rejected (for its raw JSON)."""
    columns = {}
    for f in FIELDS:
        column = _convert_or_flag(f.name, wire.column(f.name), f.kind, reasons)
        if f.kind is BOOL:
            column = pc.fill_null(column, False)  # the API sends filed_online only when true
        columns[f.name] = column
    for check, reason in RULES:
        _flag(reasons, check(columns), reason)
    table = pa.Table.from_arrays(list(columns.values()), schema=_NULLABLE_SCHEMA)
    if all(reason is None for reason in reasons):  # the usual page: nothing to filter or copy
        return Normalised(table.cast(ARROW_SCHEMA), [], unknown)
    keep = pa.array([reason is None for reason in reasons], type=pa.bool_())
    rows = raw_rows()
    rejects = [
        Reject(json.dumps(rows[index], sort_keys=True, default=str), reason)
        for index, reason in enumerate(reasons)
        if reason is not None
    ]
    return Normalised(table.filter(keep).cast(ARROW_SCHEMA), rejects, unknown)
