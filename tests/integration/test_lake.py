"""The lake (sfpd.lake): a local folder and GCS (fake-gcs-server on 127.0.0.1), one folder per
window, a rewrite of a window replacing its files."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sfpd.extract import extract_to_lake
from sfpd.gcs_lake import GcsLake
from sfpd.lake import LocalLake, open_lake, prune_lake
from sfpd.window import Window
from tests.conftest import rows_of
from tests.emulators.servers import storage_client

NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
IN_WINDOW = len(rows_of(NOV_DEC_2018))  # the bundled rows of November-December 2018


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
    assert first.rows == IN_WINDOW
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
    assert pq.read_table(io.BytesIO(data)).num_rows == IN_WINDOW


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


def test_forty_daily_runs_leave_nothing_older_than_the_retention(source, lake, tmp_path):
    """Forty daily runs a day apart, each a load folder and a report (their write times set
    back a day each): a prune keeps the last 30 days' and always the newest report."""
    now = dt.datetime.now(dt.UTC)
    window = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")  # a real folder to copy
    folder = lake.window_dir("wg3w-h783", window.scope.label)
    for age in range(40):
        copy = folder.with_name(f"2018-11-{age:02d}_copy")
        shutil.copytree(folder, copy)
        report = Path(lake.write_report("wg3w-h783", f"report-{age:02d}.html", "<html/>")[7:])
        for path in (copy, *copy.iterdir(), report):
            stamp = (now - dt.timedelta(days=age, hours=1)).timestamp()
            os.utime(path, (stamp, stamp))
    removed = prune_lake(lake, "wg3w-h783", now, dt.timedelta(days=30))
    left = lake.entries("wg3w-h783")
    assert len(removed) == 2 * 10  # days 30 to 39: a folder and a report each
    assert all(now - entry.written_at <= dt.timedelta(days=30) for entry in left)
    assert folder.exists()  # written moments ago (the run's own): kept


def test_the_newest_report_is_kept_however_old_and_a_running_loads_folder_too(source, lake):
    now = dt.datetime.now(dt.UTC)
    lake.write_report("wg3w-h783", "only.html", "<html/>")
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")  # run A's, just written
    # run B prunes two days later than now with a two-day retention: A's folder is not yet old
    assert prune_lake(lake, "wg3w-h783", now + dt.timedelta(days=1), dt.timedelta(days=2)) == []
    later = prune_lake(lake, "wg3w-h783", now + dt.timedelta(days=3), dt.timedelta(days=2))
    assert [entry.kind for entry in later] == ["windows"]  # the report: the newest, kept
    assert not Path(extract.uris[0][7:]).exists()


def test_a_gcs_lake_is_pruned_the_same_way(source, gcs):
    client, bucket = gcs
    lake = GcsLake.from_uri(f"gs://{bucket}/sfpd", client)
    extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    for name in ("older.html", "newer.html"):
        lake.write_report("wg3w-h783", name, "<html/>")
    docs = lake.write_docs("wg3w-h783", {"index.html": b"<html/>", "manifest.json": b"{}"})
    assert docs == f"gs://{bucket}/sfpd/wg3w-h783/docs"
    kinds = sorted(entry.kind for entry in lake.entries("wg3w-h783"))
    assert kinds == ["reports", "reports", "windows"]
    # forty days on (fake-gcs-server stamps objects with the time of their upload)
    removed = prune_lake(lake, "wg3w-h783", dt.datetime.now(dt.UTC) + dt.timedelta(days=40),
                         dt.timedelta(days=30))  # fmt: skip
    assert sorted(entry.kind for entry in removed) == ["reports", "windows"]
    names = sorted(blob.name for blob in client.list_blobs(bucket))
    # the newest report and the dbt docs (rewritten by every build, never pruned)
    assert names[:2] == ["sfpd/wg3w-h783/docs/index.html", "sfpd/wg3w-h783/docs/manifest.json"]
    assert len(names) == 3 and names[2].startswith("sfpd/wg3w-h783/reports/")


def test_local_docs_replace_the_last_ones_and_are_never_pruned(lake):
    first = lake.write_docs("wg3w-h783", {"index.html": b"one", "catalog.json": b"{}"})
    lake.write_docs("wg3w-h783", {"index.html": b"two"})
    folder = Path(first.removeprefix("file://"))
    assert sorted(p.name for p in folder.iterdir()) == ["catalog.json", "index.html"]
    assert (folder / "index.html").read_bytes() == b"two"
    assert lake.entries("wg3w-h783") == []
