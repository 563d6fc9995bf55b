"""Load a scope's lake files into a staging table, then MERGE them into the raw table.

One algorithm, two engines: DuckDB (embedded default) and BigQuery (production).

- ``base``: the algorithm (:meth:`Warehouse.merge_window`); ``session``: the :class:`Session`
  an engine opens; ``checks``: what the staged rows and the counts must hold to. The
  statements are ``sql/load/*.sql`` (written once, the dialects' differences as macros in
  ``sql/_dialect/``) and ``sql/<dialect>/*.sql`` (what only one engine does).
- ``records``: what a load did (:class:`MergeResult`), the catch-up's :class:`Check`, their
  ``load_audit`` row, and what the loads so far saw of the source (:class:`SourceState`).
- ``duckdb_engine``: a DuckDB file, and the wait for it while another process holds it.
- ``bigquery_engine``: BigQuery, its sessions and transactions, and where its data may be.

A merge upserts the staged rows on ``row_id`` wherever the raw table holds them (a row whose
incident date moved upstream is updated in place: ``row_id`` stays unique across the table) and,
for a window, deletes the window's rows the source no longer has (sealed records). A catch-up
range deletes nothing. The MERGE's target is limited with literal dates to the window's
partitions and those holding the staged row_ids, so on BigQuery a run's bytes grow with what it
loads, not with the table (docs/bigquery.md). Nothing is changed unless the staged rows are
exactly the rows the extract wrote, with unique row_ids, all inside the window. Each load
leaves a row in ``load_audit``; quarantined rows go to ``incidents_rejects``.
"""

from sfpd.warehouse.base import CLUSTER_BY, RAW_TABLE, TransactionConflict, Warehouse
from sfpd.warehouse.bigquery_engine import (
    BigQueryWarehouse,
    LocationMismatch,
    bucket_serves,
    partitioned_by_day,
)
from sfpd.warehouse.checks import LakeUnreadable, StagingRejected
from sfpd.warehouse.duckdb_engine import (
    LOCK_WAIT_SECONDS,
    DuckDBWarehouse,
    WarehouseDamaged,
    WarehouseLocked,
    connect_duckdb,
    lock_holder,
)
from sfpd.warehouse.records import (
    AUDIT_COLUMNS,
    Changes,
    Check,
    MergeResult,
    SourceState,
    check_result,
)
from sfpd.warehouse.session import Session

__all__ = [
    "AUDIT_COLUMNS", "CLUSTER_BY", "LOCK_WAIT_SECONDS", "RAW_TABLE", "BigQueryWarehouse",
    "Changes", "Check", "DuckDBWarehouse", "LakeUnreadable", "LocationMismatch", "MergeResult",
    "Session", "SourceState", "StagingRejected", "TransactionConflict", "Warehouse",
    "WarehouseDamaged", "WarehouseLocked", "bucket_serves", "check_result", "connect_duckdb",
    "lock_holder", "partitioned_by_day",
]  # fmt: skip
