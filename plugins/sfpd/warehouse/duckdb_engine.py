"""The embedded warehouse: a DuckDB file, and the wait for it while another process holds it.

DuckDB lets one process at a time open a file it writes. Airflow's pool keeps our own tasks
apart (one writer at a time: :mod:`sfpd.pools`); :func:`connect_duckdb` covers anything else that
opens it (a duckdb CLI): it waits, bounded, then fails naming the process that holds the file.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sfpd.config import DEFAULT_RAW_SCHEMA
from sfpd.lake import file_uri_to_path
from sfpd.schema import duckdb_columns
from sfpd.warehouse.base import Warehouse
from sfpd.warehouse.checks import LakeUnreadable
from sfpd.warehouse.records import Changes
from sfpd.warehouse.session import Session

log = logging.getLogger(__name__)

# How long a task waits for another process to close the DuckDB file.
LOCK_WAIT_SECONDS = 120
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseLocked(RuntimeError):
    """Another process kept the DuckDB file open for longer than a task waits for it."""


class WarehouseDamaged(RuntimeError):
    """The DuckDB file is not a DuckDB database (damaged, or another file put there)."""


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
            if "not a valid DuckDB database file" in str(exc):
                raise WarehouseDamaged(
                    f"{exc} Nothing was read or written. Move it aside (or put back a copy): "
                    "the next run makes a new file, and the backfill DAG loads the history "
                    "into it."
                ) from exc
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


class DuckDBSession(Session):
    """Statements on one open connection to the file."""

    def __init__(self, warehouse: DuckDBWarehouse, con: duckdb.DuckDBPyConnection) -> None:
        self.warehouse = warehouse
        self.con = con

    def run(self, sql: str, parameters: list[tuple[str, str, object]] | None = None) -> list:
        named = {name: value for name, _, value in parameters} if parameters else None
        return self.con.execute(sql, named).fetchall()

    def merge(self, sql: str) -> Changes:
        # RETURNING merge_action: a row per changed row, counted in Arrow
        with warnings.catch_warnings():  # "an extra copy": one short string per changed row
            warnings.simplefilter("ignore", UserWarning)
            actions = self.con.execute(sql).to_arrow_table().column("merge_action")
        counts = {c["values"]: c["counts"] for c in pc.value_counts(actions).to_pylist()}
        return Changes(counts.get("INSERT", 0), counts.get("UPDATE", 0), 0)

    def load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        files = [str(file_uri_to_path(uri)) for uri in uris]
        sql = self.warehouse.sql("load", table=self.warehouse.table(table), file_columns=columns)
        try:
            self.con.execute(sql, {"files": files})
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:  # the files, not us
            raise LakeUnreadable(uris, exc) from exc

    def table_columns(self, name: str) -> set[str] | None:
        try:
            return set(self.con.table(self.warehouse.table(name)).columns)
        except duckdb.CatalogException:
            return None

    def read(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(
        self,
        path: Path,
        schema: str = DEFAULT_RAW_SCHEMA,
        lock_wait: float = LOCK_WAIT_SECONDS,
        writes: bool = True,
    ) -> None:
        super().__init__(schema, writes)
        self.path = path
        self.lock_wait = lock_wait
        self.columns = duckdb_columns()

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return connect_duckdb(self.path, read_only, self.lock_wait)

    def table(self, name: str, schema: str | None = None) -> str:
        return f'"{schema or self.schema}"."{name}"'

    @contextmanager
    def session(self, transaction: bool = False) -> Iterator[DuckDBSession]:
        # not read_only: DuckDB refuses a second configuration of a file this process (e.g.
        # dbt-duckdb in `airflow dags test`) already has open
        with self.connect() as con:
            if not transaction:
                yield DuckDBSession(self, con)
                return
            con.begin()
            try:
                yield DuckDBSession(self, con)
            except BaseException:
                con.rollback()
                raise
            con.commit()
