"""What one extract reads: a window of incident dates, or the rows changed upstream since the
last catch-up (:class:`UpdatedBetween`, whatever their dates).

A run anchored at instant A covers incidents with ``start <= incident_datetime < end`` where
``end`` is A's calendar date in San Francisco (DataSF timestamps are floating
America/Los_Angeles local times) and ``start`` is the same day two months earlier (clamped to the
month's last day). Whole days, so the window lines up with the raw table's date partitions.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

SF_TZ = ZoneInfo("America/Los_Angeles")
DEFAULT_MONTHS = 2


@dataclass(frozen=True)
class Window:
    start: dt.date  # inclusive
    end: dt.date  # exclusive

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} must be after its start {self.start}")

    def soql_where(self, column: str = "incident_datetime") -> str:
        """SoQL predicate on a floating timestamp column. Dates are formatted, never pasted."""
        return (
            f"{column} >= '{self.start.isoformat()}T00:00:00' "
            f"AND {column} < '{self.end.isoformat()}T00:00:00'"
        )

    @property
    def label(self) -> str:
        """Stable name of the window, used for lake folders."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days)]

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, value: dict[str, str]) -> Window:
        return cls(dt.date.fromisoformat(value["start"]), dt.date.fromisoformat(value["end"]))


def fixed_timestamp(value: dt.datetime) -> str:
    """A naive UTC datetime as a Socrata fixed timestamp ("2026-11-25T10:00:00.000Z")."""
    return value.isoformat(timespec="milliseconds") + "Z"


def parse_fixed_timestamp(value: str) -> dt.datetime:
    """A Socrata fixed timestamp as a naive UTC datetime."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@dataclass(frozen=True)
class UpdatedBetween:
    """The rows whose Socrata ``:updated_at`` is in ``(after, through]``, wherever their incident
    date is: what changed upstream between two catch-ups (UTC, naive)."""

    after: dt.datetime
    through: dt.datetime

    def __post_init__(self) -> None:
        if self.through <= self.after:
            raise ValueError(f"catch-up {self.through} must be after {self.after}")

    def soql_where(self) -> str:
        return (
            f":updated_at > '{fixed_timestamp(self.after)}' "
            f"AND :updated_at <= '{fixed_timestamp(self.through)}'"
        )

    @property
    def label(self) -> str:
        """Name of its lake folder."""
        return f"updated_{self.after:%Y%m%dT%H%M%S%f}_{self.through:%Y%m%dT%H%M%S%f}"

    def to_dict(self) -> dict[str, str]:
        return {
            "updated_after": self.after.isoformat(),
            "updated_through": self.through.isoformat(),
        }


@dataclass(frozen=True)
class Days:
    """Days of incident dates loaded again together, however scattered (the catch-up's days whose
    counts differ from the source's): one extract, one transaction. Each of its runs of
    consecutive days (:attr:`ranges`) is read and replaced as a window's days are."""

    dates: tuple[dt.date, ...]

    def __post_init__(self) -> None:
        if not self.dates or list(self.dates) != sorted(set(self.dates)):
            raise ValueError(f"days must be distinct and in order, not {self.dates}")

    @property
    def ranges(self) -> list[Window]:
        return day_windows(list(self.dates))

    def soql_where(self, column: str = "incident_datetime") -> str:
        return " OR ".join(f"({window.soql_where(column)})" for window in self.ranges)

    @property
    def label(self) -> str:
        """Name of its lake folder: its span, its number of days, and a digest of them."""
        digest = hashlib.sha256(" ".join(map(str, self.dates)).encode()).hexdigest()[:8]
        first, last = self.dates[0], self.dates[-1]
        return f"days_{first.isoformat()}_{last.isoformat()}_{len(self.dates)}_{digest}"

    def to_dict(self) -> dict[str, list[str]]:
        return {"dates": [day.isoformat() for day in self.dates]}


# What one load reads (docs/how-it-works.md, "Glossary"): a window of incident dates, the rows
# changed upstream between two catch-ups, or days loaded again.
Scope = Window | UpdatedBetween | Days


def scope_from_dict(value: dict) -> Scope:
    """A window, a catch-up or days from its ``to_dict()``."""
    if "updated_through" in value:
        return UpdatedBetween(
            dt.datetime.fromisoformat(value["updated_after"]),
            dt.datetime.fromisoformat(value["updated_through"]),
        )
    if "dates" in value:
        return Days(tuple(dt.date.fromisoformat(day) for day in value["dates"]))
    return Window.from_dict(value)


def date_ranges(scope: Scope) -> list[Window]:
    """The runs of incident dates a scope reads and replaces (none for rows changed upstream,
    which are read wherever they are)."""
    if isinstance(scope, Days):
        return scope.ranges
    return [scope] if isinstance(scope, Window) else []


def day_windows(days: list[dt.date]) -> list[Window]:
    """The fewest windows covering exactly these days (runs of consecutive days)."""
    windows: list[Window] = []
    for day in sorted(set(days)):
        if windows and windows[-1].end == day:
            windows[-1] = Window(windows[-1].start, day + dt.timedelta(days=1))
        else:
            windows.append(Window(day, day + dt.timedelta(days=1)))
    return windows


def months_touched(scope: Scope, days: list[dt.date]) -> list[dt.date]:
    """The months (their first days) of a scope's dates and of other days (those of rows found
    beyond them: moved upstream, or a catch-up's)."""
    months = {day.replace(day=1) for day in days}
    for window in date_ranges(scope):
        month = window.start.replace(day=1)
        while month < window.end:
            months.add(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
    return sorted(months)


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to that month's last day."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def run_anchor(
    data_interval_end: dt.datetime | None,
    logical_date: dt.datetime | None,
    run_after: dt.datetime,
) -> dt.datetime:
    """The instant a run's window ends at: its data interval end (a scheduled run: its scheduled
    time; a manual run with a logical date: that date), else its logical date, else, for a run
    triggered without a logical date (the UI's Trigger with the date left empty, the REST API's
    ``logical_date: null``), its ``run_after``: when it was triggered."""
    return data_interval_end or logical_date or run_after


def rolling_window(anchor: dt.datetime, months: int = DEFAULT_MONTHS) -> Window:
    """Window of ``months`` months ending at the San Francisco date of ``anchor`` (exclusive).

    ``anchor`` must be timezone-aware (Airflow's data_interval_end / logical_date are).
    """
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    if months < 1:
        raise ValueError("months must be at least 1")
    end = anchor.astimezone(SF_TZ).date()
    return Window(months_before(end, months), end)
