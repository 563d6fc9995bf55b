"""The lake: one folder of typed Parquet files per extraction window.

Layout: ``<lake>/<dataset_id>/windows/<start>_<end>/part-00000.parquet, ...`` (not Hive-style
``key=value`` folders: windows overlap, they are not partitions). A retry of a window replaces
the previous attempt's files, and the loader is handed the exact list of files written, never a
wildcard, so nothing is read twice.

- local folder (``file:///abs/path``): the window is written under a temporary name and swapped
  in whole, so a crashed write never leaves a partial window behind;
- GCS (``gs://bucket/prefix``, :mod:`sfpd.gcs_lake`): the window's old objects are deleted, then
  each part uploaded.

The lake keeps each load's folder and each report for a retention (:func:`prune_lake`, run by
the daily DAG): the warehouse's audit and quarantine tables keep the history.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from sfpd.schema import ARROW_SCHEMA

log = logging.getLogger(__name__)
# A dataset's folders: each load's files, the reports, the dbt docs
WINDOWS, REPORTS, DOCS = "windows", "reports", "docs"


def folder_uri(lake_uri: str, dataset_id: str, folder: str) -> str:
    """The URI of one of a dataset's folders in the lake: ``<lake>/<dataset>/<folder>``."""
    return f"{lake_uri.rstrip('/')}/{dataset_id}/{folder}"


@dataclass(frozen=True)
class LakeWrite:
    uris: list[str]
    rows: int


@dataclass(frozen=True)
class LakeEntry:
    """A load's folder (``windows``) or a report (``reports``), and when it was last written."""

    kind: str
    name: str
    written_at: dt.datetime  # UTC, aware


class Lake(Protocol):
    def write_window(
        self, dataset_id: str, label: str, tables: Iterable[pa.Table]
    ) -> LakeWrite: ...

    def write_file(self, dataset_id: str, label: str, name: str, table: pa.Table) -> str:
        """Write one more Parquet file (e.g. the rejects) into a written window; its URI."""

    def write_report(self, dataset_id: str, name: str, html: str) -> str:
        """Write an HTML report under ``<dataset>/reports/``, replacing one of that name."""

    def write_docs(self, dataset_id: str, files: dict[str, bytes]) -> str:
        """Write the dbt docs (file name -> content) under ``<dataset>/docs/``, replacing the
        last ones (never pruned); the folder's URI."""

    def entries(self, dataset_id: str) -> list[LakeEntry]:
        """The load folders and reports of a dataset."""

    def remove(self, dataset_id: str, entry: LakeEntry) -> None:
        """Delete a load folder (every file in it) or a report."""


def prune_lake(
    lake: Lake, dataset_id: str, now: dt.datetime, retention: dt.timedelta
) -> list[LakeEntry]:
    """Delete the load folders and reports last written more than ``retention`` before ``now``,
    but the newest report; the entries deleted. A running task's folder was written moments
    ago (retention is at least two days: sfpd.config), and a retried extract rewrites it."""
    entries = lake.entries(dataset_id)
    reports = sorted((e for e in entries if e.kind == REPORTS), key=lambda e: e.written_at)
    newest = reports[-1] if reports else None
    old = [e for e in entries if now - e.written_at > retention and e != newest]
    for entry in old:
        lake.remove(dataset_id, entry)
    if old:
        log.info("Removed %d lake entries written before %s", len(old), now - retention)
    return old


def with_empty_part(tables: Iterable[pa.Table]) -> Iterable[pa.Table]:
    """The tables, or one empty table if there are none: an empty window still gets a file."""
    empty = True
    for table in tables:
        empty = False
        yield table
    if empty:
        yield ARROW_SCHEMA.empty_table()


class LocalLake:
    """A lake in a local folder (``file:///abs/path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_uri(cls, uri: str) -> LocalLake:
        return cls(file_uri_to_path(uri))

    def window_dir(self, dataset_id: str, label: str) -> Path:
        return self.root / dataset_id / WINDOWS / label

    def report_path(self, dataset_id: str, name: str) -> Path:
        return self.root / dataset_id / REPORTS / name

    def write_window(self, dataset_id: str, label: str, tables: Iterable[pa.Table]) -> LakeWrite:
        """Write each table as one Parquet part; an empty window still gets one (empty) part."""
        final = self.window_dir(dataset_id, label)
        staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        try:
            rows = 0
            for index, table in enumerate(with_empty_part(tables)):
                check_schema(table)
                pq.write_table(table, staging / part_name(index), compression="zstd")
                rows += table.num_rows
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        parts = sorted(final.glob("part-*.parquet"))
        return LakeWrite(uris=[path_to_file_uri(p) for p in parts], rows=rows)

    def write_file(self, dataset_id: str, label: str, name: str, table: pa.Table) -> str:
        path = self.window_dir(dataset_id, label) / name
        pq.write_table(table, path, compression="zstd")
        return path_to_file_uri(path)

    def entries(self, dataset_id: str) -> list[LakeEntry]:
        def written(path: Path) -> dt.datetime:
            times = [p.stat().st_mtime for p in (path, *path.glob("*"))]
            return dt.datetime.fromtimestamp(max(times), dt.UTC)

        folders = self.root / dataset_id
        return [
            LakeEntry(kind, path.name, written(path))
            for kind, pattern in ((WINDOWS, f"{WINDOWS}/*"), (REPORTS, f"{REPORTS}/*.html"))
            for path in sorted(folders.glob(pattern))
        ]

    def remove(self, dataset_id: str, entry: LakeEntry) -> None:
        path = self.root / dataset_id / entry.kind / entry.name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def write_report(self, dataset_id: str, name: str, html: str) -> str:
        path = self.report_path(dataset_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, html.encode("utf-8"))
        return path_to_file_uri(path)

    def write_docs(self, dataset_id: str, files: dict[str, bytes]) -> str:
        folder = self.root / dataset_id / DOCS
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            _replace(folder / name, content)
        return path_to_file_uri(folder)


def _replace(path: Path, content: bytes) -> None:
    """Write ``path`` under a temporary name, then rename it: a reader (the docs page, someone
    opening a report) never sees half a file."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    partial.write_bytes(content)
    partial.replace(path)


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def check_schema(table: pa.Table) -> None:
    if table.schema != ARROW_SCHEMA:
        raise ValueError("lake files must have the dataset schema (sfpd.schema.ARROW_SCHEMA)")


def path_to_file_uri(path: Path) -> str:
    """``file://`` URI of an absolute path, keeping ``=`` readable (Hive-style folder names)."""
    return "file://" + quote(str(path), safe="/=")


def file_uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc or not parsed.path.startswith("/"):
        raise ValueError(f"expected a file:///absolute/path URI, not {uri!r}")
    return Path(unquote(parsed.path))


def open_lake(uri: str, gcs_client=None) -> Lake:
    """The lake a URI names; a gs:// lake needs a google-cloud-storage client."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        return LocalLake.from_uri(uri)
    if scheme == "gs":
        if gcs_client is None:
            raise ValueError("a gs:// lake needs a GCS client")
        from sfpd.gcs_lake import GcsLake

        return GcsLake.from_uri(uri, gcs_client)
    raise ValueError(
        f"unsupported lake URI {uri!r}: use file:///absolute/path or gs://bucket/prefix"
    )
