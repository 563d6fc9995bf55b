"""Load a window's lake files into a staging table, then MERGE them into the raw table.

One algorithm (:meth:`Warehouse.merge_window`), two engines: DuckDB (embedded default) and
BigQuery (production). A subclass says only how its engine runs a statement, loads Parquet files
into a table, quotes a table's name and keeps a transaction; the statements are
``sql/<dialect>/<name>.sql``, the same names in both folders (``diff -r`` shows the dialect
differences), with column lists from :mod:`sfpd.schema`.

A merge upserts the staged rows on ``row_id`` wherever the raw table holds them (a row whose
incident date moved upstream is updated in place: ``row_id`` stays unique across the table) and,
for a window, deletes the window's rows the source no longer has (sealed records). A catch-up
(:class:`~sfpd.window.UpdatedBetween`) deletes nothing. The MERGE's target is limited with literal
dates to the window's partitions and those holding the staged row_ids, so on BigQuery a run's
bytes grow with what it loads, not with the table (docs/bigquery.md). Nothing is changed unless
the staged rows are exactly the rows the extract wrote, with unique row_ids, all inside the
window. Each load leaves a row in ``load_audit`` (with the source's ``:updated_at`` as of its
read: the catch-up's watermark); quarantined rows go to ``incidents_rejects``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sfpd.config import DEFAULT_RAW_SCHEMA, MARTS_SCHEMA
from sfpd.lake import file_uri_to_path
from sfpd.schema import bigquery_columns, duckdb_columns
from sfpd.sql import render as render_template
from sfpd.window import UpdatedBetween, Window

log = logging.getLogger(__name__)

RAW_TABLE = "incidents"
STAGING_TABLE = "incidents_staging"
REJECTS_TABLE = "incidents_rejects"
REJECTS_STAGING_TABLE = "incidents_rejects_staging"
AUDIT_TABLE = "load_audit"
REPARTITIONED_TABLE = "incidents__repartitioned"  # BigQuery: a raw table moving to months
CLUSTER_BY = ("incident_date", "police_district", "incident_category", "analysis_neighborhood")
REJECT_COLUMNS = [("raw_json", "STRING"), ("reason", "STRING")]  # the rejects file (both dialects)


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


Scope = Window | UpdatedBetween


@dataclass(frozen=True)
class MergeResult:
    run_id: str
    kind: str  # "window" or "catch-up"
    window_start: str | None  # the window's dates; None for a catch-up
    window_end: str | None
    rows_read: int
    rows_rejected: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_in_window_before: int  # 0 for a catch-up
    rows_in_window_after: int
    source_updated_through: str | None  # the source's latest :updated_at when the read began
    source_rows_updated_at: str | None = None  # when its data last changed, as the read began

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SourceState:
    """What the loads so far saw of the source (UTC): the latest data-change time any load read
    (the metadata's rowsUpdatedAt), the latest a catch-up read, and when the first load ran."""

    rows_updated_at: dt.datetime | None
    caught_up_at: dt.datetime | None
    first_loaded_at: dt.datetime | None


def _refuse_unfit_staging(
    scope: Scope, expected: int, staged: int, duplicates: int, outside: int
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
            f"{scope.label}: {'; '.join(problems)}; the raw table was not changed"
        )


class Changes(NamedTuple):
    """What one load did to the raw table, as its engine reports it."""

    inserted: int
    updated: int
    deleted: int


def _checked_changes(
    scope: Scope, deleted: int, upserted: Changes | int, before: tuple, after: tuple
) -> Changes:
    """The load's changes, checked against the table: ``deleted`` is the DELETE's count,
    ``upserted`` the MERGE's rows inserted and updated (or, from an engine that reports only
    its count of changed rows, as bqemulator without dmlStats, that count: the split then comes
    from the table). The table must have ``inserted - deleted`` rows more than before, and
    ``inserted + updated`` rows carrying this load's time. ``before``/``after``: (rows in the
    window, rows in the table, rows stamped with this load's time)."""
    grown, stamped = after[1] - before[1], after[2]
    if isinstance(upserted, int):
        inserted = grown + deleted
        upserted = Changes(inserted, upserted - inserted, 0)
    changes = Changes(upserted.inserted, upserted.updated, deleted)
    problems = []
    if grown != changes.inserted - changes.deleted:
        problems.append(
            f"{changes.inserted} inserted - {changes.deleted} deleted should leave "
            f"{before[1] + changes.inserted - changes.deleted} rows, the table has {after[1]}"
        )
    if stamped != changes.inserted + changes.updated:
        problems.append(
            f"{changes.inserted} inserted + {changes.updated} updated, but {stamped} rows "
            "carry this load's time"
        )
    if problems:
        raise RuntimeError(f"{scope.label}: the load reported {'; '.join(problems)}")
    return changes


def _result(
    scope: Scope,
    run_id: str,
    rows_read: int,
    rejected: int,
    changes: Changes,
    before: tuple,
    after: tuple,
    source_updated_through: dt.datetime | None,
    source_rows_updated_at: dt.datetime | None,
) -> MergeResult:
    window = scope if isinstance(scope, Window) else None
    return MergeResult(
        run_id=run_id,
        kind="window" if window else "catch-up",
        window_start=window.start.isoformat() if window else None,
        window_end=window.end.isoformat() if window else None,
        rows_read=rows_read,
        rows_rejected=rejected,
        rows_inserted=changes.inserted,
        rows_updated=changes.updated,
        rows_deleted=changes.deleted,
        rows_in_window_before=before[0],
        rows_in_window_after=after[0],
        source_updated_through=(
            source_updated_through.isoformat() if source_updated_through else None
        ),
        source_rows_updated_at=(
            source_rows_updated_at.isoformat() if source_rows_updated_at else None
        ),
    )


def _log_deduplicated(rows: int) -> None:
    if rows:
        log.warning("Removed %d copies of row_ids the table held twice; inserted once now", rows)


# load_audit's columns and their BigQuery types (DuckDB takes the same values as parameters)
AUDIT_COLUMNS = {
    "run_id": "STRING",
    "kind": "STRING",
    "window_start": "DATE",
    "window_end": "DATE",
    **dict.fromkeys(
        ("rows_read", "rows_rejected", "rows_inserted", "rows_updated", "rows_deleted"), "INT64"
    ),
    **dict.fromkeys(("loaded_at", "source_updated_through", "source_rows_updated_at"), "TIMESTAMP"),
}


def _audit_row(result: MergeResult, loaded_at: dt.datetime) -> dict:
    """The load_audit row of a load (or of a catch-up's check), as typed values."""
    row = {column: getattr(result, column, None) for column in AUDIT_COLUMNS}
    for column, kind in AUDIT_COLUMNS.items():
        if row[column] is not None and kind == "DATE":
            row[column] = dt.date.fromisoformat(row[column])
        elif row[column] is not None and kind == "TIMESTAMP":
            row[column] = dt.datetime.fromisoformat(row[column])
    return row | {"loaded_at": loaded_at}


def check_result(
    run_id: str, source_updated_through: dt.datetime | None, source_rows_updated_at: dt.datetime
) -> MergeResult:
    """A completed catch-up's record: the warehouse was level with the source as of
    ``source_rows_updated_at`` (the metadata's last data change), nothing loaded."""
    return MergeResult(
        run_id, "check", None, None, 0, 0, 0, 0, 0, 0, 0,
        source_updated_through.isoformat() if source_updated_through else None,
        source_rows_updated_at.isoformat(),
    )  # fmt: skip


def _windows(rows: list[tuple]) -> list[Window]:
    return sorted((Window(start, end) for start, end in rows), key=lambda w: (w.start, w.end))


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp as naive UTC: BigQuery's TIMESTAMPs come aware, DuckDB's naive (UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


_EPOCH, _MICROSECOND = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)


def _now() -> dt.datetime:
    """The load time, UTC, to the microsecond (both warehouses store it exactly): it stamps the
    rows a MERGE writes, so one load's rows can be counted."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Warehouse(ABC):
    """The raw, staging, quarantine and audit tables of one schema (a BigQuery dataset), and
    the marts dbt builds beside them. What differs between engines is the abstract methods."""

    dialect: str  # the folder of its statements: sql/<dialect>/
    columns: list[tuple[str, str]]  # the raw table's columns in its types (sfpd.schema)

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._tables_created = False  # by this instance: one catch-up reads and merges often

    # ------------------------------------------------------------------ what an engine provides

    @abstractmethod
    def table(self, name: str, schema: str | None = None) -> str:
        """A table of this warehouse's schema (or of ``schema``), quoted for its SQL."""

    @abstractmethod
    def read(self, sql: str) -> pa.Table:
        """A query's result (small: report data)."""

    @abstractmethod
    def _run(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        """Run statements (``parameters`` by name: load_audit's columns); the last one's rows,
        or for a DELETE/MERGE its count of changed rows."""

    @abstractmethod
    def _merge(self, sql: str) -> Changes | int:
        """Run the upserting MERGE; the rows it inserted and updated, or, where the engine
        reports only that, its count of changed rows."""

    @abstractmethod
    def _load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        """Replace ``table`` by the rows of the Parquet files, typed as ``columns``."""

    @abstractmethod
    def _session(self, transaction: bool = False):
        """A context in which statements run, one transaction if asked (DuckDB: one connection;
        BigQuery: a session). Inside one, another is the same."""

    @abstractmethod
    def _table_columns(self, name: str) -> set[str] | None:
        """The columns of a table of this schema; None when it does not exist."""

    def _prepare(self) -> None:
        """What an engine does before its tables are made (BigQuery: its dataset)."""
        return None

    # --------------------------------------------------------------------- SQL, rendered once

    def sql(
        self,
        name: str,
        scope: Scope | None = None,
        loaded_at: dt.datetime | None = None,
        dates: list[dt.date] = (),
        **context: object,
    ) -> str:
        """The statement ``sql/<dialect>/<name>.sql``; dates are rendered as DATE literals (so
        BigQuery prunes partitions): the window's bounds and ``dates``, the other partitions a
        statement reads or changes."""
        return self.render(f"{self.dialect}/{name}.sql", scope, loaded_at, dates, **context)

    def render(
        self,
        template: str,
        scope: Scope | None = None,
        loaded_at: dt.datetime | None = None,
        dates: list[dt.date] = (),
        **context: object,
    ) -> str:
        """A template with this warehouse's tables (``raw``, ``staging``, ..., ``mart(name)``),
        columns and scope (``window_start``/``window_end``, the ``dates`` of other partitions)."""
        window = scope if isinstance(scope, Window) else None
        return render_template(
            template,
            schema=self.schema,
            raw=self.table(RAW_TABLE),
            staging=self.table(STAGING_TABLE),
            rejects=self.table(REJECTS_TABLE),
            rejects_staging=self.table(REJECTS_STAGING_TABLE),
            audit=self.table(AUDIT_TABLE),
            mart=lambda name: self.table(name, MARTS_SCHEMA),
            columns=self.columns,
            cluster_by=CLUSTER_BY,
            window_start=window.start.isoformat() if window else None,
            window_end=window.end.isoformat() if window else None,
            dates=[day.isoformat() for day in dates],
            # microseconds since the epoch: exact in both engines (and no decimal point, which
            # bqemulator's literal rewriting would turn into a float)
            loaded_at_us=(loaded_at - _EPOCH) // _MICROSECOND if loaded_at else None,
            **context,
        )

    def query(self, template: str, scope: Scope | None = None, **context: object) -> pa.Table:
        """The result of a read-only template (``report/*.sql``: marts by ``mart(name)``)."""
        return self.read(self.render(template, scope, **context))

    # ------------------------------------------------------------------------ the load state

    def _ensure_tables(self) -> None:
        """Make what is missing, once per instance: the tables (a DDL statement only when one
        of them is missing), then the audit's columns added since (one statement, only when
        the table lacks some). In a session of their own: never inside a merge's transaction,
        whose rollback would drop them while this instance counts them as made."""
        if self._tables_created:
            return
        with self._session():
            self._prepare()
            audit = self._table_columns(AUDIT_TABLE)
            if audit is None or None in map(self._table_columns, (RAW_TABLE, REJECTS_TABLE)):
                self._run(self.sql("create_tables"))
                audit = self._table_columns(AUDIT_TABLE)
            missing = [(name, kind) for name, kind in AUDIT_COLUMNS.items() if name not in audit]
            if missing:
                log.info("Adding column(s) %s to %s", [n for n, _ in missing], AUDIT_TABLE)
                self._run(self.render(f"{self.dialect}/add_audit_columns.sql", missing=missing))
        self._tables_created = True

    def _rows(self, name: str) -> list[tuple]:
        self._ensure_tables()
        with self._session():
            return self._run(self.sql(name))

    def watermark(self) -> dt.datetime | None:
        """Where the next catch-up starts (UTC): see sql/*/watermark.sql."""
        return _naive_utc(self._rows("watermark")[0][0])

    def covered_windows(self) -> list[Window]:
        """The date windows loaded so far."""
        return _windows(self._rows("covered_windows"))

    def source_state(self) -> SourceState:
        """What the loads so far saw of the source: see sql/*/source_state.sql."""
        return SourceState(*map(_naive_utc, self._rows("source_state")[0]))

    def daily_counts(self) -> dict[dt.date, int]:
        """Rows per incident day, merged plus quarantined (what the source counts)."""
        return {day: int(n) for day, n in self._rows("daily_counts")}

    def record(self, result: MergeResult, loaded_at: dt.datetime | None = None) -> None:
        """Add a row to load_audit (a catch-up's check: :func:`check_result`)."""
        self._ensure_tables()
        with self._session():
            self._run(self.sql("insert_audit"), _audit_row(result, loaded_at or _now()))

    # ------------------------------------------------------------------------------ the merge

    def merge_window(
        self,
        scope: Scope,
        uris: list[str],
        *,
        rejects_uri: str,
        expected_rows: int,
        rows_read: int,
        run_id: str,
        source_updated_through: dt.datetime | None = None,
        source_rows_updated_at: dt.datetime | None = None,
    ) -> MergeResult:
        """Stage the lake files, check them, MERGE them, replace the quarantine, audit.

        The two loads come first (the staging tables are scratch); the rest is one transaction
        on both engines (BigQuery: a session's multi-statement transaction), so a failure
        anywhere leaves the raw, quarantine and audit tables as they were, and a retry redoes
        it all. The counts are the DELETE's and the MERGE's own, checked against the table."""
        self._ensure_tables()
        with self._session():
            self._load(uris, STAGING_TABLE, self.columns)
            self._load([rejects_uri], REJECTS_STAGING_TABLE, REJECT_COLUMNS)
        with self._session(transaction=True):
            checks = self._run(self.sql("check_staging", scope))[0]
            _refuse_unfit_staging(scope, expected_rows, *checks)
            staged = [day for (day,) in self._run(self.sql("staged_dates"))]
            copies = self._run(self.sql("moved_dates", scope))
            dates = [day for day, _ in copies]  # beyond the window: moved or repeated copies
            repeated = [day for day, twice in copies if twice]
            if repeated:
                _log_deduplicated(self._run(self.sql("dedupe", dates=repeated))[0][0])
            loaded_at = _now()
            before = self._run(self.sql("count_rows", scope, loaded_at, staged=staged))[0]
            window = isinstance(scope, Window)  # a catch-up deletes nothing
            deleted = self._run(self.sql("delete_gone", scope))[0][0] if window else 0
            upserted = self._merge(self.sql("merge", scope, loaded_at, dates))
            self._run(self.sql("replace_rejects", scope, loaded_at))
            after = self._run(self.sql("count_rows", scope, loaded_at, staged=staged))[0]
            changes = _checked_changes(scope, deleted, upserted, before, after)
            result = _result(
                scope, run_id, rows_read, rows_read - expected_rows, changes, before, after,
                source_updated_through, source_rows_updated_at,
            )  # fmt: skip
            self.record(result, loaded_at)
        log.info("MERGE of %s into %s: %s", scope.label, self.table(RAW_TABLE), result)
        if dates:
            log.info("Rows whose date moved upstream were in %d other partition(s)", len(dates))
        return result


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(
        self, path: Path, schema: str = DEFAULT_RAW_SCHEMA, lock_wait: float = LOCK_WAIT_SECONDS
    ) -> None:
        super().__init__(schema)
        self.path = path
        self.lock_wait = lock_wait
        self.columns = duckdb_columns()
        self._con: duckdb.DuckDBPyConnection | None = None

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return connect_duckdb(self.path, read_only, self.lock_wait)

    def table(self, name: str, schema: str | None = None) -> str:
        return f'"{schema or self.schema}"."{name}"'

    @contextmanager
    def _session(self, transaction: bool = False) -> Iterator[None]:
        if self._con is not None:  # already in one (a merge records its audit row)
            yield
            return
        # not read_only: DuckDB refuses a second configuration of a file this process (e.g.
        # dbt-duckdb in `airflow dags test`) already has open
        with self.connect() as con:
            self._con = con
            try:
                if transaction:
                    con.begin()
                yield
                if transaction:
                    con.commit()
            except BaseException:
                if transaction:
                    con.rollback()
                raise
            finally:
                self._con = None

    def read(self, sql: str) -> pa.Table:
        with self._session():
            return self._con.sql(sql).to_arrow_table()

    def _table_columns(self, name: str) -> set[str] | None:
        try:
            return set(self._con.table(self.table(name)).columns)
        except duckdb.CatalogException:
            return None

    def _run(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        return self._con.execute(sql, parameters).fetchall()

    def _merge(self, sql: str) -> Changes:
        # RETURNING merge_action: a row per changed row, counted in Arrow
        with warnings.catch_warnings():  # "an extra copy": one short string per changed row
            warnings.simplefilter("ignore", UserWarning)
            actions = self._con.execute(sql).to_arrow_table().column("merge_action")
        counts = {c["values"]: c["counts"] for c in pc.value_counts(actions).to_pylist()}
        return Changes(counts.get("INSERT", 0), counts.get("UPDATE", 0), 0)

    def _load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        files = [str(file_uri_to_path(uri)) for uri in uris]
        sql = self.render("duckdb/load.sql", table=self.table(table), file_columns=columns)
        self._run(sql, {"files": files})


class LocationMismatch(RuntimeError):
    """The dataset, the jobs' location and the lake's bucket are not where they can work."""


# GCP regions inside the EU multi-region: a bucket there serves a dataset in EU
EU_REGIONS = frozenset(
    ("europe-central2", "europe-north1", "europe-north2", "europe-southwest1", "europe-west1",
     "europe-west3", "europe-west4", "europe-west8", "europe-west9", "europe-west10",
     "europe-west12")
)  # fmt: skip


def bucket_serves(bucket_location: str, dataset_location: str) -> bool:
    """Whether a load job into a dataset in ``dataset_location`` can read a bucket in
    ``bucket_location`` (BigQuery's "Loading data from Cloud Storage", location
    considerations): the same location; a region inside the dataset's EU multi-region; any
    bucket for the US multi-region."""
    bucket, dataset = bucket_location.lower(), dataset_location.lower()
    return dataset == "us" or bucket == dataset or (dataset == "eu" and bucket in EU_REGIONS)


def partitioned_by_day(table) -> bool:
    """Whether a BigQuery table (google.cloud.bigquery.Table) has daily time partitions."""
    return bool(table.time_partitioning) and table.time_partitioning.type_ == "DAY"


class BigQueryWarehouse(Warehouse):
    """Driven by a google-cloud-bigquery client (in DAG tasks: BigQueryHook(...).get_client()).
    A transaction is a session's: its jobs run in it, COMMIT at the end, ROLLBACK on error."""

    dialect = "bigquery"
    _DML = ("DELETE", "INSERT", "UPDATE", "MERGE")

    def __init__(
        self, client, project: str, dataset: str = DEFAULT_RAW_SCHEMA, location: str = "US"
    ) -> None:
        super().__init__(dataset)
        self.client = client
        self.project = project
        self.dataset = dataset
        self.location = location
        self.columns = bigquery_columns()
        self._session_id: str | None = None

    def table(self, name: str, schema: str | None = None) -> str:
        return f"`{self.project}.{schema or self.dataset}.{name}`"

    def _job(self, sql: str, config=None):
        """A finished query job, in the open session if there is one."""
        from google.cloud import bigquery

        config = config or bigquery.QueryJobConfig()
        if self._session_id:
            config.connection_properties = [
                bigquery.ConnectionProperty("session_id", self._session_id)
            ]
        job = self.client.query(sql, job_config=config, location=self.location)
        job.result()
        return job

    @contextmanager
    def _session(self, transaction: bool = False) -> Iterator[None]:
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud import bigquery

        if not transaction or self._session_id:
            yield
            return
        begin = self._job("BEGIN TRANSACTION", bigquery.QueryJobConfig(create_session=True))
        self._session_id = begin.session_info.session_id
        try:
            yield
            self._job("COMMIT TRANSACTION")
        except BaseException:
            try:
                self._job("ROLLBACK TRANSACTION")
            except GoogleAPICallError as exc:  # a failed statement may have ended it already
                log.warning("ROLLBACK TRANSACTION: %s", exc)
            raise
        finally:
            try:
                self._job("CALL BQ.ABORT_SESSION()")
            except GoogleAPICallError as exc:  # it ends by itself after 24 idle hours
                log.info("The session did not end at once (%s)", exc)
            self._session_id = None

    def read(self, sql: str) -> pa.Table:
        return self.client.query(sql, location=self.location).to_arrow(
            create_bqstorage_client=False
        )

    def _run(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(name, AUDIT_COLUMNS[name], value)
                for name, value in (parameters or {}).items()
            ]
        )
        job = self._job(sql, config)
        if job.statement_type in self._DML:
            return [(job.num_dml_affected_rows or 0,)]
        return [tuple(row.values()) for row in job.result()]

    def _merge(self, sql: str) -> Changes | int:
        job = self._job(sql)
        stats = job.dml_stats  # the job's dmlStats: what the MERGE inserted and updated
        if stats is None:
            return job.num_dml_affected_rows or 0
        return Changes(stats.inserted_row_count, stats.updated_row_count, 0)

    def _load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        from google.cloud import bigquery

        self.client.load_table_from_uri(
            uris,
            f"{self.project}.{self.dataset}.{table}",
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=[bigquery.SchemaField(name, kind) for name, kind in columns],
            ),
            location=self.location,
        ).result()

    def _table_columns(self, name: str) -> set[str] | None:
        from google.api_core.exceptions import NotFound

        try:  # through the API: no query, no metadata update
            table = self.client.get_table(f"{self.project}.{self.dataset}.{name}")
        except NotFound:
            return None
        return {field.name for field in table.schema}

    def _dataset(self) -> None:
        """The dataset, through the API (it needs its location); one that exists elsewhere than
        SFPD_BQ_LOCATION is refused: jobs run in the location they are given."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        dataset.location = self.location
        found = self.client.create_dataset(dataset, exists_ok=True).location or self.location
        if found.lower() != self.location.lower():
            raise LocationMismatch(
                f"The BigQuery dataset {self.project}.{self.dataset} is in {found}, but "
                f"SFPD_BQ_LOCATION is {self.location}: set SFPD_BQ_LOCATION={found}, or "
                "SFPD_RAW_SCHEMA to a dataset in that location. Nothing was read or written."
            )

    def _prepare(self) -> None:
        """The dataset; a raw table an earlier version partitioned by day is moved to monthly
        partitions, once."""
        from google.api_core.exceptions import NotFound

        self._dataset()
        repartition = {"repartitioned": self.table(REPARTITIONED_TABLE), "raw_name": RAW_TABLE}
        try:
            raw = self.client.get_table(f"{self.project}.{self.dataset}.{RAW_TABLE}")
        except NotFound:
            if self._table_columns(REPARTITIONED_TABLE) is not None:  # stopped after the DROP
                self._run(self.render("bigquery/repartition.sql", finish=True, **repartition))
            return
        if partitioned_by_day(raw):
            log.warning("Moving %s to monthly partitions (once; it was partitioned by day)", raw)
            self._run(self.render("bigquery/repartition.sql", finish=False, **repartition))

    def check_locations(self, bucket: str, bucket_location: str) -> None:
        """Before any work: the dataset where SFPD_BQ_LOCATION says, and the lake's bucket
        where a load job into it can read (else :class:`LocationMismatch`, naming both)."""
        self._dataset()
        if not bucket_serves(bucket_location, self.location):
            raise LocationMismatch(
                f"The lake's bucket gs://{bucket} is in {bucket_location}, and a load job "
                f"into the dataset {self.project}.{self.dataset} in {self.location} cannot read "
                "it: BigQuery loads from a bucket in the dataset's location (any bucket for the "
                "US multi-region). Point SFPD_LAKE_URI at a bucket in "
                f"{self.location}, or set SFPD_BQ_LOCATION (and the dataset) to "
                f"{bucket_location}. Nothing was read or written."
            )
