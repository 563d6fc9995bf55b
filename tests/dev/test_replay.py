"""The replay server (dev/sfpd_dev/replay.py) answers SODA 2.x queries the way Socrata does, in
the shape real Socrata servers answer (tests/fixtures/socrata-recorded: its pages byte for
byte, its errors and metadata key for key)."""

import json

import pytest
import requests

from sfpd_dev.replay import (
    COLUMN_TYPES,
    DEFAULT_LIMIT,
    Faults,
    ReplayServer,
    SoQLError,
    load_corpus,
    rows_from_csv_export,
    rows_in,
    run_query,
    socrata_json,
)
from tests.conftest import FIXTURES
from tests.socrata_recorded import RECORDED


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(FIXTURES)


def test_corpus_is_every_bundled_row_once(corpus):
    files = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
    files += [rows_from_csv_export(path) for path in sorted(FIXTURES.glob("*.csv"))]
    assert len(files) == 3 and len(corpus) == sum(map(len, files))  # no row in two files
    assert len({row["row_id"] for row in corpus}) == len(corpus)
    assert [row[":id"] for row in corpus] == sorted(row[":id"] for row in corpus)


def test_default_limit_is_socratas(corpus):
    assert len(run_query(corpus, {})) == DEFAULT_LIMIT


def test_where_and_or_parentheses_and_count_alias(corpus):
    where = (
        "(police_district = 'Out of SF' OR police_district = 'Park') "
        "AND incident_datetime >= '2018-12-01T00:00:00' AND incident_datetime < '2019-01-01'"
    )
    rows = run_query(corpus, {"$where": where, "$limit": "50000"})
    expected = [
        row for row in corpus
        if row.get("police_district") in ("Out of SF", "Park")
        and "2018-12-01T00:00:00" <= row["incident_datetime"] < "2019-01-01"
    ]  # fmt: skip
    assert [row["row_id"] for row in rows] == [row["row_id"] for row in expected]
    assert {row["police_district"] for row in rows} == {"Out of SF", "Park"}
    n = str(len(expected))
    assert run_query(corpus, {"$where": where, "$select": "count(*) AS n"}) == [{"n": n}]
    assert run_query(corpus, {"$where": where, "$select": "count(*)"}) == [{"count": n}]


def test_order_by_column_descending_with_offset(corpus):
    params = {"$select": "row_id,incident_datetime", "$order": "incident_datetime DESC"}
    first = run_query(corpus, {**params, "$limit": "3"})
    assert [sorted(row) for row in first] == [["incident_datetime", "row_id"]] * 3
    assert first[0]["incident_datetime"] == max(row["incident_datetime"] for row in corpus)
    assert run_query(corpus, {**params, "$limit": "2", "$offset": "1"}) == first[1:]


@pytest.mark.parametrize(
    "params",
    [
        {"$select": "nope"},
        {"$where": "nope = 1"},
        {"$where": "incident_id = "},
        {"$where": "(incident_id = 1"},
        {"$order": "nope"},
        {"$limit": "ten"},
        {"$offset": "-1"},
    ],
)
def test_bad_queries_are_refused(corpus, params):
    with pytest.raises(SoQLError):
        run_query(corpus, params)


def test_system_fields_come_only_when_selected_by_name_or_wildcard(corpus):
    (plain,) = run_query(corpus, {"$limit": "1"})
    assert not [key for key in plain if key.startswith(":")]
    (named,) = run_query(corpus, {"$select": ":id, :updated_at, row_id", "$limit": "1"})
    assert sorted(named) == [":id", ":updated_at", "row_id"]
    (everything,) = run_query(corpus, {"$select": ":*, *", "$limit": "1"})
    assert {":id", ":created_at", ":updated_at", "row_id", "incident_datetime"} <= set(everything)
    assert everything[":updated_at"].endswith("Z")  # a fixed timestamp, UTC


def test_aggregates_and_group_by_expression_or_alias(corpus):
    where = "incident_datetime >= '2018-12-01T00:00:00' AND incident_datetime < '2018-12-03'"
    by_expression = run_query(
        corpus,
        {
            "$select": "date_trunc_ymd(incident_datetime) AS day, count(*) AS n",
            "$where": where,
            "$group": "date_trunc_ymd(incident_datetime)",
            "$order": "day",
        },
    )
    by_alias = run_query(
        corpus,
        {"$select": "date_trunc_ymd(incident_datetime) AS day, count(*) AS n", "$where": where,
         "$group": "day", "$order": "day DESC"},
    )  # fmt: skip
    days = {}
    for row in corpus:
        if "2018-12-01" <= row["incident_datetime"][:10] < "2018-12-03":
            day = row["incident_datetime"][:10] + "T00:00:00.000"
            days[day] = days.get(day, 0) + 1
    assert by_expression == [{"day": d, "n": str(n)} for d, n in sorted(days.items())]
    assert by_alias == by_expression[::-1]
    (latest,) = run_query(corpus, {"$select": "max(:updated_at), min(incident_datetime)"})
    assert latest == {
        "max_updated_at": max(row[":updated_at"] for row in corpus),
        "min_incident_datetime": min(row["incident_datetime"] for row in corpus),
    }
    with pytest.raises(SoQLError, match="must be in \\$group"):
        run_query(corpus, {"$select": "police_district, count(*)"})


def test_upsert_stamps_a_later_updated_at_and_delete_removes(corpus):
    with ReplayServer(FIXTURES) as server:
        before = max(row[":updated_at"] for row in server.corpus)
        row = server.corpus[0]
        stamp = server.upsert([{**row, "resolution": "Unfounded (reviewed)"}])
        assert stamp > before
        (changed,) = run_query(
            server.corpus,
            {"$select": ":*, resolution", "$where": f":updated_at > '{before}'"},
        )
        assert changed[":id"] == row[":id"] and changed[":updated_at"] == stamp
        assert changed[":created_at"] == row[":created_at"]  # created once
        assert changed["resolution"] == "Unfounded (reviewed)"
        server.delete([row["row_id"]])
        assert row["row_id"] not in {r["row_id"] for r in server.corpus}


@pytest.mark.parametrize("row_id_type", ["number", "text"])
def test_a_keyset_page_is_the_rows_after_the_key_in_the_columns_order(corpus, row_id_type):
    """The server answers keyset pages from its row_id order (like an index); the answer is
    what filtering every row gives."""
    types = {**COLUMN_TYPES, "row_id": row_id_type}
    base = "incident_datetime >= '2018-12-10T00:00:00' AND incident_datetime < '2018-12-20'"
    order = (lambda r: int(r["row_id"])) if row_id_type == "number" else (lambda r: r["row_id"])
    matching = sorted(rows_in(corpus, base), key=order)
    key = matching[len(matching) // 2]["row_id"]
    literal = key if row_id_type == "number" else f"'{key}'"
    params = {"$select": "row_id", "$order": "row_id", "$limit": "50000"}
    cache: dict = {}
    page = run_query(corpus, {**params, "$where": f"({base}) AND row_id > {literal}"}, cache, types)
    after = [r["row_id"] for r in matching if order(r) > order({"row_id": key})]
    assert [r["row_id"] for r in page] == after and 0 < len(after) < len(matching)
    first = run_query(
        corpus, {**params, "$where": f"({base}) AND row_id IS NOT NULL"}, cache, types
    )
    assert [r["row_id"] for r in first] == [r["row_id"] for r in matching]
    wrong = key if row_id_type == "text" else f"'{key}'"
    with pytest.raises(SoQLError, match="Type mismatch"):
        run_query(corpus, {**params, "$where": f"({base}) AND row_id > {wrong}"}, cache, types)


# ------------------------------------------------------ the shape of real Socrata answers
def recorded_json(name: str) -> object:
    return json.loads((RECORDED / f"{name}.json").read_bytes())


def shape(value: object) -> object:
    """Keys and JSON types, recursively (a list by its first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize(
    ("name", "soda3"),
    [
        ("soda2_rows_page_chicago_zidz-sdfj", False),
        ("soda2_empty_page_demo_4tka-6guv", False),
        ("soda3_query_page_chicago_zidz-sdfj", True),
        ("soda3_query_empty_page_chicago_zidz-sdfj", True),
    ],
)
def test_pages_are_laid_out_byte_for_byte_as_socrata_lays_them_out(name, soda3):
    body = (RECORDED / f"{name}.json").read_bytes()
    assert socrata_json(json.loads(body), soda3=soda3) == body


def test_its_answers_have_the_shape_of_socratas(replay_server):
    """Against the replay server over HTTP: pages of either API, the errors of a missing
    dataset, a missing view, a malformed query and a server error, and the metadata."""
    url = replay_server.url
    page = requests.get(f"{url}/resource/wg3w-h783.json", params={"$limit": 2}, timeout=30)
    assert page.content == socrata_json(page.json())  # SODA 2.x layout
    soda3 = requests.post(
        f"{url}/api/v3/views/wg3w-h783/query.json",
        json={"query": "SELECT row_id ORDER BY row_id", "page": {"pageNumber": 1, "pageSize": 2}},
        headers={"X-App-Token": "token"}, timeout=30,
    )  # fmt: skip
    assert soda3.content == socrata_json(soda3.json(), soda3=True)
    assert soda3.content.startswith(b"[\n{") and soda3.content.endswith(b"}\n]\n")

    missing = requests.get(f"{url}/resource/songs.json", timeout=30)
    assert (missing.status_code, missing.content) == (
        404, (RECORDED / "error_404_resource_dataset_missing_nyc.json").read_bytes()
    )  # fmt: skip
    view = requests.get(f"{url}/api/views/songs.json", timeout=30)
    assert (view.status_code, view.content) == (
        404, (RECORDED / "error_404_views_not_found_nyc.json").read_bytes()
    )  # fmt: skip
    malformed = requests.get(f"{url}/resource/wg3w-h783.json", params={"$where": "("}, timeout=30)
    assert malformed.status_code == 400
    assert shape(malformed.json()) == shape(
        recorded_json("error_400_docs_example_query_compiler_malformed")
    )
    assert malformed.json()["code"] == "query.compiler.malformed"

    metadata = requests.get(f"{url}/api/views/wg3w-h783.json", timeout=30).json()
    real = shape(recorded_json("views_metadata_sfgov_vw6y-z8j6"))
    ours = shape(metadata)
    assert ours.keys() <= real.keys()
    assert {k: ours[k] for k in ("id", "rowsUpdatedAt")} == {
        k: real[k] for k in ("id", "rowsUpdatedAt")
    }
    assert ours["columns"][0].items() <= real["columns"][0].items()


def test_a_server_error_has_the_shape_of_socratas():
    with ReplayServer(FIXTURES) as server:
        server.faults = Faults(rate=1.0, kinds=("500",), max_in_a_row=10)
        failed = requests.get(f"{server.url}/resource/wg3w-h783.json", timeout=30)
    assert failed.status_code == 500
    assert failed.content == (RECORDED / "error_500_internal_2013.json").read_bytes()
