"""A run's loads, independent of Airflow: :class:`Loader` extracts a scope to the lake, then
merges it (:mod:`sfpd.extract`, :mod:`sfpd.warehouse`).

A daily run loads its window, then :meth:`Loader.catch_up` brings in what changed upstream
outside it: the rows whose ``:updated_at`` is after the last catch-up (edited or moved rows,
wherever their date), then the days whose row counts differ from the source's (rows deleted
upstream, or anything the first step could not see) are loaded again as windows.

Before either reads rows, the dataset's metadata says when its data last changed: when nothing
changed since the loads so far read it, the read is skipped (:meth:`Loader.skip_reason`).
The names of the windows and timestamps: docs/how-it-works.md, "Glossary".
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sfpd.config import DEFAULT_MAX_REJECT_SHARE
from sfpd.extract import Extract, extract_to_lake
from sfpd.lake import Lake
from sfpd.socrata import SocrataSource
from sfpd.warehouse import MergeResult, Warehouse, check_result
from sfpd.window import Days, Scope, UpdatedBetween, Window, day_windows, fixed_timestamp

log = logging.getLogger(__name__)

# A catch-up larger than this is logged as a warning: the publisher probably replaced the whole
# dataset (every row gets a new :updated_at), and the run reads all of it once.
CATCH_UP_WARN_ROWS = 50_000
# Days loaded again together: at most this many runs of consecutive days in one load (each is
# a clause of ~90 characters in the request's $where: the URL stays under 8 kB)
RELOAD_RANGES = 60


@dataclass(frozen=True)
class CatchUp:
    """What :meth:`Loader.catch_up` did: the changed rows' merge (None when nothing changed),
    and the days whose counts differed, merged again (one load, see
    :meth:`Loader._days_differing`)."""

    changed: MergeResult | None
    days_differing: int
    reloaded: list[MergeResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        """For XCom."""
        return {
            "changed": self.changed.to_dict() if self.changed else None,
            "days_differing": self.days_differing,
            "reloaded": [result.to_dict() for result in self.reloaded],
        }


@dataclass(frozen=True)
class Loader:
    """One run's loads from ``source`` through ``lake`` into ``warehouse``."""

    source: SocrataSource
    lake: Lake
    warehouse: Warehouse
    dataset_id: str
    run_id: str
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE

    def extract(self, scope: Scope, source_updated_through: dt.datetime | None = None) -> Extract:
        """The scope's rows into the lake (:func:`sfpd.extract.extract_to_lake`)."""
        return extract_to_lake(
            scope, self.source, self.lake, self.dataset_id, self.max_reject_share,
            source_updated_through,
        )  # fmt: skip

    def merge(self, extract: Extract) -> MergeResult:
        """An extract's lake files into the raw table (:meth:`Warehouse.merge_window`)."""
        return self.warehouse.merge_window(
            extract.scope,
            extract.uris,
            rejects_uri=extract.rejects_uri,
            expected_rows=extract.rows,
            rows_read=extract.rows_read,
            run_id=self.run_id,
            source_updated_through=extract.source_updated_through,
            source_rows_updated_at=extract.source_rows_updated_at,
        )

    def load(self, scope: Scope, source_updated_through: dt.datetime | None = None) -> MergeResult:
        """Extract, then merge."""
        return self.merge(self.extract(scope, source_updated_through))

    def skip_reason(self, window: Window) -> str | None:
        """Why the window need not be read, or None to read it.

        It need not when the dataset's data (its metadata's last change) has not changed since
        the loads so far read it, and the warehouse holds every day of the window: days of
        windows loaded before, and days after the first load (their rows were all published
        after it, so the catch-ups brought them in). The catch-up that follows checks on its
        own. Without metadata (any SODA 2.x server need not serve it) it is read.
        """
        changed_at = self.source.rows_updated_at()
        state = self.warehouse.source_state()
        if changed_at is None or state.rows_updated_at is None:
            return None
        if changed_at > state.rows_updated_at:
            return None
        first_day = state.first_loaded_at.date()
        covered = self._covered_days()
        missing = [day for day in window.days() if day not in covered and day <= first_day]
        if missing:
            log.info("Unchanged upstream, but %d day(s) of the window were never loaded",
                     len(missing))  # fmt: skip
            return None
        return (
            f"the dataset's data last changed at {changed_at:%Y-%m-%d %H:%M:%S} UTC, and the "
            f"loads so far read it at {state.rows_updated_at:%Y-%m-%d %H:%M:%S} UTC: nothing "
            "changed upstream since, and the warehouse holds every day of the window"
        )

    def catch_up(self, force: bool = False) -> CatchUp:
        """Bring the raw table level with the source outside the run's window.

        0. When the dataset's metadata says its data has not changed since the last completed
           catch-up read it, there is nothing to do (unless ``force``) but say so: a ``check``
           row in load_audit, the warehouse level with the source as the last one found it (a
           heartbeat: load_audit's freshness then means "the loads stopped", not "the source
           was quiet"). A completed catch-up ends with a ``check`` row that records it.
        1. The rows changed upstream since the watermark (:meth:`Warehouse.watermark`: where
           the last catch-up stopped, or the first load's read), up to the source's latest
           ``:updated_at`` read now, merged on row_id with no date bound. The merge's audit row
           carries the new watermark, so a failed run does not move it.
        2. Per-day row counts, one grouped request, against the raw table's (plus quarantine)
           on the days loaded so far: the differing days, however scattered, are loaded again
           in one load (:class:`sfpd.window.Days`: one extract, one transaction), which
           replaces those days' rows as a window's and deletes rows removed upstream.
        """
        changed_at, state = self.source.rows_updated_at(), self.warehouse.source_state()
        if not force and changed_at and state.caught_up_at and changed_at <= state.caught_up_at:
            log.info(
                "Nothing changed upstream since the last catch-up: the dataset's data last "
                "changed at %s UTC, which that catch-up read", changed_at,
            )  # fmt: skip
            self.warehouse.record(check_result(self.run_id, None, state.caught_up_at))
            return CatchUp(None, 0)
        through = self.source.updated_through()
        changed = self._load_changed(self.warehouse.watermark(), through)
        differing, reloads = self._days_differing()
        reloaded = [self.load(days, through) for days in reloads]
        if changed_at:  # level with the source as of its last data change: the next check's mark
            self.warehouse.record(check_result(self.run_id, through, changed_at))
        return CatchUp(changed, len(differing), reloaded)

    def _load_changed(
        self, after: dt.datetime | None, through: dt.datetime | None
    ) -> MergeResult | None:
        """The rows whose ``:updated_at`` is in ``(after, through]``, merged; None if none."""
        if after is None or through is None:
            log.info("Nothing loaded yet, or an empty source: nothing to catch up")
            return None
        if through <= after:
            log.info("Nothing changed upstream since %s", fixed_timestamp(after))
            return None
        changed = self.load(UpdatedBetween(after, through), through)
        if changed.rows_read > CATCH_UP_WARN_ROWS:
            log.warning(
                "Catch-up: read %d rows changed upstream since %s, more than %d: the publisher "
                "probably replaced the dataset (every row gets a new :updated_at). They were "
                "read once, page by page; the next catch-ups are small again.",
                changed.rows_read, fixed_timestamp(after), CATCH_UP_WARN_ROWS,
            )  # fmt: skip
        return changed

    def _covered_days(self) -> set[dt.date]:
        return {day for window in self.warehouse.covered_windows() for day in window.days()}

    def _days_differing(self) -> tuple[list[dt.date], list[Days]]:
        """The days loaded so far whose row count differs from the source's, and their loads:
        one, whatever their number, unless they make more than :data:`RELOAD_RANGES` runs of
        consecutive days (each is a clause of the request's ``$where``)."""
        covered = self._covered_days()
        upstream, local = self.source.daily_counts(), self.warehouse.daily_counts()
        differing = sorted(day for day in covered if upstream.get(day, 0) != local.get(day, 0))
        ranges = day_windows(differing)
        loads = [
            Days(tuple(day for window in ranges[i : i + RELOAD_RANGES] for day in window.days()))
            for i in range(0, len(ranges), RELOAD_RANGES)
        ]
        if differing:
            rows = sum(upstream.get(day, 0) for day in differing)
            log.warning(
                "%d of %d loaded days differ from the source's counts (first %s, last %s): "
                "loading them again, %d rows in %d load(s)",
                len(differing), len(covered), differing[0], differing[-1], rows, len(loads),
            )  # fmt: skip
        else:
            log.info("All %d loaded days match the source's counts", len(covered))
        return differing, loads
