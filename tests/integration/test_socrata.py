"""The Socrata client against a real HTTP server on 127.0.0.1 (the replay server)."""

import datetime as dt
import math
import time
from dataclasses import replace

import pytest

from sfpd.config import ConfigError
from sfpd.schema import FIELD_NAMES
from sfpd.socrata import (
    Query,
    SocrataEndpoint,
    SocrataSource,
    SourceError,
    SourceUnreachable,
    redact,
)
from sfpd.window import Window
from sfpd_dev.ports import refusing_port
from sfpd_dev.replay import Faults, ReplayServer, rows_in

DEC_2018 = Window.from_dict({"start": "2018-12-01", "end": "2019-01-01"})


def source_for(server, page_size=1000):
    endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
    return SocrataSource(endpoint, page_size=page_size)


def test_count_is_the_servers_count_for_the_where(replay_server):
    expected = len(rows_in(replay_server.corpus, DEC_2018.soql_where()))
    assert expected == 11884  # every incident of the December 2018 export
    with source_for(replay_server) as source:
        assert source.count(DEC_2018.soql_where()) == expected


def test_pages_cover_the_window_exactly_once_in_row_id_order(replay_server):
    where = DEC_2018.soql_where()
    replay_server.requests.clear()
    with source_for(replay_server, page_size=2500) as source:
        pages = list(source.pages(where))
    rows = [row for page in pages for row in page]
    assert len(rows) == 11884
    assert len({row["row_id"] for row in rows}) == 11884
    assert {row["row_id"] for row in rows} == {
        row["row_id"] for row in rows_in(replay_server.corpus, where)
    }
    assert [len(page) for page in pages] == [2500] * 4 + [1884]
    # Keyset paging: each page asks for the rows after the last row_id of the one before (a
    # number, as the metadata types it, so the server compares and orders alike), never an
    # offset. Nothing is asked for after the short last page but the rows without a row_id.
    requests = replay_server.requests
    assert len(requests) == math.ceil(11884 / 2500) + 1
    lasts = [page[-1]["row_id"] for page in pages]
    bounds = ["row_id IS NOT NULL", *(f"row_id > {last}" for last in lasts)]
    for params, bound in zip(requests[:-1], bounds[:-1], strict=True):
        assert params["$where"] == f"({where}) AND {bound}"
        assert params["$order"] == "row_id"
        assert params["$select"] == ",".join(FIELD_NAMES)
        assert params["$limit"] == "2500"
        assert "$offset" not in params
    assert requests[-1]["$where"] == f"({where}) AND row_id IS NULL"


def test_a_text_row_id_is_compared_and_ordered_as_text(api_rows):
    # row_ids of 11 and 12 digits: "100000106374" < "85424006374" as text, > as numbers
    long_ids = [
        {**row, "incident_id": f"1{row['incident_id']}", "row_id": f"1{row['row_id']}"}
        for row in api_rows[:300]
    ]
    for row_id_type in ("text", "number"):
        with ReplayServer(None, column_types={"row_id": row_id_type}) as server:
            server.replace_corpus([*api_rows, *long_ids])
            with source_for(server, page_size=100) as source:
                rows = [row for page in source.pages("incident_id IS NOT NULL") for row in page]
            keys = [row["row_id"] for row in rows]
            assert sorted(keys) == sorted(r["row_id"] for r in server.corpus)
            assert keys == sorted(keys, key=int if row_id_type == "number" else str)
            quoted = "row_id > '" in server.requests[1]["$where"]
            assert quoted == (row_id_type == "text")


def test_a_literal_of_the_wrong_type_is_refused_by_the_server(replay_server):
    with source_for(replay_server) as source, pytest.raises(SourceError, match="Type mismatch"):
        source.count("row_id > '85424006374'")


def test_a_reload_mid_extract_neither_skips_nor_repeats_rows(server):
    """The publisher replaces the dataset between two pages: every row gets a new :id (so the
    :id order is shuffled) and :updated_at. Paging by offset in :id order, as this client once
    did, loses and repeats rows; keyset paging on row_id reads each row once."""
    where = DEC_2018.soql_where()
    expected = {row["row_id"] for row in rows_in(server.corpus, where)}
    by_id = Query(",".join(FIELD_NAMES), where, order=":id", limit=1000)
    server.faults.reload_after_pages = 2
    with source_for(server) as source:
        seen = [
            r["row_id"] for k in range(12) for r in source.query(replace(by_id, offset=k * 1000))
        ]
    assert server.faults.injected["reload"] == 1
    assert len(seen) == len(expected) and len(set(seen)) < len(expected)  # repeats and losses

    server.faults = Faults(reload_after_pages=2)
    with source_for(server, page_size=1000) as source:
        rows = [row["row_id"] for page in source.pages(where) for row in page]
    assert server.faults.injected["reload"] == 1
    assert len(rows) == len(set(rows)) == len(expected)
    assert set(rows) == expected


@pytest.mark.parametrize("api", ["soda2", "soda3"])
def test_both_apis_read_the_same_rows_and_figures(replay_server, api):
    where = DEC_2018.soql_where()
    endpoint = SocrataEndpoint(
        host="127.0.0.1", port=replay_server.port, scheme="http", api=api, app_token="token"
    )
    with SocrataSource(endpoint, page_size=5000) as source:
        rows = [row for page in source.pages(where) for row in page]
        counts = (source.count(where), source.updated_through(), source.daily_counts())
    with source_for(replay_server, page_size=5000) as soda2:
        assert rows == [row for page in soda2.pages(where) for row in page]
        assert counts == (soda2.count(where), soda2.updated_through(), soda2.daily_counts())


def test_soda3_without_an_app_token_is_refused_before_any_request(replay_server):
    replay_server.requests.clear()
    with pytest.raises(ConfigError, match=r"SODA3 needs an app token.*connection's password"):
        SocrataEndpoint.from_connection_fields(
            "127.0.0.1", replay_server.port, "http", None, extra={"api": "soda3"}
        )
    assert replay_server.requests == []
    with pytest.raises(ConfigError, match="api must be one of"):
        SocrataEndpoint(api="soda4")


def test_soda3_answers_without_a_token_and_error_objects_fail_the_read(server):
    endpoint = SocrataEndpoint(
        host="127.0.0.1", port=server.port, scheme="http", api="soda3", app_token="token"
    )
    with SocrataSource(endpoint) as source:
        source.session.headers.pop("X-App-Token")
        with pytest.raises(SourceError, match=r"HTTP 403 .*requires an app token"):
            source.count(DEC_2018.soql_where())
    server.faults.error_object_next = True  # SODA3 can answer an error with HTTP 200
    with SocrataSource(endpoint) as source:
        with pytest.raises(SourceError, match="not rows: Query timed out"):
            list(source.pages(DEC_2018.soql_where()))
    assert server.faults.injected["error object"] == 1


@pytest.mark.parametrize("api", ["soda2", "soda3"])
def test_a_redirect_to_another_host_is_followed_and_logged_once(replay_server, logs, api):
    with ReplayServer(None, redirect_to=replay_server.url) as old_host:
        endpoint = SocrataEndpoint(
            host="127.0.0.1", port=old_host.port, scheme="http", api=api, app_token="token"
        )
        where = DEC_2018.soql_where()
        with SocrataSource(endpoint, page_size=5000) as source:
            rows = [row for page in source.pages(where) for row in page]
            assert source.count(where) == len(rows) == 11884
            assert source.base_url == replay_server.url
        assert old_host.redirected == 1  # later requests go to the new host directly
    moved = [m for m in logs.messages("sfpd.socrata") if "redirects to" in m]
    assert moved == [
        f"The Socrata API at {old_host.url} redirects to {replay_server.url}: reading from there "
        "(the app token is still sent). Update the connection's host to 127.0.0.1 to skip the "
        "redirect."
    ]


def test_the_metadata_says_when_the_data_changed_and_the_column_types(server):
    with source_for(server) as source:
        metadata = source.metadata()
    latest = max(row[":updated_at"] for row in server.corpus)
    assert metadata.rows_updated_at == dt.datetime.fromisoformat(latest[:19])
    assert metadata.column_types["row_id"] == "number"
    stamp = server.upsert(server.corpus[:1])
    with source_for(server) as source:
        assert source.metadata().rows_updated_at == dt.datetime.fromisoformat(stamp[:19])
    # a server without the metadata endpoint (any SODA 2.x server): None, read as "changed"
    other = SocrataEndpoint(
        host="127.0.0.1", port=server.port, scheme="http", dataset_id="abcd-1234"
    )
    with SocrataSource(other) as source:
        assert source.metadata() is None


def test_selected_columns_only_and_nulls_omitted(replay_server):
    with source_for(replay_server) as source:
        rows = next(source.pages(DEC_2018.soql_where()))
    keys = set().union(*rows)
    assert keys <= set(FIELD_NAMES)
    assert "point" not in keys and not any(k.startswith(":") for k in keys)
    assert any("latitude" not in row for row in rows)  # nulls are left out, as Socrata does


def test_a_page_size_that_divides_the_window_ends_on_an_empty_page(replay_server):
    window = Window.from_dict({"start": "2018-12-01", "end": "2018-12-02"})
    where = window.soql_where()
    n = len(rows_in(replay_server.corpus, where))
    divisor = next(k for k in range(2, n) if n % k == 0)
    with source_for(replay_server, page_size=n // divisor) as source:
        pages = list(source.pages(where))
    assert len(pages) == divisor
    assert sum(map(len, pages)) == n


def test_server_errors_carry_the_servers_message(replay_server):
    with source_for(replay_server) as source:
        with pytest.raises(SourceError, match=r"(?s)HTTP 400 .*No such column: nope"):
            list(source.pages("nope > 1"))


def test_unreachable_server_fails_fast_and_names_the_offline_option():
    with refusing_port() as port:
        began = time.monotonic()
        endpoint = SocrataEndpoint(host="127.0.0.1", port=port, scheme="http")
        with SocrataSource(endpoint) as source, pytest.raises(SourceUnreachable) as caught:
            source.count(DEC_2018.soql_where())
        assert time.monotonic() - began < 60
    assert "SFPD_SOURCE=replay" in str(caught.value)
    assert f"http://127.0.0.1:{port}/resource/wg3w-h783.json" in str(caught.value)


def test_the_sources_clock_and_its_rows_per_day(replay_server):
    endpoint = SocrataEndpoint(host="127.0.0.1", port=replay_server.port, scheme="http")
    with SocrataSource(endpoint) as source:
        latest = source.updated_through()
        counts = source.daily_counts()
    assert latest == max(
        dt.datetime.fromisoformat(row[":updated_at"].removesuffix("Z"))
        for row in replay_server.corpus
    )
    assert sum(counts.values()) == len(replay_server.corpus)
    december_first = [
        r for r in replay_server.corpus if r["incident_datetime"][:10] == "2018-12-01"
    ]
    assert counts[dt.date(2018, 12, 1)] == len(december_first) > 0


def test_exhausted_retries_fail_with_the_last_status_and_url(server):
    server.faults = Faults(rate=1.0, kinds=("503",), max_in_a_row=100)
    endpoint = SocrataEndpoint(
        host="127.0.0.1", port=server.port, scheme="http", app_token="secret-token",
        backoff_factor=0.01, retries=3,
    )  # fmt: skip
    with SocrataSource(endpoint) as source, pytest.raises(SourceError) as caught:
        list(source.pages(DEC_2018.soql_where()))
    message = str(caught.value)
    assert "HTTP 503" in message and f"127.0.0.1:{server.port}/resource/wg3w-h783.json" in message
    assert "secret-token" not in message
    assert server.faults.injected["503"] == 4  # the first try and three retries
    assert (
        redact("https://x/r.json?$$app_token=abc&$limit=1")
        == "https://x/r.json?$$app_token=***&$limit=1"
    )
