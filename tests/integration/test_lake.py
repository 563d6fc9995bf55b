"""The lake (sfpd.lake): a local folder and GCS (fake-gcs-server on 127.0.0.1), one folder per
window, a rewrite of a window replacing its files."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pyarrow.parquet as pq
import pytest

from sfpd.lake import GcsLake, LocalLake, open_lake
from sfpd.pipeline import extract_to_lake
from sfpd.window import Window
from tests.emulators.servers import storage_client

NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))


@pytest.fixture
def gcs(emulators):
    client = storage_client(emulators["gcs"])
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    client.create_bucket(bucket)
    return client, bucket


def test_gcs_lake_writes_one_folder_per_window_and_a_retry_replaces_it(source, gcs):
    client, bucket = gcs
    lake = GcsLake.from_uri(f"gs://{bucket}/sfpd", client)
    first = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    assert first.rows == 11887
    assert first.uris == [
        f"gs://{bucket}/sfpd/wg3w-h783/windows/2018-11-01_2019-01-01/part-0000{i}.parquet"
        for i in range(3)
    ]
    source.page_size = 20_000
    second = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    names = [b.name for b in client.list_blobs(bucket, prefix="sfpd/")]
    folder = "sfpd/wg3w-h783/windows/2018-11-01_2019-01-01/"
    assert names == [folder + "part-00000.parquet", folder + "rejects.parquet"]
    assert second.uris == [f"gs://{bucket}/{names[0]}"]
    data = client.bucket(bucket).blob(names[0]).download_as_bytes()
    assert pq.read_table(io.BytesIO(data)).num_rows == 11887


def test_a_rewritten_window_replaces_the_previous_files(source, lake):
    first = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    source.page_size = 20_000
    second = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    assert len(first.uris) == 3 and len(second.uris) == 1
    folder = lake.window_dir("wg3w-h783", NOV_DEC_2018.label)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no leftovers
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "rejects.parquet"]


def test_lake_uri_must_be_absolute_file_uri():
    with pytest.raises(ValueError, match="file:///absolute/path"):
        LocalLake.from_uri("file://relative/path")
    with pytest.raises(ValueError, match="unsupported lake URI"):
        open_lake("s3://bucket/prefix")
