import datetime as dt
import itertools

import pytest

from sfpd.backfill import BackfillParamError, batches, plan_backfill, summarise
from sfpd.window import Window

TODAY = dt.date(2026, 11, 23)
d = dt.date.fromisoformat


def spans(windows):
    return [(w.start.isoformat(), w.end.isoformat()) for w in windows]


def test_months_are_cut_at_calendar_months():
    assert spans(plan_backfill("2018-11-15", "2019-02-10", "month", TODAY)) == [
        ("2018-11-15", "2018-12-01"),
        ("2018-12-01", "2019-01-01"),
        ("2019-01-01", "2019-02-01"),
        ("2019-02-01", "2019-02-10"),
    ]


def test_weeks_start_on_monday_and_quarters_on_quarter_days():
    weeks = plan_backfill("2024-02-28", "2024-03-12", "week", TODAY)  # 2024-03-04 is a Monday
    assert spans(weeks) == [
        ("2024-02-28", "2024-03-04"),
        ("2024-03-04", "2024-03-11"),
        ("2024-03-11", "2024-03-12"),
    ]
    quarters = plan_backfill("2018-01-01", "2018-12-31", "quarter", TODAY)
    assert [w.start.isoformat() for w in quarters] == [
        "2018-01-01", "2018-04-01", "2018-07-01", "2018-10-01",
    ]  # fmt: skip


def test_chunks_tile_the_range_without_gaps_or_overlaps():
    windows = plan_backfill("2018-01-01", "2026-11-23", "month", TODAY)
    assert windows[0].start == d("2018-01-01") and windows[-1].end == d("2026-11-23")
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert len(windows) == 8 * 12 + 11


def test_accepts_dates_and_tomorrow():
    assert plan_backfill(d("2026-11-01"), "2026-11-24", "month", TODAY) == [
        Window(d("2026-11-01"), d("2026-11-24"))
    ]


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_an_empty_end_date_means_through_today(blank):
    windows = plan_backfill("2026-10-15", blank, "month", TODAY)
    assert spans(windows) == [("2026-10-15", "2026-11-01"), ("2026-11-01", "2026-11-24")]


def test_summary_adds_up_the_chunks():
    def result(read, inserted, updated, deleted):
        return {"rows_read": read, "rows_rejected": read - inserted - updated,
                "rows_inserted": inserted, "rows_updated": updated, "rows_deleted": deleted,
                "window_start": "2019-01-01"}  # fmt: skip

    assert summarise([result(10, 7, 2, 1), result(5, 5, 0, 3)]) == {
        "chunks": 2, "rows_read": 15, "rows_rejected": 1,
        "rows_inserted": 12, "rows_updated": 2, "rows_deleted": 4,
    }  # fmt: skip
    # a list per merge task; a one-task backfill's list is handed over as it is
    assert summarise([[result(10, 7, 2, 1)], [result(5, 5, 0, 3)]]) == summarise(
        [result(10, 7, 2, 1), result(5, 5, 0, 3)]
    )


@pytest.mark.parametrize(
    ("chunks", "sizes"),
    [(107, [7] * 15 + [2]), (16, [1] * 16), (14, [1] * 14), (1, [1]), (17, [2] * 8 + [1])],
)
def test_chunks_go_to_at_most_16_tasks_in_consecutive_runs(chunks, sizes):
    windows = plan_backfill("2018-01-01", None, "month", TODAY)[:chunks]
    assert len(windows) == chunks
    groups = batches(windows)
    assert [len(group) for group in groups] == sizes
    assert [w for group in groups for w in group] == windows  # all, once, in order


@pytest.mark.parametrize(
    ("start", "end", "chunk", "message"),
    [
        ("2018-1-1x", "2019-01-01", "month", "start_date: '2018-1-1x' is not a date"),
        ("2019-01-01", "2019-13-01", "month", "end_date: '2019-13-01' is not a date"),
        ("2019-01-01'; DROP TABLE x; --", "2019-02-01", "month", "start_date: .* is not a date"),
        ("2017-12-31", "2019-01-01", "month", "start_date: 2017-12-31 is before the dataset"),
        ("2026-11-01", "2026-11-25", "month", "end_date: 2026-11-25 is after tomorrow"),
        ("2019-01-01", "2019-01-01", "month", "end_date: 2019-01-01 must be after start_date"),
        ("2019-02-01", "2019-01-01", "month", "end_date: 2019-01-01 must be after start_date"),
        ("2019-01-01", "2019-02-01", "day", "chunk: 'day' is not one of week, month, quarter"),
    ],
)
def test_bad_values_are_refused_naming_the_param(start, end, chunk, message):
    with pytest.raises(BackfillParamError, match=message):
        plan_backfill(start, end, chunk, TODAY)
