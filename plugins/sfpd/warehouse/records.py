"""What a load did, and what the warehouse remembers of it: the result of a merge, the
catch-up's check, the ``load_audit`` row both leave, and what the loads so far saw of the source.

Values are typed here (dates, naive UTC datetimes); ``to_dict()`` turns a result into the
JSON-able dict that goes through XCom. The timestamps' names: docs/how-it-works.md, "Glossary".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import NamedTuple

from sfpd.window import Days, Scope, Window

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
    # what the load's BigQuery jobs billed and processed (NULL on DuckDB, and for a check)
    **dict.fromkeys(("bytes_billed", "bytes_processed"), "INT64"),
    # the months whose rows the load may have changed, for dbt's builds by month
    # (include/dbt/macros/incremental_months.sql): ISO dates of their first days, space-separated
    "months_touched": "STRING",
}


class Changes(NamedTuple):
    """What one load did to the raw table, as its engine reports it."""

    inserted: int
    updated: int
    deleted: int


@dataclass(frozen=True)
class MergeResult:
    """One load's result: its scope, its counts, and the source as the read began."""

    run_id: str
    kind: str  # "window", "catch-up" (rows changed upstream) or "days" (days loaded again)
    window_start: dt.date | None  # the window's dates; None for the others
    window_end: dt.date | None
    rows_read: int
    rows_rejected: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_in_window_before: int  # 0 for a catch-up range
    rows_in_window_after: int
    source_updated_through: dt.datetime | None
    source_rows_updated_at: dt.datetime | None = None
    bytes_billed: int | None = None  # BigQuery: the sum over the load's jobs
    bytes_processed: int | None = None
    months_touched: str | None = None  # see AUDIT_COLUMNS; None for a load that changed nothing

    @classmethod
    def of(cls, scope: Scope, run_id: str, **figures: object) -> MergeResult:
        window = scope if isinstance(scope, Window) else None
        return cls(
            run_id=run_id,
            kind="window" if window else "days" if isinstance(scope, Days) else "catch-up",
            window_start=window.start if window else None,
            window_end=window.end if window else None,
            **figures,
        )

    def to_dict(self) -> dict:
        """For XCom: dates and times as ISO strings."""
        return {
            name: value.isoformat() if isinstance(value, dt.date) else value
            for name, value in asdict(self).items()
        }


@dataclass(frozen=True)
class Check:
    """A completed catch-up's record: the warehouse was level with the source as of
    ``source_rows_updated_at`` (the metadata's last data change); nothing was loaded."""

    run_id: str
    source_updated_through: dt.datetime | None
    source_rows_updated_at: dt.datetime
    kind: str = "check"


def check_result(
    run_id: str, source_updated_through: dt.datetime | None, source_rows_updated_at: dt.datetime
) -> Check:
    return Check(run_id, source_updated_through, source_rows_updated_at)


def audit_parameters(
    record: MergeResult | Check, loaded_at: dt.datetime
) -> list[tuple[str, str, object]]:
    """The load_audit row of a load or a check (which counts no rows: 0 each, and no bytes), as
    (column, BigQuery type, value) per column."""
    values = {
        name: getattr(record, name, 0 if name.startswith("rows_") else None)
        for name in AUDIT_COLUMNS
    }
    values["loaded_at"] = loaded_at
    return [(name, kind, values[name]) for name, kind in AUDIT_COLUMNS.items()]


@dataclass(frozen=True)
class SourceState:
    """What the loads so far saw of the source (UTC): the latest ``source_rows_updated_at`` any
    load or check recorded, the latest a completed catch-up recorded, when the first load ran."""

    rows_updated_at: dt.datetime | None
    caught_up_at: dt.datetime | None
    first_loaded_at: dt.datetime | None
