"""Backfill planning: validate the trigger form's values, split the range into windows.

Pure functions (no Airflow), so a bad value is refused before any work starts, with a message
naming the param. Dates are parsed into ``datetime.date``; nothing from the form reaches SoQL
or SQL as text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from sfpd.window import Window, months_before

DATASET_START = dt.date(2018, 1, 1)
CHUNKS = ("week", "month", "quarter")
MAX_CHUNK_TASKS = 16


class BackfillParamError(ValueError):
    """A trigger-form value the backfill refuses; the message names the param."""


def _date(name: str, value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise BackfillParamError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _next_boundary(day: dt.date, chunk: str) -> dt.date:
    """The first chunk boundary after ``day``: next Monday, 1st of next month or quarter."""
    if chunk == "week":
        return day + dt.timedelta(days=7 - day.weekday())
    months = 1 if chunk == "month" else 3 - (day.month - 1) % 3
    return months_before(day.replace(day=1), -months)


def plan_backfill(start_date: object, end_date: object, chunk: str, today: dt.date) -> list[Window]:
    """Windows covering ``[start_date, end_date)``, cut at calendar ``chunk`` boundaries.

    An empty ``end_date`` (None or blank) means through ``today``, i.e. up to tomorrow.
    """
    tomorrow = today + dt.timedelta(days=1)
    start = _date("start_date", start_date)
    blank = end_date is None or str(end_date).strip() == ""
    end = tomorrow if blank else _date("end_date", end_date)
    if chunk not in CHUNKS:
        raise BackfillParamError(f"chunk: {chunk!r} is not one of {', '.join(CHUNKS)}")
    if start < DATASET_START:
        raise BackfillParamError(
            f"start_date: {start} is before the dataset starts ({DATASET_START})"
        )
    if end > tomorrow:
        raise BackfillParamError(f"end_date: {end} is after tomorrow ({tomorrow})")
    if end <= start:
        raise BackfillParamError(f"end_date: {end} must be after start_date {start}")
    windows, cursor = [], start
    while cursor < end:
        stop = min(_next_boundary(cursor, chunk), end)
        windows.append(Window(cursor, stop))
        cursor = stop
    return windows


def batches(windows: list[Window], max_tasks: int = MAX_CHUNK_TASKS) -> list[list[Window]]:
    """The chunks in at most ``max_tasks`` runs of consecutive chunks, as even as can be.

    Each run is one extract task and one merge task. A task costs a process start, the
    imports and the scheduler's turn (~2 s here) whatever its size, and the merges go one at a
    time, so 107 month chunks as 107 merge tasks took longer than the merging itself
    (README, Backfill); each chunk keeps its own window, MERGE and load_audit row.
    """
    size = math.ceil(len(windows) / max_tasks)
    return [windows[i : i + size] for i in range(0, len(windows), size)]


def summarise(results: Iterable) -> dict[str, int]:
    """Totals over the chunks' MERGE results: the dicts the merge tasks return, a list per task
    (Airflow hands over a single mapped task's list as it is, not as a list of one)."""
    flat = [r for item in results for r in (item if isinstance(item, list) else [item])]
    keys = ("rows_read", "rows_rejected", "rows_inserted", "rows_updated", "rows_deleted")
    totals = {key: sum(result[key] for result in flat) for key in keys}
    return {"chunks": len(flat), **totals}
