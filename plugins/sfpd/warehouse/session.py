"""A warehouse's session: the statements of one connection (DuckDB) or one BigQuery session."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa

from sfpd.warehouse.records import Changes


class Session(ABC):
    """Statements on one connection (DuckDB) or in one session (BigQuery), opened by
    :meth:`Warehouse.session`; one transaction if it was asked for. ``bytes_billed`` and
    ``bytes_processed``: what its jobs billed and read so far (None where nothing is billed)."""

    bytes_billed: int | None = None
    bytes_processed: int | None = None

    @abstractmethod
    def run(self, sql: str, parameters: list[tuple[str, str, object]] | None = None) -> list:
        """Run statements (``parameters``: (name, BigQuery type, value)); the last one's rows,
        or for a DELETE its count of deleted rows (as a one-row result)."""

    @abstractmethod
    def merge(self, sql: str) -> Changes | int:
        """Run the upserting MERGE; the rows it inserted and updated, or, where the engine
        reports only that, its count of changed rows."""

    @abstractmethod
    def load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        """Replace ``table`` (of the warehouse's schema) by the Parquet files' rows."""

    @abstractmethod
    def table_columns(self, name: str) -> set[str] | None:
        """The columns of a table of the warehouse's schema; None when it does not exist."""

    @abstractmethod
    def read(self, sql: str) -> pa.Table:
        """A query's result (small: report data)."""
