"""Backfill planning: validate the trigger form's values, split the range into windows.

Pure functions (no Airflow), so a bad value is refused before any work starts, with a message
naming the param. Dates are parsed into ``datetime.date``; nothing from the form reaches SoQL
or SQL as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sfpd.window import Window, months_before

DATASET_START = dt.date(2018, 1, 1)
CHUNKS = ("week", "month", "quarter")


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


def summarise(results: Iterable[dict] | dict) -> dict[str, int]:
    """Totals over the chunks' MERGE results (the dicts the merge task returns). A one-chunk
    backfill's mapped task group hands over its one result itself, not a list of one."""
    results = [results] if isinstance(results, dict) else list(results)
    keys = ("rows_read", "rows_rejected", "rows_inserted", "rows_updated", "rows_deleted")
    totals = {key: sum(result[key] for result in results) for key in keys}
    return {"chunks": len(results), **totals}
