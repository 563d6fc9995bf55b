"""What a load must hold to: the staged rows before its MERGE, its counts after it."""

from __future__ import annotations

from sfpd.warehouse.records import Changes
from sfpd.window import Scope


class StagingRejected(RuntimeError):
    """The staged window is not fit to merge; the raw table was left unchanged."""


class LakeUnreadable(StagingRejected):
    """A lake file of the extract could not be read (gone, cut short, not Parquet)."""

    def __init__(self, uris: list[str], error: object) -> None:
        folder = uris[0].rsplit("/", 1)[0] + "/" if uris else "(none)"
        super().__init__(
            f"The extract's lake files ({len(uris)} in {folder}) cannot be read: {error}. The "
            "extract task wrote them: clear it (or the whole run) so that it writes the "
            "window's files again; the raw table was not changed"
        )


def refuse_unfit_staging(
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


def checked_changes(
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
