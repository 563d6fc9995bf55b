"""The one load algorithm (:meth:`Warehouse.merge_window`) and what every engine shares.

An engine (:mod:`.duckdb_engine`, :mod:`.bigquery_engine`) says only how it names a table and
opens a :class:`Session`: how a statement runs, Parquet files load into a table, a MERGE
reports its counts and a transaction is kept. The statements are ``sql/load/<name>.sql``,
written once (the dialects' differences are macros: ``sql/_dialect/<dialect>.sql``), or
``sql/<dialect>/<name>.sql`` where the engines really differ (making tables, loading files).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import fields
from functools import cached_property, partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from sfpd.config import MARTS_SCHEMA
from sfpd.sql import render as render_template
from sfpd.warehouse.checks import checked_changes, refuse_unfit_staging
from sfpd.warehouse.records import (
    AUDIT_COLUMNS,
    Check,
    MergeResult,
    SourceState,
    audit_parameters,
)
from sfpd.warehouse.session import Session
from sfpd.window import Scope, Window, date_ranges, months_touched

log = logging.getLogger(__name__)
T = TypeVar("T")

CONFLICT_TRIES = 3  # a load's transaction, when another writer's aborts it
RAW_TABLE = "incidents"
STAGING_TABLE = "incidents_staging"
REJECTS_TABLE = "incidents_rejects"
REJECTS_STAGING_TABLE = "incidents_rejects_staging"
AUDIT_TABLE = "load_audit"
CLUSTER_BY = ("incident_date", "police_district", "incident_category", "analysis_neighborhood")
REJECT_COLUMNS = [("raw_json", "STRING"), ("reason", "STRING")]  # the rejects file (both dialects)
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
_EPOCH, _MICROSECOND = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)


def _log_deduplicated(rows: int) -> None:
    if rows:
        log.warning("Removed %d copies of row_ids the table held twice; inserted once now", rows)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp as naive UTC: BigQuery's TIMESTAMPs come aware, DuckDB's naive (UTC)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _bytes(*sessions: Session) -> tuple[int | None, int | None]:
    """What the sessions' jobs billed and processed; None, None where nothing is billed."""
    if any(session.bytes_billed is None for session in sessions):
        return None, None
    return sum(s.bytes_billed for s in sessions), sum(s.bytes_processed for s in sessions)


def _load_tables(session: Session) -> tuple[list[str], set[str] | None]:
    """The load tables that do not exist, and the audit's columns (None when it does not)."""
    audit = session.table_columns(AUDIT_TABLE)
    missing = [t for t in (RAW_TABLE, REJECTS_TABLE) if session.table_columns(t) is None]
    return missing + ([AUDIT_TABLE] if audit is None else []), audit


def _now() -> dt.datetime:
    """The load time, UTC, to the microsecond (both warehouses store it exactly): it stamps the
    rows a MERGE writes, so one load's rows can be counted."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class TransactionConflict(RuntimeError):
    """Another writer's transaction holds a table the load changes, try after try."""

    def __init__(self, table: str, tries: int, error: Exception) -> None:
        said = " ".join(str(error).split())
        super().__init__(
            f"The load's transaction was aborted {tries} times: another transaction holds "
            f"{table} ({said}). Nothing was changed. A run killed in its transaction leaves it "
            "open in its BigQuery session until the session ends (up to 24 hours): find it with "
            'the query in docs/bigquery.md, "One writer", end it with '
            "CALL BQ.ABORT_SESSION('<session_id>'), then clear this task."
        )


class Warehouse(ABC):
    """The raw, staging, quarantine and audit tables of one schema (a BigQuery dataset), and
    the marts dbt builds beside them. What differs between engines is the abstract methods."""

    dialect: str  # its macros and own statements: sql/_dialect/<dialect>.sql, sql/<dialect>/
    conflict_wait = 10.0  # seconds before a transaction another writer aborted runs again (x n)
    columns: list[tuple[str, str]]  # the raw table's columns in its types (sfpd.schema)

    def __init__(self, schema: str, writes: bool = True) -> None:
        self.schema = schema
        # DDL (making tables and the dataset, adding audit columns, moving partitions) only in a
        # task that writes (the merge pool's): one that only reads finds what is there
        self.writes = writes
        self._tables_created = False  # by this instance: one catch-up reads and merges often

    @abstractmethod
    def table(self, name: str, schema: str | None = None) -> str:
        """A table of this warehouse's schema (or of ``schema``), quoted for its SQL."""

    @abstractmethod
    def session(self, transaction: bool = False) -> AbstractContextManager[Session]:
        """A new :class:`Session`, one transaction if asked: committed when the block ends,
        rolled back when it raises."""

    def _prepare(self, session: Session) -> None:
        """What an engine does before its tables are made (BigQuery: its dataset)."""
        return None

    def staging_tables(self, run_id: str, scope: Scope) -> tuple[str, str]:
        """The staging tables (rows, rejects) of one load: the same for every load where one
        writer at a time holds the warehouse (a DuckDB file); BigQuery names them per load."""
        return STAGING_TABLE, REJECTS_STAGING_TABLE

    def _inspect(self, session: Session) -> None:
        """What an engine says, in a task that only reads, of what its writer would change."""
        return None

    # --------------------------------------------------------------------------- SQL

    def sql(self, name: str, *args: object, **context: object) -> str:
        """The statement ``name``: the engine's own (``sql/<dialect>/``) or the shared one
        (``sql/load/``), rendered as :meth:`render` renders a template."""
        own = f"{self.dialect}/{name}.sql"
        template = own if (SQL_DIR / own).exists() else f"load/{name}.sql"
        return self.render(template, *args, **context)

    def render(
        self,
        template: str,
        scope: Scope | None = None,
        loaded_at: dt.datetime | None = None,
        dates: list[dt.date] = (),
        staging: tuple[str, str] = (STAGING_TABLE, REJECTS_STAGING_TABLE),
        **context: object,
    ) -> str:
        """A template with this warehouse's tables (``raw``, ``staging``, ..., ``mart(name)``),
        columns and scope. Dates are rendered as DATE literals (so BigQuery prunes partitions):
        the window's bounds (``window_start``/``window_end``) and ``dates``, the other
        partitions a statement reads or changes. ``staging``: the load's staging tables
        (:meth:`staging_tables`)."""
        window = scope if isinstance(scope, Window) else None
        ranges = [(w.start.isoformat(), w.end.isoformat()) for w in date_ranges(scope)]
        return render_template(
            template,
            dialect=self.dialect,
            schema=self.schema,
            raw=self.table(RAW_TABLE),
            staging=self.table(staging[0]),
            rejects=self.table(REJECTS_TABLE),
            rejects_staging=self.table(staging[1]),
            audit=self.table(AUDIT_TABLE),
            mart=lambda name: self.table(name, MARTS_SCHEMA),
            columns=self.columns,
            audit_columns=list(AUDIT_COLUMNS),
            cluster_by=CLUSTER_BY,
            ranges=ranges,
            window_start=window.start.isoformat() if window else None,
            window_end=window.end.isoformat() if window else None,
            dates=[day.isoformat() for day in dates],
            # microseconds since the epoch: exact in both engines (and no decimal point, which
            # bqemulator's literal rewriting would turn into a float)
            loaded_at_us=(loaded_at - _EPOCH) // _MICROSECOND if loaded_at else None,
            **context,
        )

    def read(self, sql: str) -> pa.Table:
        """A query's result (small: report data)."""
        with self.session() as session:
            return session.read(sql)

    def query(self, template: str, scope: Scope | None = None, **context: object) -> pa.Table:
        """The result of a read-only template (``report/*.sql``: marts by ``mart(name)``)."""
        return self.read(self.render(template, scope, **context))

    # ------------------------------------------------------------------ the load state

    def _ensure_tables(self) -> None:
        """Make what is missing, once per instance: the tables (a DDL statement only when one
        of them is missing), then the audit's columns added since (one statement, only when
        the table lacks some). In a session of their own: never inside a merge's transaction,
        whose rollback would drop them while this instance counts them as made."""
        if self._tables_created:
            return
        if not self.writes:
            raise RuntimeError("A warehouse opened to read only (writes=False) makes no table")
        with self.session() as session:
            self._prepare(session)
            missing_tables, audit = _load_tables(session)
            if missing_tables:
                session.run(self.sql("create_tables"))
                audit = session.table_columns(AUDIT_TABLE)
            missing = [(name, kind) for name, kind in AUDIT_COLUMNS.items() if name not in audit]
            if missing:
                log.info("Adding column(s) %s to %s", [n for n, _ in missing], AUDIT_TABLE)
                session.run(self.sql("add_audit_columns", missing=missing))
        self._tables_created = True

    @cached_property
    def _readable(self) -> bool:
        """In a task that only reads, once per instance: whether the tables are there, as this
        version makes them (else it reads nothing, and says so; the merge makes them)."""
        with self.session() as session:
            self._inspect(session)
            missing, audit = _load_tables(session)
            if missing or not set(AUDIT_COLUMNS) <= audit:
                log.info(
                    "The load tables are not all there as this version makes them (missing: "
                    "%s): read as empty; the next merge makes them (this task only reads)",
                    ", ".join(missing) or f"columns of {AUDIT_TABLE}",
                )
                return False
        return True

    def _rows(self, name: str, empty: list[tuple]) -> list[tuple]:
        """The rows of a read-only statement; ``empty`` where a task that only reads finds the
        tables missing."""
        if self.writes:
            self._ensure_tables()
        elif not self._readable:
            return empty
        with self.session() as session:
            return session.run(self.sql(name))

    def watermark(self) -> dt.datetime | None:
        """Where the next catch-up starts (UTC): see sql/load/watermark.sql."""
        return _naive_utc(self._rows("watermark", [(None,)])[0][0])

    def covered_windows(self) -> list[Window]:
        """The date windows loaded so far."""
        windows = (Window(start, end) for start, end in self._rows("covered_windows", []))
        return sorted(windows, key=lambda w: (w.start, w.end))

    def source_state(self) -> SourceState:
        """What the loads so far saw of the source: see sql/load/source_state.sql."""
        nothing = [(None,) * len(fields(SourceState))]
        return SourceState(*map(_naive_utc, self._rows("source_state", nothing)[0]))

    def daily_counts(self) -> dict[dt.date, int]:
        """Rows per incident day, merged plus quarantined (what the source counts)."""
        return {day: int(n) for day, n in self._rows("daily_counts", [])}

    def record(self, record: MergeResult | Check) -> None:
        """Add a row to load_audit (a catch-up's check: :func:`.records.check_result`)."""
        self._ensure_tables()
        with self.session() as session:
            self._insert_audit(session, record, _now())

    def _insert_audit(
        self, session: Session, record: MergeResult | Check, loaded_at: dt.datetime
    ) -> None:
        session.run(self.sql("insert_audit"), audit_parameters(record, loaded_at))

    # ------------------------------------------------------------------------ the merge

    def _conflict(self, error: Exception) -> str | None:
        """The table another writer's transaction holds, when ``error`` is the engine aborting
        this one for it (BigQuery's "concurrent update"); else None."""
        return None

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction. One that the engine aborted for another
        writer's (:meth:`_conflict`) rolled back whole: it is run again whole, up to
        :data:`CONFLICT_TRIES` times, then :class:`TransactionConflict` says what holds it."""
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                with self.session(transaction=True) as session:
                    return work(session)
            except Exception as exc:
                table = self._conflict(exc)
                if table is None:
                    raise
                if attempt == CONFLICT_TRIES:
                    raise TransactionConflict(table, attempt, exc) from exc
                wait = self.conflict_wait * attempt
                log.warning("Another transaction holds %s: this one was rolled back, trying it "
                            "again in %.0f s (%d of %d)", table, wait, attempt + 1,
                            CONFLICT_TRIES)  # fmt: skip
                time.sleep(wait)
        raise AssertionError("unreachable")

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
        names = self.staging_tables(run_id, scope)
        sql = partial(self.sql, staging=names)
        with self.session() as loading:
            loading.load(uris, names[0], self.columns)
            loading.load([rejects_uri], names[1], REJECT_COLUMNS)

        def merge_staged(session: Session) -> tuple[MergeResult, list[dt.date]]:
            checks = session.run(sql("check_staging", scope))[0]
            refuse_unfit_staging(scope, expected_rows, *checks)
            staged = [day for (day,) in session.run(sql("staged_dates"))]
            copies = session.run(sql("moved_dates", scope))
            dates = [day for day, _ in copies]  # beyond the window: moved or repeated copies
            repeated = [day for day, twice in copies if twice]
            if repeated:
                _log_deduplicated(session.run(sql("dedupe", dates=repeated))[0][0])
            loaded_at = _now()
            count_rows = sql("count_rows", scope, loaded_at, staged=staged)
            before = session.run(count_rows)[0]
            dated = bool(date_ranges(scope))  # rows changed upstream: nothing is deleted
            deleted = session.run(sql("delete_gone", scope))[0][0] if dated else 0
            upserted = session.merge(sql("merge", scope, loaded_at, dates))
            session.run(sql("replace_rejects", scope, loaded_at))
            after = session.run(count_rows)[0]
            changes = checked_changes(scope, deleted, upserted, before, after)
            billed, processed = _bytes(loading, session)
            touched = months_touched(scope, [*staged, *dates]) if any(changes) else []
            result = MergeResult.of(
                scope, run_id, rows_read=rows_read, rows_rejected=rows_read - expected_rows,
                rows_inserted=changes.inserted, rows_updated=changes.updated,
                rows_deleted=changes.deleted, rows_in_window_before=before[0],
                rows_in_window_after=after[0], source_updated_through=source_updated_through,
                source_rows_updated_at=source_rows_updated_at, bytes_billed=billed,
                bytes_processed=processed,
                months_touched=" ".join(month.isoformat() for month in touched) or None,
            )  # fmt: skip
            self._insert_audit(session, result, loaded_at)
            return result, dates

        result, dates = self._transaction(merge_staged)
        with self.session() as session:  # scratch: what a failure leaves, the next load replaces
            session.run(sql("drop_staging"))  # (BigQuery: or its expiration removes)
        log.info("MERGE of %s into %s: %s", scope.label, self.table(RAW_TABLE), result)
        if result.bytes_billed is not None:
            log.info("The load's jobs billed %.1f MB (read %.1f MB)",
                     result.bytes_billed / 1e6, result.bytes_processed / 1e6)  # fmt: skip
        if dates:
            log.info("Rows whose date moved upstream were in %d other partition(s)", len(dates))
        return result
