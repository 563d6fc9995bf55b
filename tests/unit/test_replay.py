"""The replay server answers SODA 2.x queries the way Socrata does."""

import pytest

from sfpd.replay import DEFAULT_LIMIT, SoQLError, load_corpus, run_query
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(FIXTURES)


def test_corpus_is_every_bundled_row_once(corpus):
    assert len(corpus) == 1000 + 1000 + 11884
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
    assert len(rows) == 283 + 598
    assert {row["police_district"] for row in rows} == {"Out of SF", "Park"}
    assert run_query(corpus, {"$where": where, "$select": "count(*) AS n"}) == [{"n": "881"}]
    assert run_query(corpus, {"$where": where, "$select": "count(*)"}) == [{"count": "881"}]


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
