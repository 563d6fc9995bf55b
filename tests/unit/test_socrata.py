"""The Socrata client against a real HTTP server on 127.0.0.1 (the replay server)."""

import datetime as dt
import math
import socket
import time

import pytest

from sfpd.replay import rows_in
from sfpd.schema import FIELD_NAMES
from sfpd.socrata import SocrataEndpoint, SocrataSource, SourceError, SourceUnreachable
from sfpd.window import Window

DEC_2018 = Window.from_dict({"start": "2018-12-01", "end": "2019-01-01"})


def source_for(server, page_size=1000):
    endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
    return SocrataSource(endpoint, page_size=page_size)


def test_count_is_the_servers_count_for_the_where(replay_server):
    expected = len(rows_in(replay_server.corpus, DEC_2018.soql_where()))
    assert expected == 11884  # every incident of the December 2018 export
    with source_for(replay_server) as source:
        assert source.count(DEC_2018.soql_where()) == expected


def test_pages_cover_the_window_exactly_once_in_id_order(replay_server):
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
    # every request asked for an explicit column list, an order and the window; the page
    # after the short last one was fetched ahead (while that one was parsed) and dropped
    assert len(replay_server.requests) == math.ceil(11884 / 2500) + 1
    for offset, params in zip(range(0, 12500 + 1, 2500), replay_server.requests, strict=True):
        assert params["$order"] == ":id"
        assert params["$where"] == where
        assert params["$select"] == ",".join(FIELD_NAMES)
        assert params["$limit"] == "2500"
        assert params["$offset"] == str(offset)


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    began = time.monotonic()
    endpoint = SocrataEndpoint(host="127.0.0.1", port=port, scheme="http")
    with SocrataSource(endpoint) as source, pytest.raises(SourceUnreachable) as caught:
        source.count(DEC_2018.soql_where())
    assert time.monotonic() - began < 60
    assert "SFPD_SOURCE=replay" in str(caught.value)
    assert f"http://127.0.0.1:{port}/resource/wg3w-h783.json" in str(caught.value)


def test_page_size_is_bounded():
    with pytest.raises(ValueError, match="page_size"):
        SocrataSource(SocrataEndpoint(), page_size=50_001)
    with pytest.raises(ValueError, match="scheme"):
        SocrataEndpoint(scheme="ftp")


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
