"""The steps of one window, independent of Airflow: extract to the lake, then merge.

Nothing reaches the warehouse unless the window was read completely: the rows read (loaded and
quarantined) must equal the server's ``count(*)`` for the same ``$where``, and the rows staged
from the lake must equal the rows written to it.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa

from sfpd.lake import Lake
from sfpd.schema import Normalised, Reject, normalise_json
from sfpd.socrata import SocrataSource
from sfpd.warehouse import MergeResult, Warehouse
from sfpd.window import Window

log = logging.getLogger(__name__)

DEFAULT_MAX_REJECT_SHARE = 0.01
REJECTS_SCHEMA = pa.schema([("raw_json", pa.string()), ("reason", pa.string())])
REJECTS_FILE = "rejects.parquet"


class IncompleteRead(RuntimeError):
    """Fewer or more rows were read than the server counts for the window."""


class TooManyRejects(RuntimeError):
    """More rows failed normalisation than the configured share allows."""


@dataclass(frozen=True)
class Extract:
    window: dict[str, str]
    uris: list[str]
    rows: int  # rows written to the lake (normalised)
    rows_read: int  # rows the server sent: written + rejected
    rejects_uri: str
    rejected: int

    def to_dict(self) -> dict:
        return asdict(self)


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
    window: Window,
    source: SocrataSource,
    lake: Lake,
    dataset_id: str,
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE,
) -> Extract:
    """Stream the window's rows page by page into typed Parquet files in the lake, with the
    rows that cannot be normalised in a rejects file beside them."""
    where = window.soql_where()
    expected = source.count(where)
    log.info("Socrata counts %d rows for window %s (%s)", expected, window.label, where)
    rejects: list[Reject] = []
    counts: collections.Counter = collections.Counter()
    written = lake.write_window(
        dataset_id,
        window.label,
        _normalised_pages(source.pages(where, parse=normalise_json), rejects, counts),
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
    return Extract(window.to_dict(), written.uris, written.rows, read, rejects_uri, len(rejects))


def merge_extract(extract: Extract, warehouse: Warehouse, run_id: str) -> MergeResult:
    return warehouse.merge_window(
        Window.from_dict(extract.window),
        extract.uris,
        rejects_uri=extract.rejects_uri,
        expected_rows=extract.rows,
        rows_read=extract.rows_read,
        run_id=run_id,
    )
