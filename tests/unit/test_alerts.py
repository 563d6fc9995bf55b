"""What each alert says (sfpd.alerts), composed from the context Airflow hands its callback,
built here as Airflow builds it: a failed run (the run-level callback: the last failed task,
no exception), a late run (a Deadline Alert: the run as the REST API shows it, the deadline),
a backfill that ended either way, a stale source. That Airflow calls each once, from the
process it runs it in, is tests/e2e/test_operations.py; the delivery, tests/integration/
test_channels.py."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from airflow.sdk import DAG

from sfpd.alerts import backfill_ended, late_message, run_failed, source_stale
from sfpd.channels import Message

DAILY, BACKFILL = "sfpd_incidents_daily", "sfpd_incidents_backfill"
LOG_URL = "http://localhost:8080/dags/sfpd_incidents_daily/runs/r1/tasks/merge?try_number=3"


def fields(message: Message) -> dict[str, str]:
    return dict(message.fields)


def test_a_failed_run_names_its_window_and_the_task_it_failed_on():
    context = {
        "dag": DAG(DAILY, schedule=None),
        "run_id": "scheduled__2019-01-01T14:00:00+00:00",
        "data_interval_end": dt.datetime(2019, 1, 1, 14, tzinfo=dt.UTC),
        "reason": "task_failure",
        "ti": SimpleNamespace(task_id="merge", try_number=3, log_url=LOG_URL),
    }
    message = run_failed(context)
    assert message.subject == f"[sfpd-incidents] Run failed: {DAILY}"
    assert fields(message) == {
        "DAG": DAILY,
        "Run": "scheduled__2019-01-01T14:00:00+00:00",
        "Window": "[2018-11-01, 2019-01-01)",
        "Reason": "task_failure",
        "Failed task": "merge",
        "Try": "3",
        "Log": LOG_URL,
    }


def test_a_manual_run_without_a_logical_date_is_placed_by_when_it_was_triggered():
    run = SimpleNamespace(run_after=dt.datetime(2026, 12, 7, 20, tzinfo=dt.UTC))
    context = {"dag": DAG(DAILY, schedule=None), "run_id": "manual__x", "dag_run": run}
    assert fields(run_failed(context))["Window"] == "[2026-10-07, 2026-12-07)"


def test_a_late_run_says_how_late_from_what_the_deadline_callback_gets(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    context = {
        "dag_run": {  # GET /api/v2/dags/{dag_id}/dagRuns/{run_id}'s fields
            "dag_id": DAILY,
            "dag_run_id": "scheduled__2019-01-01T14:00:00+00:00",
            "data_interval_end": "2019-01-01T14:00:00Z",
            "logical_date": "2019-01-01T14:00:00Z",
            "run_after": "2019-01-01T14:00:00Z",
            "queued_at": "2019-01-01T14:00:02Z",
            "state": "running",
        },
        "deadline": {"deadline_time": "2019-01-01T17:00:02Z"},
    }
    message = late_message(context, "3:00:00")
    assert message.subject == (
        f"[sfpd-incidents] Run late: {DAILY} has not succeeded 3:00:00 after it was queued"
    )
    assert fields(message) == {
        "DAG": DAILY,
        "Run": "scheduled__2019-01-01T14:00:00+00:00",
        "Window": "[2018-11-01, 2019-01-01)",
        "State": "running",
        "Queued at": "2019-01-01T14:00:02Z",
        "Deadline": "2019-01-01T17:00:02Z",
        "Run in the UI": (
            f"https://airflow.example.org/dags/{DAILY}/runs/scheduled__2019-01-01T14%3A00%3A00%2B00%3A00"
        ),
    }


class BackfillTask:
    """A backfill run's task instance as its callback gets it: the XComs its tasks pushed."""

    def __init__(self, batches: list, merged: list, failed_task: str | None = None) -> None:
        self.xcoms = {"plan_chunks": batches, "chunk.merge": merged}
        self.task_id, self.try_number, self.log_url = failed_task, 1, LOG_URL

    def xcom_pull(self, task_ids: str, map_indexes: list[int] | None = None):
        return self.xcoms[task_ids]


def merge_result(rows: int, inserted: int) -> dict:
    return {"rows_read": rows, "rows_rejected": 0, "rows_inserted": inserted,
            "rows_updated": 0, "rows_deleted": 0}  # fmt: skip


def backfill_context(ti: BackfillTask) -> dict:
    return {
        "dag": DAG(BACKFILL, schedule=None),
        "run_id": "manual__2026-12-07",
        "params": {"start_date": "2019-09-01", "end_date": "2019-12-01"},
        "reason": "task_failure",
        "ti": ti,
    }


def test_a_backfill_that_succeeded_adds_up_its_chunks():
    batches = [[{"start": "2019-09-01"}, {"start": "2019-10-01"}], [{"start": "2019-11-01"}]]
    merged = [[merge_result(208, 208), merge_result(1153, 1150)], merge_result(438, 0)]
    message = backfill_ended(backfill_context(BackfillTask(batches, merged)), failed=False)
    assert message.subject == f"[sfpd-incidents] Backfill succeeded: {BACKFILL}"
    got = fields(message)
    assert got["Window"] == "2019-09-01 to 2019-12-01 (backfill range)"
    assert got["Chunks merged"] == "3 of 3"
    assert (got["Rows read"], got["Rows inserted"]) == ("1,799", "1,358")
    assert "Failed task" not in got


def test_a_backfill_that_failed_says_how_far_it_got_and_where_it_failed():
    batches = [[{"start": "2019-09-01"}, {"start": "2019-10-01"}], [{"start": "2019-11-01"}]]
    merged = [[merge_result(208, 208), merge_result(1153, 1153)], None]  # the second failed
    ti = BackfillTask(batches, merged, failed_task="chunk.merge")
    message = backfill_ended(backfill_context(ti), failed=True)
    assert message.subject == f"[sfpd-incidents] Backfill failed: {BACKFILL}"
    got = fields(message)
    assert got["Chunks merged"] == "2 of 3" and got["Rows read"] == "1,361"
    assert (got["Reason"], got["Failed task"], got["Log"]) == ("task_failure", "chunk.merge",
                                                               LOG_URL)  # fmt: skip


def test_a_stale_source_says_since_when_and_for_how_long():
    message = source_stale(
        "wg3w-h783", dt.datetime(2026, 11, 28, 9), dt.datetime(2026, 12, 4, 21), dt.timedelta(3)
    )
    assert message.subject.endswith("DataSF has not published wg3w-h783 since 2026-11-28 09:00 UTC")
    assert ("Silent for", "6.5 days") in message.fields
