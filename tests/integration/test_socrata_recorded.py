"""The Socrata client (sfpd.socrata) against what real Socrata servers answered, served as
recorded (tests/fixtures/socrata-recorded/SOURCE.md), and its guards against answers no
recording has, each scripted here: redirects to http or in a loop, pages out of the order the
server compares in, "still processing" for ever, a full page of rows without a row_id, a page
that is not JSON. The replay server answering in the same shape: tests/dev/test_replay.py."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace

import pytest

from sfpd.normalise import normalise_json, normalise_page
from sfpd.schema import FIELD_NAMES
from sfpd.socrata import Query, SocrataEndpoint, SocrataSource, SourceError
from sfpd_dev.replay import socrata_json
from tests.socrata_recorded import RECORDED, Answer, ScriptedServer, recorded, self_signed

ROWS, VIEW = "/resource/{}.json", "/api/views/{}.json"
SODA3 = "/api/v3/views/{}/query.json"


def client(server: ScriptedServer, dataset_id: str, **options) -> SocrataSource:
    page_size = options.pop("page_size", 1000)
    endpoint = SocrataEndpoint(
        host="127.0.0.1", port=server.port, scheme=server.scheme, dataset_id=dataset_id,
        **{"retries": 2, "backoff_factor": 0.01, **options},
    )  # fmt: skip
    return SocrataSource(endpoint, page_size=page_size)


@pytest.mark.parametrize(
    ("name", "dataset_id"),
    [
        ("views_metadata_sfgov_vw6y-z8j6", "vw6y-z8j6"),
        ("views_metadata_nyc_uczf-rk3c", "uczf-rk3c"),
        ("views_metadata_chicago_zidz-sdfj", "zidz-sdfj"),
    ],
)
def test_a_views_real_metadata_says_when_its_data_changed_and_its_column_types(name, dataset_id):
    view = json.loads((RECORDED / f"{name}.json").read_text())
    with ScriptedServer({VIEW.format(dataset_id): [recorded(name)]}) as server:
        with client(server, dataset_id) as source:
            metadata = source.metadata()
    changed = dt.datetime.fromtimestamp(view["rowsUpdatedAt"], dt.UTC).replace(tzinfo=None)
    assert metadata.rows_updated_at == changed
    assert metadata.column_types == {c["fieldName"]: c["dataTypeName"] for c in view["columns"]}
    assert len(metadata.column_types) >= 2


def test_the_datasf_views_number_column_is_compared_as_a_number():
    """vw6y-z8j6's ``service_request_id`` is a number in its real metadata: a key of that type
    is written as a SoQL number, so the server compares and orders it alike."""
    dataset, key = "vw6y-z8j6", "service_request_id"
    metadata = recorded("views_metadata_sfgov_vw6y-z8j6")
    with ScriptedServer({VIEW.format(dataset): [metadata]}) as server:
        with client(server, dataset) as source:
            assert source.metadata().column_types[key] == "number"


@pytest.mark.parametrize(
    "name", ["error_404_resource_dataset_missing_nyc", "error_404_resource_dataset_missing_2013"]
)
def test_a_missing_dataset_fails_the_read_at_once_with_the_servers_answer(name):
    with ScriptedServer({ROWS.format("songs"): [recorded(name)]}) as server:
        with client(server, "songs") as source, pytest.raises(SourceError) as caught:
            source.count("1 = 1")
        assert len(server.requests) == 1  # a 404 is not retried
    assert "Socrata answered HTTP 404" in str(caught.value)
    assert '"dataset.missing"' in str(caught.value) and "Not found" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "status"),
    [("error_404_views_not_found_nyc", None), ("error_404_views_not_found_seattle", 404)],
)
def test_a_missing_view_means_no_metadata_and_says_why(name, status, logs):
    answer = recorded(name)
    answer = replace(answer, status=status) if status else answer
    with ScriptedServer({VIEW.format("songs"): [answer]}) as server:
        with client(server, "songs") as source:
            assert source.metadata() is None
    (warning,) = logs.messages("sfpd.socrata", logging.WARNING)
    assert warning.startswith("No dataset metadata")
    assert "HTTP 404" in warning and '"not_found"' in warning


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("error_400_query_compiler_malformed_sfgov_2014", "Error, could not parse SoQL query"),
        ("error_400_docs_example_query_compiler_malformed", "Could not parse SoQL query"),
    ],
)
def test_a_malformed_query_fails_at_once_quoting_the_servers_message(name, message):
    answer = replace(recorded(name), status=400)  # neither source kept its status line
    with ScriptedServer({ROWS.format("yitu-d5am"): [answer]}) as server:
        with client(server, "yitu-d5am") as source, pytest.raises(SourceError) as caught:
            source.query(Query("title", "title=What's Up Doc?'"))
        assert len(server.requests) == 1
    assert "HTTP 400" in str(caught.value) and message in str(caught.value)
    assert "query.compiler.malformed" in str(caught.value)


def test_a_403_fails_at_once_quoting_the_servers_message():
    answer = replace(recorded("error_403_not_logged_in_sodapy"), status=403)
    with ScriptedServer({ROWS.format("wg3w-h783"): [answer]}) as server:
        with client(server, "wg3w-h783") as source, pytest.raises(SourceError) as caught:
            source.count("1 = 1")
        assert len(server.requests) == 1
    assert "HTTP 403" in str(caught.value) and "You must be logged in" in str(caught.value)


def test_a_500_is_retried_then_fails_quoting_the_servers_message():
    with ScriptedServer({ROWS.format("kaboom"): [recorded("error_500_internal_2013")]}) as server:
        with client(server, "kaboom", retries=2) as source, pytest.raises(SourceError) as caught:
            source.count("1 = 1")
        assert len(server.requests) == 3  # the first try and two retries
    assert "HTTP 500" in str(caught.value) and '"Internal error"' in str(caught.value)


def test_the_same_rows_recorded_through_either_api_read_the_same():
    """Chicago's zidz-sdfj, ten rows asked for through SODA 2.1 and through SODA3 (each in its
    own layout), then the empty page after them through each."""
    dataset = "zidz-sdfj"
    routes = {
        ROWS.format(dataset): [
            recorded("soda2_rows_page_chicago_zidz-sdfj"),
            recorded("soda2_empty_page_demo_4tka-6guv"),
        ],
        SODA3.format(dataset): [
            recorded("soda3_query_page_chicago_zidz-sdfj"),
            recorded("soda3_query_empty_page_chicago_zidz-sdfj"),
        ],
    }
    read = {}
    with ScriptedServer(routes) as server:
        for api in ("soda2", "soda3"):
            with client(server, dataset, api=api, app_token="token") as source:
                query = Query("*", limit=10)
                read[api] = (source.query(query), source.query(replace(query, offset=10)))
    rows, empty = read["soda2"]
    assert len(rows) == 10 and empty == []
    assert {"district_name", "designation_date"} <= set(rows[0])
    assert read["soda3"] == read["soda2"]


def test_a_page_laid_out_as_in_2013_reads_as_its_rows():
    """Pretty-printed, no newline at the end: any layout of a JSON array is read."""
    answer = recorded("soda2_rows_page_legacy_2013")
    with ScriptedServer({ROWS.format("earthquakes"): [answer]}) as server:
        with client(server, "earthquakes") as source:
            rows = source.query(Query("*", "magnitude > 4"))
    assert rows == json.loads(answer.body) and len(rows) == 1


def test_a_page_in_soda3s_layout_is_read_by_duckdb_like_one_in_soda2s(api_rows, monkeypatch):
    """SODA3 lays a page out as ``[\\n{...},\\n{...}\\n]\\n`` (the recording shows it byte for
    byte): our rows laid out so take DuckDB's path, not the row-by-row fallback."""
    chicago = (RECORDED / "soda3_query_page_chicago_zidz-sdfj.json").read_bytes()
    assert socrata_json(json.loads(chicago), soda3=True) == chicago
    rows = [{k: v for k, v in row.items() if k in FIELD_NAMES} for row in api_rows[:200]]
    decoded = normalise_page(rows)
    monkeypatch.setattr("sfpd.normalise.normalise_page", None)  # DuckDB's path or nothing
    assert normalise_json(socrata_json(rows, soda3=True)).table.equals(decoded.table)


def test_a_page_of_html_with_status_200_fails_the_read_naming_the_server():
    """A proxy's or a maintenance page's HTML, answered 200: never read as an empty window."""
    html = Answer(200, b"<!DOCTYPE html><html><body>Down for maintenance</body></html>",
                  {"Content-Type": "text/html"})  # fmt: skip
    with ScriptedServer({ROWS.format("wg3w-h783"): [html]}) as server:
        with client(server, "wg3w-h783") as source, pytest.raises(SourceError) as caught:
            source.query(Query("count(*) AS n"))
    message = str(caught.value)
    where = f"{server.url}/resource/wg3w-h783.json"
    assert f"Socrata answered {where} with something that is not rows" in message
    assert "Down for maintenance" in message


# -------------------------------------------------------------------------- the client's guards
METADATA = Answer(
    200,
    json.dumps(
        {
            "rowsUpdatedAt": 1765000000,
            "columns": [{"fieldName": "row_id", "dataTypeName": "number"}],
        }
    ).encode(),
)


def page(*row_ids: str) -> Answer:
    return Answer(200, socrata_json([{"row_id": key, "incident_id": key[:-5]} for key in row_ids]))


def test_a_redirect_from_https_to_http_is_refused(tmp_path, monkeypatch):
    tls, certificate = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))  # the client trusts the test's
    with ScriptedServer({}) as plain:
        moved = Answer(301, b"", {"Location": f"{plain.url}/resource/wg3w-h783.json"})
        with ScriptedServer({ROWS.format("wg3w-h783"): [moved]}, tls=tls) as secure:
            with client(secure, "wg3w-h783") as source, pytest.raises(SourceError) as caught:
                source.count("1 = 1")
            assert len(secure.requests) == 1
        assert plain.requests == []  # the query and its token never went out unencrypted
    assert f"refusing a redirect from {secure.url}/resource/wg3w-h783.json" in str(caught.value)
    assert "(not https)" in str(caught.value)


def test_redirects_in_a_loop_stop_after_five():
    path = ROWS.format("wg3w-h783")
    with ScriptedServer({}) as server:
        server.routes[path] = [Answer(302, b"", {"Location": f"{server.url}{path}?again=1"})]
        with client(server, "wg3w-h783") as source, pytest.raises(SourceError) as caught:
            source.count("1 = 1")
        assert len(server.requests) == 6  # the request and five redirects followed
    assert f"more than 5 redirects from {server.url}{path}" in str(caught.value)


def test_a_server_whose_key_order_disagrees_with_its_comparison_fails_the_read():
    """Keyset paging asks for the rows after the last key: a server that orders the keys unlike
    it compares them would make it skip rows. The second page ends before the first did."""
    script = [page("100006374", "200006374"), page("300006374", "150006374"), page()]
    routes = {VIEW.format("wg3w-h783"): [METADATA], ROWS.format("wg3w-h783"): script}
    with ScriptedServer(routes) as server, client(server, "wg3w-h783", page_size=2) as source:
        with pytest.raises(SourceError) as caught:
            list(source.pages("1 = 1"))
    assert "row_id order disagrees with its comparison" in str(caught.value)
    assert "a page after '200006374' ended at '150006374'" in str(caught.value)


def test_still_processing_after_every_retry_fails_the_read():
    processing = Answer(202, b'{"message": "Processing, try again"}')
    with ScriptedServer({ROWS.format("wg3w-h783"): [processing]}) as server:
        with client(server, "wg3w-h783", retries=3) as source, pytest.raises(SourceError) as e:
            source.count("1 = 1")
        assert len(server.requests) == 4
    assert "did not return rows" in str(e.value) and "after 3 retries" in str(e.value)


def test_a_full_page_of_rows_without_a_row_id_fails_the_read():
    """Rows without the paging key are read in one request after the keyed pages: a full one
    means there may be more than one page of them, which cannot be paged."""
    keyless = Answer(200, socrata_json([{"incident_id": str(n)} for n in range(3)]))
    script = [page("100006374"), keyless]  # a short keyed page, then the keyless rows
    routes = {VIEW.format("wg3w-h783"): [METADATA], ROWS.format("wg3w-h783"): script}
    with ScriptedServer(routes) as server, client(server, "wg3w-h783", page_size=3) as source:
        with pytest.raises(SourceError, match="3 or more rows without a row_id: not paged"):
            list(source.pages("1 = 1"))
        assert server.requests[-1].params["$where"] == "(1 = 1) AND row_id IS NULL"
