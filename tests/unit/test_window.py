import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sfpd.window import (
    Days,
    UpdatedBetween,
    Window,
    day_windows,
    fixed_timestamp,
    months_before,
    months_touched,
    parse_fixed_timestamp,
    rolling_window,
    run_anchor,
    scope_from_dict,
)

UTC = dt.UTC
LA = ZoneInfo("America/Los_Angeles")


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.mark.parametrize(
    ("day", "start"),
    [
        ("2024-05-15", "2024-03-15"),
        ("2024-01-10", "2023-11-10"),  # across a year
        ("2024-04-30", "2024-02-29"),  # month end into a leap February
        ("2023-04-30", "2023-02-28"),  # ... and a common one
        ("2024-04-29", "2024-02-29"),  # the leap day itself
        ("2024-03-31", "2024-01-31"),
        ("2024-12-31", "2024-10-31"),
        ("2025-05-31", "2025-03-31"),
        ("2024-02-29", "2023-12-29"),  # from a leap day
    ],
)
def test_months_before_clamps_to_month_end(day, start):
    assert months_before(d(day), 2) == d(start)


def test_window_ends_at_the_san_francisco_date_of_the_anchor():
    # 2024-06-01 05:00 UTC is still 2024-05-31 in San Francisco (PDT, UTC-7)
    assert rolling_window(dt.datetime(2024, 6, 1, 5, tzinfo=UTC)) == Window(
        d("2024-03-31"), d("2024-05-31")
    )
    assert rolling_window(dt.datetime(2024, 6, 1, 7, tzinfo=UTC)).end == d("2024-06-01")


@pytest.mark.parametrize(
    ("anchor_utc", "end"),
    [
        # DST starts 2024-03-10 at 02:00 PST (10:00 UTC): before and after the jump
        (dt.datetime(2024, 3, 10, 7, 59, tzinfo=UTC), "2024-03-09"),  # 23:59 PST
        (dt.datetime(2024, 3, 10, 8, 0, tzinfo=UTC), "2024-03-10"),  # 00:00 PST
        (dt.datetime(2024, 3, 11, 6, 59, tzinfo=UTC), "2024-03-10"),  # 23:59 PDT
        (dt.datetime(2024, 3, 11, 7, 0, tzinfo=UTC), "2024-03-11"),  # 00:00 PDT
        # DST ends 2024-11-03 at 02:00 PDT: midnight is 07:00 UTC before, 08:00 UTC after
        (dt.datetime(2024, 11, 3, 6, 59, tzinfo=UTC), "2024-11-02"),
        (dt.datetime(2024, 11, 3, 7, 0, tzinfo=UTC), "2024-11-03"),
        (dt.datetime(2024, 11, 4, 7, 59, tzinfo=UTC), "2024-11-03"),
        (dt.datetime(2024, 11, 4, 8, 0, tzinfo=UTC), "2024-11-04"),
    ],
)
def test_window_end_across_dst_changes(anchor_utc, end):
    window = rolling_window(anchor_utc)
    assert window.end == d(end)
    assert window.start == months_before(d(end), 2)


def test_the_scheduled_run_time_gives_whole_days():
    # The daily schedule fires at 06:00 San Francisco time.
    anchor = dt.datetime(2019, 1, 1, 6, tzinfo=LA)
    window = rolling_window(anchor)
    assert window == Window(d("2018-11-01"), d("2019-01-01"))
    assert window.label == "2018-11-01_2019-01-01"
    assert window.soql_where() == (
        "incident_datetime >= '2018-11-01T00:00:00' AND incident_datetime < '2019-01-01T00:00:00'"
    )


def test_round_trips_through_xcom():
    window = Window(d("2024-01-01"), d("2024-03-01"))
    assert Window.from_dict(window.to_dict()) == window


def test_refuses_naive_anchor_and_empty_window():
    with pytest.raises(ValueError, match="timezone-aware"):
        rolling_window(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="after its start"):
        Window(d("2024-01-02"), d("2024-01-02"))
    with pytest.raises(ValueError, match="at least 1"):
        rolling_window(dt.datetime(2024, 1, 1, tzinfo=UTC), months=0)


def test_a_run_anchors_on_its_interval_end_else_its_logical_date_else_when_triggered():
    scheduled = dt.datetime(2026, 11, 25, 6, tzinfo=LA)
    triggered = dt.datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # already the 25th in SF, 15:30
    assert run_anchor(scheduled, scheduled, triggered) == scheduled
    assert run_anchor(None, scheduled, triggered) == scheduled
    # no logical date (UI Trigger with the date left empty, REST logical_date: null)
    anchor = run_anchor(None, None, triggered)
    assert anchor == triggered
    assert rolling_window(anchor) == Window(d("2026-09-25"), d("2026-11-25"))
    # late evening in San Francisco is already tomorrow in UTC: the window ends at the SF date
    late = dt.datetime(2026, 11, 26, 7, 30, tzinfo=UTC)  # 23:30 on the 25th in SF
    assert rolling_window(run_anchor(None, None, late)).end == d("2026-11-25")


def test_day_windows_are_the_runs_of_consecutive_days():
    days = [dt.date(2019, 3, 1), dt.date(2019, 2, 28), dt.date(2019, 3, 5), dt.date(2019, 3, 1)]
    assert day_windows(days) == [
        Window(dt.date(2019, 2, 28), dt.date(2019, 3, 2)),
        Window(dt.date(2019, 3, 5), dt.date(2019, 3, 6)),
    ]
    assert day_windows([]) == []


def test_the_months_a_load_touched_are_its_dates_and_those_of_rows_found_beyond_them():
    window = Window(dt.date(2019, 10, 15), dt.date(2019, 12, 1))  # ends on a month's first day
    moved_from = [dt.date(2018, 12, 24), dt.date(2018, 12, 3)]
    assert months_touched(window, moved_from) == [
        dt.date(2018, 12, 1), dt.date(2019, 10, 1), dt.date(2019, 11, 1)
    ]  # fmt: skip
    days = Days((dt.date(2019, 1, 31), dt.date(2019, 2, 1), dt.date(2019, 6, 30)))
    assert months_touched(days, []) == [dt.date(2019, m, 1) for m in (1, 2, 6)]
    # rows changed upstream: their dates alone
    changed = UpdatedBetween(dt.datetime(2019, 12, 1), dt.datetime(2019, 12, 2))
    assert months_touched(changed, [dt.date(2019, 3, 9)]) == [dt.date(2019, 3, 1)]
    assert months_touched(changed, []) == []


def test_a_catch_up_reads_changes_between_two_source_times_whatever_their_date():
    after, through = dt.datetime(2026, 11, 25, 10), dt.datetime(2026, 11, 26, 9, 30, 0, 123000)
    changes = UpdatedBetween(after, through)
    assert changes.soql_where() == (
        ":updated_at > '2026-11-25T10:00:00.000Z' AND :updated_at <= '2026-11-26T09:30:00.123Z'"
    )
    assert scope_from_dict(changes.to_dict()) == changes
    assert scope_from_dict(Window(after.date(), through.date()).to_dict()) == Window(
        after.date(), through.date()
    )
    assert parse_fixed_timestamp("2026-11-26T09:30:00.123Z") == through
    assert parse_fixed_timestamp(fixed_timestamp(through)) == through
    with pytest.raises(ValueError, match="must be after"):
        UpdatedBetween(through, after)
