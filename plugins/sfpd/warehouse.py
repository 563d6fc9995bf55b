"""The embedded warehouse: load a window's lake files into staging, MERGE into the raw table."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from sfpd.lake import file_uri_to_path
from sfpd.schema import duckdb_columns
from sfpd.sql import render
from sfpd.window import Window

log = logging.getLogger(__name__)

RAW_SCHEMA = "sfpd_raw"
RAW_TABLE = "incidents"
STAGING_TABLE = "incidents_staging"


class StagingRejected(RuntimeError):
    """The staged window is not fit to merge; the raw table was left unchanged."""


@dataclass(frozen=True)
class MergeResult:
    rows_staged: int
    rows_in_window_before: int
    rows_in_window_after: int
    rows_in_table_after: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class DuckDBWarehouse:
    def __init__(self, path: Path, schema: str = RAW_SCHEMA) -> None:
        self.path = path
        self._names = {
            "schema": schema,
            "table": RAW_TABLE,
            "staging": STAGING_TABLE,
            "columns": duckdb_columns(),
        }

    def _sql(self, name: str) -> str:
        return render(f"duckdb/{name}.sql", **self._names)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.path), read_only=read_only)

    def merge_window(self, window: Window, uris: list[str]) -> MergeResult:
        """Stage the window's files and MERGE them into the raw table in one transaction."""
        paths = [str(file_uri_to_path(uri)) for uri in uris]
        bounds = {
            "window_start": dt.datetime.combine(window.start, dt.time()),
            "window_end": dt.datetime.combine(window.end, dt.time()),
        }
        with self.connect() as con:
            con.execute(self._sql("create_raw"))
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(self._sql("load_staging"), {"files": paths})
                staged, duplicates, outside = con.execute(
                    self._sql("check_staging"), bounds
                ).fetchone()
                if duplicates or outside:
                    raise StagingRejected(
                        f"window {window.label}: {duplicates} repeated row_id(s) and {outside} "
                        f"row(s) outside the window among {staged} staged rows; "
                        "the raw table was not changed"
                    )
                _, before = con.execute(self._sql("count_raw"), bounds).fetchone()
                con.execute(self._sql("merge"))
                total, after = con.execute(self._sql("count_raw"), bounds).fetchone()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        result = MergeResult(staged, before, after, total)
        log.info("MERGE of window %s into %s: %s", window.label, self.path, result)
        return result
