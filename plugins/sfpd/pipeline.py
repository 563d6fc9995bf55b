"""The steps of one window, independent of Airflow: extract to the lake, then merge."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sfpd.lake import Lake
from sfpd.schema import normalise_page
from sfpd.socrata import SocrataSource
from sfpd.warehouse import MergeResult, Warehouse
from sfpd.window import Window

log = logging.getLogger(__name__)


class IncompleteRead(RuntimeError):
    """Fewer or more rows were read than the server counts for the window."""


@dataclass(frozen=True)
class Extract:
    window: dict[str, str]
    uris: list[str]
    rows: int

    def to_dict(self) -> dict:
        return asdict(self)


def extract_to_lake(window: Window, source: SocrataSource, lake: Lake, dataset_id: str) -> Extract:
    """Stream the window's rows page by page into typed Parquet files in the lake."""
    where = window.soql_where()
    expected = source.count(where)
    log.info("Socrata counts %d rows for window %s (%s)", expected, window.label, where)
    written = lake.write_window(
        dataset_id, window.label, (normalise_page(page) for page in source.pages(where))
    )
    if written.rows != expected:
        raise IncompleteRead(
            f"window {window.label}: read {written.rows} rows but the server counts {expected}; "
            "nothing was merged, retry the task"
        )
    log.info(
        "Wrote %d rows in %d file(s) for window %s", written.rows, len(written.uris), window.label
    )
    return Extract(window.to_dict(), written.uris, written.rows)


def merge_extract(extract: Extract, warehouse: Warehouse) -> MergeResult:
    return warehouse.merge_window(Window.from_dict(extract.window), extract.uris)
