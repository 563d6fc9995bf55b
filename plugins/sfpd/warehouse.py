"""Load a window's lake files into a staging table, then MERGE them into the raw table.

Two warehouses with one contract (:meth:`merge_window`): DuckDB (embedded default) and BigQuery
(production). SQL lives in ``sql/<dialect>/*.sql``; column lists come from :mod:`sfpd.schema`.

After a complete read the raw table's window equals the source's window: changed rows are
updated, new rows inserted, rows the source no longer has (sealed records) deleted; rows outside
the window are never touched. The target is limited to the window's dates with literal bounds,
so BigQuery prunes partitions: a run's bytes grow with the window, not with the table. Nothing
is changed unless the staged rows are exactly the rows the extract wrote, with unique row_ids,
all inside the window. Each load leaves a row in ``load_audit``; quarantined rows go to
``incidents_rejects``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from sfpd.lake import file_uri_to_path
from sfpd.schema import bigquery_columns, duckdb_columns
from sfpd.sql import render
from sfpd.window import Window

log = logging.getLogger(__name__)

RAW_TABLE = "incidents"
STAGING_TABLE = "incidents_staging"
REJECTS_TABLE = "incidents_rejects"
AUDIT_TABLE = "load_audit"
CLUSTER_BY = ("police_district", "incident_category", "analysis_neighborhood")
REJECT_COLUMNS = [("raw_json", "STRING"), ("reason", "STRING")]  # the lake's rejects file


class StagingRejected(RuntimeError):
    """The staged window is not fit to merge; the raw table was left unchanged."""


class WarehouseLocked(RuntimeError):
    """Another process kept the DuckDB file open for longer than a task waits for it."""


# How long a task waits for another process to close the DuckDB file. Airflow's pool keeps our
# own tasks apart (one writer at a time); this covers anything else that opens it (a duckdb CLI).
LOCK_WAIT_SECONDS = 120
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(error: str) -> str:
    """'PID n (command line)' of the process DuckDB's lock error names, as far as it is known."""
    found = _LOCK_HOLDER.search(error)
    if not found:
        return "another process"
    pid, program = found["pid"], found["program"]
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:  # gone already, or another host's /proc
        command = ""
    return f"PID {pid} ({command or program})"


def connect_duckdb(
    path: Path, read_only: bool = False, wait: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file, waiting up to ``wait`` seconds while another process
    holds it; then :class:`WarehouseLocked`, naming that process and what to do."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay, holder = time.monotonic() + wait, 0.1, None
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            if holder is None:
                holder = lock_holder(str(exc))
                log.warning(
                    "The DuckDB file %s is in use by %s; waiting up to %.0f s for it to be "
                    "closed (DuckDB allows one process at a time to open a file it writes)",
                    path, holder, wait,
                )  # fmt: skip
            if time.monotonic() + delay > deadline:
                raise WarehouseLocked(
                    f"The DuckDB file {path} is in use by {lock_holder(str(exc))}. This task "
                    f"waited {wait:.0f} s and stopped without writing anything. Close that "
                    "program (in the duckdb CLI: .quit), then clear the task or let Airflow "
                    "retry it; to look at the data while runs go on, open a copy of the file."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@dataclass(frozen=True)
class MergeResult:
    run_id: str
    window_start: str
    window_end: str
    rows_read: int
    rows_rejected: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_in_window_before: int
    rows_in_window_after: int

    def to_dict(self) -> dict:
        return asdict(self)


# where dbt builds the marts (generate_schema_name: sfpd_<folder schema>)
MARTS_SCHEMA = "sfpd_marts"


class Warehouse(Protocol):
    marts: str  # the marts' schema (DuckDB) or `project.dataset` (BigQuery), as SQL

    def read(self, sql: str) -> pa.Table:
        """A query's result (small: report data)."""

    def merge_window(
        self,
        window: Window,
        uris: list[str],
        *,
        rejects_uri: str,
        expected_rows: int,
        rows_read: int,
        run_id: str,
    ) -> MergeResult: ...


def _refuse_unfit_staging(
    window: Window, expected: int, staged: int, duplicates: int, outside: int
) -> None:
    problems = []
    if staged != expected:
        problems.append(f"the lake files hold {staged} rows but the extract wrote {expected}")
    if duplicates:
        problems.append(f"{duplicates} repeated row_id(s)")
    if outside:
        problems.append(f"{outside} row(s) outside the window")
    if problems:
        raise StagingRejected(
            f"window {window.label}: {'; '.join(problems)}; the raw table was not changed"
        )


def _result(
    window: Window, run_id: str, rows_read: int, rejected: int, diff: tuple, after: int
) -> MergeResult:
    """The counts of a MERGE, checked: the window must hold what the diff said it would."""
    inserted, updated, deleted, before = diff
    if after != before + inserted - deleted:
        raise RuntimeError(
            f"window {window.label}: {before} rows + {inserted} inserted - {deleted} deleted "
            f"should leave {before + inserted - deleted}, the table has {after}"
        )
    return MergeResult(
        run_id=run_id,
        window_start=window.start.isoformat(),
        window_end=window.end.isoformat(),
        rows_read=rows_read,
        rows_rejected=rejected,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_deleted=deleted,
        rows_in_window_before=before,
        rows_in_window_after=after,
    )


def _now() -> dt.datetime:
    """The load time, UTC, to the second (both warehouses store the same value)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class DuckDBWarehouse:
    marts = MARTS_SCHEMA

    def __init__(
        self, path: Path, schema: str = "sfpd_raw", lock_wait: float = LOCK_WAIT_SECONDS
    ) -> None:
        self.path = path
        self.lock_wait = lock_wait
        self._names = {
            "schema": schema,
            "table": RAW_TABLE,
            "staging": STAGING_TABLE,
            "columns": duckdb_columns(),
        }

    def _sql(self, name: str) -> str:
        return render(f"duckdb/{name}.sql", **self._names)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return connect_duckdb(self.path, read_only, self.lock_wait)

    def read(self, sql: str) -> pa.Table:
        # not read_only: DuckDB refuses a second configuration of a file this process (e.g.
        # dbt-duckdb in `airflow dags test`) already has open
        with self.connect() as con:
            return con.sql(sql).to_arrow_table()

    def merge_window(
        self,
        window: Window,
        uris: list[str],
        *,
        rejects_uri: str,
        expected_rows: int,
        rows_read: int,
        run_id: str,
    ) -> MergeResult:
        """Everything in one transaction: staging, checks, MERGE, quarantine, audit."""
        bounds = {"window_start": window.start, "window_end": window.end}
        loaded_at = _now()
        with self.connect() as con:
            con.execute(self._sql("create_tables"))
            con.execute("BEGIN TRANSACTION")
            try:
                paths = [str(file_uri_to_path(uri)) for uri in uris]
                con.execute(self._sql("load_staging"), {"files": paths})
                checks = con.execute(self._sql("check_staging"), bounds).fetchone()
                _refuse_unfit_staging(window, expected_rows, *checks)
                diff = con.execute(self._sql("diff"), bounds).fetchone()
                con.execute(self._sql("merge"), {**bounds, "loaded_at": loaded_at})
                rejects_file = str(file_uri_to_path(rejects_uri))
                con.execute(self._sql("delete_rejects"), bounds)
                con.execute(
                    self._sql("insert_rejects"),
                    {**bounds, "loaded_at": loaded_at, "rejects_file": rejects_file},
                )
                rejected = rows_read - expected_rows
                after = con.execute(self._sql("count_window"), bounds).fetchone()[0]
                result = _result(window, run_id, rows_read, rejected, diff, after)
                con.execute(
                    self._sql("insert_audit"),
                    {**bounds, **_audit_values(result), "loaded_at": loaded_at},
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        log.info("MERGE of window %s into %s: %s", window.label, self.path, result)
        return result


def _audit_values(result: MergeResult) -> dict:
    keys = ("run_id", "rows_read", "rows_rejected", "rows_inserted", "rows_updated")
    return {key: getattr(result, key) for key in (*keys, "rows_deleted")}


class BigQueryWarehouse:
    """Raw, staging, quarantine and audit tables in one BigQuery dataset, driven by a
    google-cloud-bigquery client (in DAG tasks: BigQueryHook(...).get_client(...))."""

    def __init__(self, client, project: str, dataset: str = "sfpd_raw", location: str = "US"):
        self.client = client
        self.project = project
        self.dataset = dataset
        self.location = location
        self.marts = f"`{project}.{MARTS_SCHEMA}`"

    def read(self, sql: str) -> pa.Table:
        return self.client.query(sql, location=self.location).to_arrow(
            create_bqstorage_client=False
        )

    def ref(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def sql(self, name: str, window: Window | None = None, loaded_at: dt.datetime | None = None):
        """A statement of ``sql/bigquery``; window bounds are rendered as DATE literals."""
        return render(
            f"bigquery/{name}.sql",
            raw=self.ref(RAW_TABLE),
            staging=self.ref(STAGING_TABLE),
            rejects=self.ref(REJECTS_TABLE),
            rejects_staging=self.ref(f"{REJECTS_TABLE}_staging"),
            audit=self.ref(AUDIT_TABLE),
            columns=bigquery_columns(),
            cluster_by=CLUSTER_BY,
            window_start=window.start.isoformat() if window else None,
            window_end=window.end.isoformat() if window else None,
            loaded_at=loaded_at.isoformat(sep=" ", timespec="seconds") if loaded_at else None,
        )

    def _query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=parameters or [])
        return [tuple(row.values()) for row in self.client.query(sql, job_config=config).result()]

    def _load(self, uris: list[str], table: str, schema: list[tuple[str, str]]) -> None:
        from google.cloud import bigquery

        self.client.load_table_from_uri(
            uris,
            self.ref(table),
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=[bigquery.SchemaField(name, kind) for name, kind in schema],
            ),
        ).result()

    def merge_window(
        self,
        window: Window,
        uris: list[str],
        *,
        rejects_uri: str,
        expected_rows: int,
        rows_read: int,
        run_id: str,
    ) -> MergeResult:
        """Load staging, check it, then one atomic MERGE; then the quarantine and the audit.
        A failure before the MERGE leaves the raw table as it was; a retry redoes it all."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True)
        self._query(self.sql("create_tables"))
        self._query(self.sql("create_side_tables"))
        self._query(self.sql("create_staging"))
        self._load(uris, STAGING_TABLE, bigquery_columns())
        checks = self._query(self.sql("check_staging", window))[0]
        _refuse_unfit_staging(window, expected_rows, *checks)
        diff = self._query(self.sql("diff", window))[0]
        loaded_at = _now()
        self._query(self.sql("merge", window, loaded_at))
        self._load([rejects_uri], f"{REJECTS_TABLE}_staging", REJECT_COLUMNS)
        self._query(self.sql("replace_rejects", window, loaded_at))
        after = self._query(self.sql("count_window", window))[0][0]
        result = _result(window, run_id, rows_read, rows_read - expected_rows, diff, after)
        parameters = [
            bigquery.ScalarQueryParameter("run_id", "STRING", run_id),
            *(
                bigquery.ScalarQueryParameter(key, "INT64", value)
                for key, value in _audit_values(result).items()
                if key != "run_id"
            ),
        ]
        self._query(self.sql("insert_audit", window, loaded_at), parameters)
        log.info("MERGE of window %s into %s: %s", window.label, self.ref(RAW_TABLE), result)
        return result
