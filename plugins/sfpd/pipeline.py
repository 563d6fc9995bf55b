"""The steps of a load, independent of Airflow: extract to the lake, then merge.

Nothing reaches the warehouse unless the read was complete: the rows read (loaded and
quarantined) must equal the server's ``count(*)`` for the same ``$where``, and the rows staged
from the lake must equal the rows written to it.

A daily run loads its window, then :func:`catch_up` brings in what changed upstream outside it:
the rows whose ``:updated_at`` is after the last catch-up (edited or moved rows, wherever their
date), then the days whose row counts differ from the source's (rows deleted upstream, or
anything the first step could not see) are loaded again as windows.

Before either reads rows, the dataset's metadata says when its data last changed: when nothing
changed since the loads so far read it, the read is skipped (:func:`skip_reason`).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from sfpd.config import DEFAULT_MAX_REJECT_SHARE
from sfpd.lake import Lake
from sfpd.normalise import Normalised, Reject, normalise_json
from sfpd.socrata import SocrataSource
from sfpd.warehouse import MergeResult, Warehouse, check_result
from sfpd.window import UpdatedBetween, Window, day_windows, fixed_timestamp, scope_from_dict

log = logging.getLogger(__name__)

REJECTS_SCHEMA = pa.schema([("raw_json", pa.string()), ("reason", pa.string())])
REJECTS_FILE = "rejects.parquet"


class IncompleteRead(RuntimeError):
    """Fewer or more rows were read than the server counts for the window."""


class TooManyRejects(RuntimeError):
    """More rows failed normalisation than the configured share allows."""


# A catch-up larger than this is logged as a warning: the publisher probably replaced the whole
# dataset (every row gets a new :updated_at), and the run reads all of it once.
CATCH_UP_WARN_ROWS = 50_000


@dataclass(frozen=True)
class ExtractResult:
    window: dict[str, str]  # Window.to_dict() or UpdatedBetween.to_dict()
    uris: list[str]
    rows: int  # rows written to the lake (normalised)
    rows_read: int  # rows the server sent: written + rejected
    rejects_uri: str
    rejected: int
    # the source's latest :updated_at when the read began (ISO, UTC)
    source_updated_through: str | None = None
    # when the source's data last changed, per its metadata, as the read began (ISO, UTC)
    source_rows_updated_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _one_ahead(items: Iterator) -> Iterator:
    """``items``, produced in a thread of their own one item ahead of the consumer: the next page
    is fetched and normalised while this one is written, and no further: the producer starts
    an item only once the consumer took the one before, so at most two pages are in hand. An
    exception in the producer is raised in the consumer; a consumer that stops early stops
    (and closes) the producer."""
    handed: queue.SimpleQueue = queue.SimpleQueue()  # never holds more than one item
    wanted = threading.Semaphore(0)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        iterator = iter(items)
        try:
            while True:
                while not wanted.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(iterator, done)
                handed.put((item, None))
                if item is done:
                    return
        except BaseException as exc:  # handed to the consumer
            handed.put((done, exc))
        finally:
            if stop.is_set() and hasattr(items, "close"):
                items.close()

    producer = threading.Thread(target=produce, name="extract-ahead", daemon=True)
    producer.start()
    try:
        wanted.release()
        while True:
            item, error = handed.get()
            if error is not None:
                raise error
            if item is done:
                return
            wanted.release()  # the next item is made while the consumer works on this one
            yield item
    finally:
        stop.set()
        producer.join()


def _normalised_pages(
    pages: Iterator[Normalised], rejects: list[Reject], counts: collections.Counter
) -> Iterator[pa.Table]:
    """Typed tables of the pages; rejects and unknown fields are collected on the side."""
    unknown: set[str] = set()
    for result in pages:
        counts["read"] += len(result)
        rejects.extend(result.rejects)
        new = result.unknown_fields - unknown
        if new:
            log.warning("Ignoring fields the schema does not know: %s", ", ".join(sorted(new)))
            unknown |= new
        yield result.table


def extract_to_lake(
    window: Window | UpdatedBetween,
    source: SocrataSource,
    lake: Lake,
    dataset_id: str,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
    updated_through: dt.datetime | None = None,
) -> ExtractResult:
    """Stream the window's (or catch-up's) rows page by page into typed Parquet files in the
    lake, with the rows that cannot be normalised in a rejects file beside them.
    ``updated_through``: the source's latest ``:updated_at`` as of the read (asked for when not
    given), recorded with the load, as is the metadata's last data change (read first: a change
    during the read makes the next check read again)."""
    rows_updated_at = source.rows_updated_at()
    if updated_through is None:
        updated_through = (
            window.through if isinstance(window, UpdatedBetween) else source.updated_through()
        )
    where = window.soql_where()
    expected = source.count(where)
    log.info("Socrata counts %d rows for window %s (%s)", expected, window.label, where)
    rejects: list[Reject] = []
    counts: collections.Counter = collections.Counter()
    written = lake.write_window(
        dataset_id,
        window.label,
        _normalised_pages(_one_ahead(source.pages(where, parse=normalise_json)), rejects, counts),
    )
    rejects_table = pa.Table.from_pylist([vars(r) for r in rejects], schema=REJECTS_SCHEMA)
    rejects_uri = lake.write_file(dataset_id, window.label, REJECTS_FILE, rejects_table)
    read = counts["read"]
    if read != expected:
        raise IncompleteRead(
            f"window {window.label}: read {read} rows but the server counts {expected}; "
            "nothing was merged, retry the task"
        )
    if rejects:
        reasons = collections.Counter(r.reason.split(":")[0] for r in rejects)
        log.warning("Quarantined %d of %d rows: %s", len(rejects), read, dict(reasons))
        if len(rejects) > max_reject_share * read:
            raise TooManyRejects(
                f"window {window.label}: {len(rejects)} of {read} rows could not be normalised "
                f"(more than {max_reject_share:.1%}); by field: {dict(reasons)}. They are in "
                f"{rejects_uri}; nothing was merged"
            )
    log.info(
        "Wrote %d rows in %d file(s) for window %s", written.rows, len(written.uris), window.label
    )
    return ExtractResult(
        window.to_dict(),
        written.uris,
        written.rows,
        read,
        rejects_uri,
        len(rejects),
        updated_through.isoformat() if updated_through else None,
        rows_updated_at.isoformat() if rows_updated_at else None,
    )


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def merge_extract(extract: ExtractResult, warehouse: Warehouse, run_id: str) -> MergeResult:
    return warehouse.merge_window(
        scope_from_dict(extract.window),
        extract.uris,
        rejects_uri=extract.rejects_uri,
        expected_rows=extract.rows,
        rows_read=extract.rows_read,
        run_id=run_id,
        source_updated_through=_time(extract.source_updated_through),
        source_rows_updated_at=_time(extract.source_rows_updated_at),
    )


@dataclass(frozen=True)
class CatchUp:
    """What :func:`catch_up` did: the changed rows' merge (None when nothing changed), and the
    windows of days whose counts differed, each merged again."""

    changed: MergeResult | None
    days_differing: int
    reloaded: list[MergeResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def skip_reason(source: SocrataSource, warehouse: Warehouse, window: Window) -> str | None:
    """Why the window need not be read, or None to read it.

    It need not when the dataset's data (its metadata's last change) has not changed since the
    loads so far read it, and the warehouse holds every day of the window: days of windows
    loaded before, and days after the first load (their rows were all published after it, so
    the catch-ups brought them in). The catch-up that follows checks on its own
    (:func:`catch_up`). Without metadata (any SODA 2.x server need not serve it) it is read.
    """
    changed_at = source.rows_updated_at()
    state = warehouse.source_state()
    if changed_at is None or state.rows_updated_at is None or changed_at > state.rows_updated_at:
        return None
    first_day = state.first_loaded_at.date()
    covered = _covered_days(warehouse)
    missing = [day for day in window.days() if day not in covered and day <= first_day]
    if missing:
        log.info("Unchanged upstream, but %d day(s) of the window were never loaded", len(missing))
        return None
    return (
        f"the dataset's data last changed at {changed_at:%Y-%m-%d %H:%M:%S} UTC, and the loads "
        f"so far read it at {state.rows_updated_at:%Y-%m-%d %H:%M:%S} UTC: nothing changed "
        "upstream since, and the warehouse holds every day of the window"
    )


def _covered_days(warehouse: Warehouse) -> set[dt.date]:
    return {day for window in warehouse.covered_windows() for day in window.days()}


def _load(scope, through, source, lake, warehouse, dataset_id, run_id, max_reject_share):
    extract = extract_to_lake(scope, source, lake, dataset_id, max_reject_share, through)
    return merge_extract(extract, warehouse, run_id)


def catch_up(
    source: SocrataSource,
    lake: Lake,
    warehouse: Warehouse,
    dataset_id: str,
    run_id: str,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
    force: bool = False,
) -> CatchUp:
    """Bring the raw table level with the source outside the run's window.

    0. When the dataset's metadata says its data has not changed since the last completed
       catch-up read it, there is nothing to do (unless ``force``). A completed catch-up ends
       with a ``check`` row in load_audit that records it.
    1. The rows changed upstream since the watermark (:meth:`Warehouse.watermark`: where the
       last catch-up stopped, or the first load's read), up to the source's latest
       ``:updated_at`` read now, merged on row_id with no date bound. The merge's audit row
       carries the new watermark, so a failed run does not move it.
    2. Per-day row counts, one grouped request, against the raw table's (plus quarantine) on
       the days loaded so far: each run of differing days is loaded again as a window, which
       deletes rows removed upstream wherever they were.
    """
    args = (source, lake, warehouse, dataset_id, run_id, max_reject_share)
    changed_at, state = source.rows_updated_at(), warehouse.source_state()
    if not force and changed_at and state.caught_up_at and changed_at <= state.caught_up_at:
        log.info(
            "Nothing changed upstream since the last catch-up: the dataset's data last changed "
            "at %s UTC, which that catch-up read", changed_at,
        )  # fmt: skip
        return CatchUp(None, 0)
    after, through = warehouse.watermark(), source.updated_through()
    changed = None
    if after is None or through is None:
        log.info("Nothing loaded yet, or an empty source: nothing to catch up")
    elif through <= after:
        log.info("Nothing changed upstream since %s", fixed_timestamp(after))
    else:
        changed = _load(UpdatedBetween(after, through), through, *args)
        if changed.rows_read > CATCH_UP_WARN_ROWS:
            log.warning(
                "Catch-up: read %d rows changed upstream since %s, more than %d: the publisher "
                "probably replaced the dataset (every row gets a new :updated_at). They were "
                "read once, page by page; the next catch-ups are small again.",
                changed.rows_read, fixed_timestamp(after), CATCH_UP_WARN_ROWS,
            )  # fmt: skip
    differing, windows = _days_differing(source, warehouse)
    reloaded = [_load(window, through, *args) for window in windows]
    if changed_at:  # level with the source as of its last data change: the next check's mark
        warehouse.record(check_result(run_id, through, changed_at))
    return CatchUp(changed, len(differing), reloaded)


def _days_differing(
    source: SocrataSource, warehouse: Warehouse
) -> tuple[list[dt.date], list[Window]]:
    """The days loaded so far whose row count differs from the source's, and the fewest
    windows that cover them."""
    covered = _covered_days(warehouse)
    upstream, local = source.daily_counts(), warehouse.daily_counts()
    differing = sorted(day for day in covered if upstream.get(day, 0) != local.get(day, 0))
    windows = day_windows(differing)
    if differing:
        rows = sum(upstream.get(day, 0) for day in differing)
        log.warning(
            "%d of %d loaded days differ from the source's counts (first %s, last %s): "
            "loading them again, %d rows in %d window(s)",
            len(differing), len(covered), differing[0], differing[-1], rows, len(windows),
        )  # fmt: skip
    else:
        log.info("All %d loaded days match the source's counts", len(covered))
    return differing, windows
