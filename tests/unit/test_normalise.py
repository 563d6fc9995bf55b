"""Normalisation of real API rows (nulls omitted, filed_online only when true, numbers as
strings, computed-region keys) into the one typed schema."""

import csv
import json

import pytest

from sfpd import normalise
from sfpd.normalise import RULES, normalise_json, normalise_page
from sfpd.schema import ARROW_SCHEMA, FIELD_NAMES, FIELDS
from sfpd_dev.replay import rows_from_csv_export, socrata_json
from tests.conftest import CSV_EXPORT


def test_real_api_rows_normalise_with_their_quirks(api_rows):
    result = normalise_page(api_rows)
    table = result.table
    assert result.rejects == []
    assert table.schema == ARROW_SCHEMA
    assert table.num_rows == 1000
    # the API's computed-region columns and the GeoJSON point are not ours: reported, ignored
    assert "point" in result.unknown_fields
    assert any(f.startswith(":@computed_region_") for f in result.unknown_fields)
    by_row_id = {row["row_id"]: row for row in table.to_pylist()}
    assert len(by_row_id) == 1000

    # filed_online is sent only when true; absent means false, never null
    filed_online = sum("filed_online" in row for row in api_rows)
    assert 0 < filed_online < len(api_rows)
    assert table.column("filed_online").null_count == 0
    assert sum(table.column("filed_online").to_pylist()) == filed_online
    # rows without a location: the keys are omitted, the columns are null
    unlocated = sum("latitude" not in row for row in api_rows)
    assert unlocated > 0
    assert table.column("latitude").null_count == unlocated
    assert table.column("analysis_neighborhood").null_count == unlocated
    assert table.column("cad_number").null_count == sum("cad_number" not in r for r in api_rows)

    first = api_rows[0]
    row = by_row_id[first["row_id"]]
    assert row["incident_code"] == "06374"  # leading zero kept
    assert row["incident_id"] == 854240
    assert str(row["incident_datetime"]) == "2019-08-15 11:41:00"
    assert str(row["incident_date"]) == "2019-08-15"
    assert str(row["incident_time"]) == "11:41:00"
    assert row["filed_online"] is True


def test_coordinates_match_the_geojson_point(api_rows):
    table = normalise_page(api_rows).table.to_pylist()
    located = [(src, out) for src, out in zip(api_rows, table, strict=True) if "point" in src]
    assert len(located) == sum("latitude" in row for row in api_rows)
    for src, out in located:
        assert [out["longitude"], out["latitude"]] == src["point"]["coordinates"]


def test_csv_export_rows_normalise_like_api_rows():
    with CSV_EXPORT.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    rows = rows_from_csv_export(CSV_EXPORT)
    result = normalise_page(rows)
    table = result.table
    assert result.rejects == []  # every real row passes the quarantine rules
    assert table.num_rows == len(lines)
    # the export's quirks: blank coordinates (about 5%), reports outside the city, and
    # several rows per report
    blank = sum(not line["Latitude"] for line in lines)
    assert 0.03 < blank / len(lines) < 0.08
    assert table.column("latitude").null_count == blank
    districts = table.column("police_district").to_pylist()
    assert (
        districts.count("Out of SF")
        == sum(line["Police District"] == "Out of SF" for line in lines)
        > 0
    )
    reports = len({line["Incident ID"] for line in lines})
    assert len(set(table.column("incident_id").to_pylist())) == reports < len(lines)
    # row_id = incident_id || incident_code on every real row
    for row in table.select(["row_id", "incident_id", "incident_code"]).to_pylist():
        assert row["row_id"] == f"{row['incident_id']}{row['incident_code']}"


def _without(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


# (how a real row is broken, the reason it must be quarantined with)
MALFORMED = [
    (lambda r: _without(r, "row_id"), "row_id: required, missing"),
    (lambda r: _without(r, "incident_datetime"), "incident_datetime: required, missing"),
    (
        lambda r: {**r, "incident_datetime": "2019-13-01T00:00:00.000"},
        "incident_datetime: cannot read",
    ),
    (lambda r: {**r, "incident_date": "yesterday"}, "incident_date: cannot read"),
    (lambda r: {**r, "report_datetime": "10/01/2019"}, "report_datetime: cannot read"),
    (lambda r: {**r, "incident_time": "25:00"}, "incident_time: cannot read"),
    (lambda r: {**r, "incident_time": "noon"}, "incident_time: cannot read"),
    (lambda r: {**r, "row_id": "99999906374"}, "row_id: is not incident_id followed by"),
    (lambda r: {**r, "incident_id": "12x"}, "incident_id: cannot read '12x' as INT64"),
    (lambda r: {**r, "cnn": "1.5"}, "cnn: cannot read '1.5' as INT64"),
    (lambda r: {**r, "latitude": "north"}, "latitude: cannot read"),
    (lambda r: {**r, "latitude": "90", "longitude": "-120.5"}, "latitude: 37.6..37.95"),
    (lambda r: {**r, "longitude": "-121.9"}, "longitude: -122.55..-122.3"),
    (lambda r: _without(r, "longitude"), "latitude/longitude: one without the other"),
    (lambda r: {**r, "incident_date": "2019-01-01T00:00:00.000"}, "incident_date: is not the date"),
    (lambda r: {**r, "filed_online": "yes"}, "filed_online: expected a JSON bool, got str"),
    (lambda r: {**r, "incident_id": {"id": 1}}, "incident_id: expected a JSON str, got dict"),
    (lambda r: {**r, "resolution": ["Open"]}, "resolution: expected a JSON str, got list"),
]


@pytest.mark.parametrize(("break_row", "reason"), MALFORMED)
def test_a_malformed_row_is_quarantined_with_its_reason_and_the_rest_load(
    api_rows, break_row, reason
):
    located = [r for r in api_rows if "latitude" in r]
    broken = break_row(located[5])
    result = normalise_page([*located[:5], broken, *located[6:10]])
    assert result.table.num_rows == 9
    assert [r.reason[: len(reason)] for r in result.rejects] == [reason]
    assert json.loads(result.rejects[0].raw_json) == json.loads(json.dumps(broken, default=str))
    assert located[5]["row_id"] not in result.table.column("row_id").to_pylist()


def test_all_kinds_at_once_lose_no_row(api_rows):
    located = [r for r in api_rows if "latitude" in r]
    broken = [make(row) for (make, _), row in zip(MALFORMED, located[100:], strict=False)]
    good = located[:50]
    result = normalise_page([*good, *broken])
    assert result.table.num_rows + len(result.rejects) == len(good) + len(broken)
    assert len(result.rejects) == len(MALFORMED)


def _selected(api_rows: list[dict]) -> list[dict]:
    """The rows as the pipeline's $select returns them: the schema's fields only."""
    return [{k: v for k, v in row.items() if k in FIELD_NAMES} for row in api_rows]


def test_a_page_of_strings_is_read_by_duckdb_exactly_like_decoded_rows(api_rows, monkeypatch):
    """normalise_json reads a page of JSON strings (and filed_online booleans) laid out as
    Socrata does with DuckDB and gives the table and rejects normalise_page gives for the
    decoded rows; a page laid out otherwise gives the same, decoded."""
    rows = _selected(api_rows)
    bad = [dict(rows[i]) for i in range(5)]
    bad[0]["incident_date"] = "2019-13-45T00:00:00.000"
    bad[1].pop("row_id")
    bad[2]["incident_time"] = "25:61"
    bad[3]["intersection"] = 'O\'Farrell St \\ "Market" \u00e9'  # escapes survive
    bad[4]["filed_online"] = False
    page = rows[5:] + bad
    assert sum("filed_online" in row for row in page) > 10  # real rows filed online
    decoded = normalise_page(page)
    other_layouts = (json.dumps(page), json.dumps(page, indent=1, separators=(", ", " : ")))
    for body in other_layouts:  # whitespace around the colons: decoded row by row, same result
        assert normalise_json(body.encode()).table.equals(decoded.table)
    monkeypatch.setattr(normalise, "normalise_page", None)  # the DuckDB path, no fallback
    for body in (socrata_json(page), json.dumps(page, separators=(",", ":")).encode()):
        raw = normalise_json(body)
        assert raw.table.equals(decoded.table)
        assert [r.reason for r in raw.rejects] == [r.reason for r in decoded.rejects]
        assert [json.loads(r.raw_json) for r in raw.rejects] == [
            json.loads(r.raw_json) for r in decoded.rejects
        ]
        assert len(raw.rejects) == 3 and len(raw) == len(page)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("incident_id", 123, "incident_id: expected a JSON str, got int"),
        ("latitude", {"lat": 1}, "latitude: expected a JSON str, got dict"),
        ("incident_category", ["a", "b"], "incident_category: expected a JSON str, got list"),
        ("resolution", None, None),  # a null is an omitted value, not an error
        ("intersection", 'A St \\ "B": 1', None),  # looks like a key and a number, is text
        ("filed_online", "yes", "filed_online: expected a JSON bool, got str"),
        ("filed_online", "true", "filed_online: expected a JSON bool, got str"),
        ("filed_online", 1, "filed_online: expected a JSON bool, got int"),
    ],
)
@pytest.mark.parametrize("separators", [(",", ":"), (", ", " : ")])
def test_a_value_of_the_wrong_json_type_is_quarantined_with_its_reason(
    api_rows, field, value, reason, separators
):
    rows = _selected(api_rows)[:20]
    rows[7] = {**rows[7], field: value}
    result = normalise_json(json.dumps(rows, separators=separators).encode())
    assert len(result) == 20
    assert [r.reason for r in result.rejects] == ([reason] if reason else [])
    assert result.table.equals(normalise_page(rows).table)


def test_rows_that_are_not_objects_are_quarantined_and_a_body_that_is_no_array_refused(api_rows):
    rows = [*_selected(api_rows)[:3], 42, "row"]
    result = normalise_json(json.dumps(rows).encode())
    assert result.table.num_rows == 3
    assert [(r.raw_json, r.reason) for r in result.rejects] == [
        ("42", "row: expected a JSON object, got int"),
        ('"row"', "row: expected a JSON object, got str"),
    ]
    with pytest.raises(ValueError, match="expected a JSON array of rows, got dict"):
        normalise_json(b'{"error": true}')


def test_a_body_duckdb_cannot_read_falls_back_to_decoded_rows():
    assert len(normalise_json(b"[]")) == 0
    with pytest.raises(json.JSONDecodeError):
        normalise_json(b"not json")


def test_every_quarantine_rule_is_one_reason_a_reader_can_find(api_rows):
    """The rules table is the list of reasons: each fires on a real row broken its way. A rule
    added without a way to break a row for it here fails this test."""
    row = next(r for r in api_rows if "latitude" in r)
    required = [f.name for f in FIELDS if f.required]
    broken = {
        **{f"{name}: required, missing": _without(row, name) for name in required},
        "row_id: is not incident_id followed by incident_code": {**row, "row_id": "1"},
        "incident_date: is not the date of incident_datetime": {
            **row,
            "incident_date": "2001-01-01T00:00:00.000",
        },
        "latitude: 37.6..37.95 is San Francisco, got a point outside": {**row, "latitude": "40"},
        "longitude: -122.55..-122.3 is San Francisco, got a point outside": {
            **row,
            "longitude": "-120",
        },
        "latitude/longitude: one without the other": _without(row, "longitude"),
    }
    assert len(required) == 4  # row_id, incident_id, incident_datetime, incident_date
    assert set(broken) == {reason for _, reason in RULES}
    for reason, bad in broken.items():
        (reject,) = normalise_page([bad]).rejects
        assert reject.reason == reason
