"""Load a window's lake files into a staging table, then MERGE them into the raw table.

Two warehouses with one contract (:meth:`merge_window`): DuckDB (embedded default) and BigQuery
(production). SQL lives in ``sql/<dialect>/*.sql``; column lists come from :mod:`sfpd.schema`.
The MERGE restricts the target to the window's dates with literal bounds, so BigQuery prunes
partitions: a run's bytes grow with the window, not with the table.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import duckdb

from sfpd.lake import file_uri_to_path
from sfpd.schema import bigquery_columns, duckdb_columns
from sfpd.sql import render
from sfpd.window import Window

log = logging.getLogger(__name__)

RAW_TABLE = "incidents"
STAGING_TABLE = "incidents_staging"
CLUSTER_BY = ("police_district", "incident_category", "analysis_neighborhood")


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


class Warehouse(Protocol):
    def merge_window(self, window: Window, uris: list[str]) -> MergeResult: ...


def _refuse_unfit_staging(window: Window, staged: int, duplicates: int, outside: int) -> None:
    if duplicates or outside:
        raise StagingRejected(
            f"window {window.label}: {duplicates} repeated row_id(s) and {outside} row(s) "
            f"outside the window among {staged} staged rows; the raw table was not changed"
        )


class DuckDBWarehouse:
    def __init__(self, path: Path, schema: str = "sfpd_raw") -> None:
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
        bounds = {"window_start": window.start, "window_end": window.end}
        with self.connect() as con:
            con.execute(self._sql("create_raw"))
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(self._sql("load_staging"), {"files": paths})
                checks = con.execute(self._sql("check_staging"), bounds).fetchone()
                _refuse_unfit_staging(window, *checks)
                before = con.execute(self._sql("count_window"), bounds).fetchone()[0]
                con.execute(self._sql("merge"), bounds)
                after = con.execute(self._sql("count_window"), bounds).fetchone()[0]
                total = con.execute(self._sql("count_table")).fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        result = MergeResult(checks[0], before, after, total)
        log.info("MERGE of window %s into %s: %s", window.label, self.path, result)
        return result


class BigQueryWarehouse:
    """Raw and staging tables in one BigQuery dataset, driven by a google-cloud-bigquery client
    (in DAG tasks: BigQueryHook(...).get_client(...))."""

    def __init__(self, client, project: str, dataset: str = "sfpd_raw", location: str = "US"):
        self.client = client
        self.project = project
        self.dataset = dataset
        self.location = location

    def ref(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def sql(self, name: str, window: Window | None = None) -> str:
        """A statement of ``sql/bigquery``; window bounds are rendered as DATE literals."""
        return render(
            f"bigquery/{name}.sql",
            raw=self.ref(RAW_TABLE),
            staging=self.ref(STAGING_TABLE),
            columns=bigquery_columns(),
            cluster_by=CLUSTER_BY,
            window_start=window.start.isoformat() if window else None,
            window_end=window.end.isoformat() if window else None,
        )

    def _query(self, sql: str) -> list[tuple]:
        return [tuple(row.values()) for row in self.client.query(sql).result()]

    def merge_window(self, window: Window, uris: list[str]) -> MergeResult:
        """Load the window's files into staging, then one MERGE (atomic) into the raw table."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True)
        self._query(self.sql("create_raw"))
        self._query(self.sql("create_staging"))
        load = self.client.load_table_from_uri(
            uris,
            self.ref(STAGING_TABLE),
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=[bigquery.SchemaField(name, kind) for name, kind in bigquery_columns()],
            ),
        )
        load.result()
        checks = self._query(self.sql("check_staging", window))[0]
        _refuse_unfit_staging(window, *checks)
        before = self._query(self.sql("count_window", window))[0][0]
        self._query(self.sql("merge", window))
        after = self._query(self.sql("count_window", window))[0][0]
        total = self._query(self.sql("count_table"))[0][0]
        result = MergeResult(checks[0], before, after, total)
        log.info("MERGE of window %s into %s: %s", window.label, self.ref(RAW_TABLE), result)
        return result
