"""Extract to the lake (sfpd.extract.extract_to_lake): real rows from the replay server, page by
page into typed Parquet, the same files whichever API they came through."""

import datetime as dt

import pyarrow.parquet as pq

from sfpd.extract import extract_to_lake
from sfpd.lake import open_lake
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.window import Window
from tests.conftest import rows_of

NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
IN_WINDOW = len(rows_of(NOV_DEC_2018))  # the bundled rows of November-December 2018


def test_extract_streams_pages_into_parquet_parts(source, lake):
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    assert extract.rows == IN_WINDOW
    assert len(extract.uris) == 3  # pages of 5,000
    assert all("/windows/2018-11-01_2019-01-01/" in uri for uri in extract.uris)
    assert (
        sum(pq.read_metadata(u.removeprefix("file://")).num_rows for u in extract.uris) == IN_WINDOW
    )


def test_soda3_writes_the_lake_files_soda2_writes_byte_for_byte(replay_server, tmp_path):
    files = {}
    for api in ("soda2", "soda3"):
        endpoint = SocrataEndpoint(
            host="127.0.0.1", port=replay_server.port, scheme="http", api=api, app_token="t"
        )
        lake = open_lake((tmp_path / api).as_uri())
        with SocrataSource(endpoint, page_size=5000) as source:
            extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
        folder = lake.window_dir("wg3w-h783", NOV_DEC_2018.label)
        files[api] = {path.name: path.read_bytes() for path in folder.iterdir()}
        assert extract.rows == IN_WINDOW
    assert len(files["soda2"]) == 4  # three pages and the rejects file
    assert files["soda3"] == files["soda2"]
