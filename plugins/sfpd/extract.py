"""A load's first step: one scope of the source, page by page, into typed Parquet in the lake.

Nothing reaches the warehouse unless the read was complete: the rows read (written and
quarantined) must equal the server's ``count(*)`` for the same ``$where``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from sfpd.config import DEFAULT_MAX_REJECT_SHARE
from sfpd.lake import Lake
from sfpd.normalise import Normalised, Reject, normalise_json
from sfpd.socrata import SocrataSource
from sfpd.window import Scope, UpdatedBetween, scope_from_dict

log = logging.getLogger(__name__)

REJECTS_SCHEMA = pa.schema([("raw_json", pa.string()), ("reason", pa.string())])
REJECTS_FILE = "rejects.parquet"


class IncompleteRead(RuntimeError):
    """Fewer or more rows were read than the server counts for the scope."""


class TooManyRejects(RuntimeError):
    """More rows failed normalisation than the configured share allows."""


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parsed(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Extract:
    """What an extract wrote to the lake, and the source's state as the read began (UTC):
    ``source_updated_through`` (its latest ``:updated_at``) and ``source_rows_updated_at``
    (when its data last changed, per its metadata); docs/how-it-works.md, "Glossary"."""

    scope: Scope
    uris: list[str]
    rows: int  # rows written to the lake (normalised)
    rows_read: int  # rows the server sent: written + rejected
    rejects_uri: str
    rejected: int
    source_updated_through: dt.datetime | None = None
    source_rows_updated_at: dt.datetime | None = None

    def to_dict(self) -> dict:
        """For XCom (the key ``window`` holds the scope, as the plan tasks name it)."""
        return {
            "window": self.scope.to_dict(),
            "uris": self.uris,
            "rows": self.rows,
            "rows_read": self.rows_read,
            "rejects_uri": self.rejects_uri,
            "rejected": self.rejected,
            "source_updated_through": _time(self.source_updated_through),
            "source_rows_updated_at": _time(self.source_rows_updated_at),
        }

    @classmethod
    def from_dict(cls, value: dict) -> Extract:
        return cls(
            scope_from_dict(value["window"]),
            value["uris"],
            value["rows"],
            value["rows_read"],
            value["rejects_uri"],
            value["rejected"],
            _parsed(value["source_updated_through"]),
            _parsed(value["source_rows_updated_at"]),
        )


def one_ahead(items: Iterator) -> Iterator:
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


def _refuse_rejects(scope: Scope, rejects: list[Reject], read: int, share: float, uri: str) -> None:
    """Log the quarantined rows by reason; more than ``share`` of those read fail the load."""
    if not rejects:
        return
    reasons = collections.Counter(r.reason.split(":")[0] for r in rejects)
    log.warning("Quarantined %d of %d rows: %s", len(rejects), read, dict(reasons))
    if len(rejects) > share * read:
        raise TooManyRejects(
            f"window {scope.label}: {len(rejects)} of {read} rows could not be normalised "
            f"(more than {share:.1%}); by field: {dict(reasons)}. They are in {uri}; nothing "
            "was merged"
        )


def extract_to_lake(
    scope: Scope,
    source: SocrataSource,
    lake: Lake,
    dataset_id: str,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
    source_updated_through: dt.datetime | None = None,
) -> Extract:
    """Stream the scope's rows page by page into typed Parquet files in the lake, with the rows
    that cannot be normalised in a rejects file beside them. ``source_updated_through`` is
    asked for when not given (a catch-up's is its own end); the metadata's last data change is
    read first (a change during the read makes the next check read again)."""
    rows_updated_at = source.rows_updated_at()
    if source_updated_through is None:
        source_updated_through = (
            scope.through if isinstance(scope, UpdatedBetween) else source.updated_through()
        )
    where = scope.soql_where()
    expected = source.count(where)
    log.info("Socrata counts %d rows for window %s (%s)", expected, scope.label, where)
    rejects: list[Reject] = []
    counts: collections.Counter = collections.Counter()
    pages = _normalised_pages(one_ahead(source.pages(where, parse=normalise_json)), rejects, counts)
    written = lake.write_window(dataset_id, scope.label, pages)
    rejects_table = pa.Table.from_pylist([vars(r) for r in rejects], schema=REJECTS_SCHEMA)
    rejects_uri = lake.write_file(dataset_id, scope.label, REJECTS_FILE, rejects_table)
    read = counts["read"]
    if read != expected:
        raise IncompleteRead(
            f"window {scope.label}: read {read} rows but the server counts {expected}; "
            "nothing was merged, retry the task"
        )
    _refuse_rejects(scope, rejects, read, max_reject_share, rejects_uri)
    log.info(
        "Wrote %d rows in %d file(s) for window %s", written.rows, len(written.uris), scope.label
    )
    return Extract(
        scope, written.uris, written.rows, read, rejects_uri, len(rejects),
        source_updated_through, rows_updated_at,
    )  # fmt: skip
