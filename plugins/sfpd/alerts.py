"""Notifications to whoever runs the pipeline: a failed task (after its retries), a failed run,
a late daily run, a stale source and the end of a backfill.

Each message is composed here from the callback's context and sent through the channels the
settings configure (:mod:`sfpd.channels`; README, "Operating it"); with no channel configured the
DAGs get no callbacks at all (said once in the log when a DAG file is parsed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from sfpd.channels import Channels, Message, channels_for
from sfpd.window import rolling_window, run_anchor

if TYPE_CHECKING:
    from sfpd.config import Settings

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[sfpd-incidents]"


class Alert(BaseNotifier):
    """Airflow's notifier interface (``on_failure_callback=Alert(...)``): composes the message
    from the callback's context, then sends it through the channels."""

    def __init__(self, channels: Channels, compose: Callable[[Any], Message]) -> None:
        super().__init__()
        self.channels = channels
        self.compose = compose

    def notify(self, context: Any) -> None:
        try:
            message = self.compose(context)
        except Exception:  # a context without a field must not lose the alert
            log.exception("Could not compose the alert; sending the bare facts")
            message = Message(f"{SUBJECT_PREFIX} Something failed", _run_fields(context))
        self.channels.send(message, context)


def _get(context: Any, key: str) -> Any:
    return (context or {}).get(key)


def _window(context: Any) -> str:
    """The run's incident dates: a backfill's range from its params, else the daily window."""
    params = _get(context, "params") or {}
    if "start_date" in params:
        return f"{params['start_date']} to {params.get('end_date') or 'today'} (backfill range)"
    dag_run = _get(context, "dag_run")
    anchor = run_anchor(
        _get(context, "data_interval_end"),
        _get(context, "logical_date"),
        getattr(dag_run, "run_after", None) or _get(context, "run_after"),
    )
    if anchor is None:
        return "unknown"
    window = rolling_window(anchor)
    return f"[{window.start}, {window.end})"


def _dag_id(context: Any) -> str:
    dag = _get(context, "dag")
    ti = _get(context, "ti")
    return getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?"


def _run_fields(context: Any) -> tuple[tuple[str, str], ...]:
    return (
        ("DAG", _dag_id(context)),
        ("Run", str(_get(context, "run_id"))),
        ("Window", _window(context)),
    )


def first_line(error: object) -> str:
    """The first non-empty line of an error, with its type."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if isinstance(error, BaseException) else line


def task_failed(context: Any) -> Message:
    """A task failed after its retries."""
    ti = context["ti"]
    task = ti.task_id if ti.map_index in (None, -1) else f"{ti.task_id}[{ti.map_index}]"
    return Message(
        f"{SUBJECT_PREFIX} Task failed: {_dag_id(context)}.{task}",
        (
            *_run_fields(context),
            ("Task", task),
            ("Try", str(ti.try_number)),
            ("Error", first_line(_get(context, "exception") or "(no exception in the context)")),
            ("Log", ti.log_url),
        ),
    )


def run_failed(context: Any) -> Message:
    """A DAG run failed: the task it failed on (the run-level callback's context holds the
    last failed task, not its exception)."""
    ti = _get(context, "ti")
    fields = [*_run_fields(context), ("Reason", str(_get(context, "reason")))]
    if ti is not None:
        fields += [("Failed task", ti.task_id), ("Try", str(ti.try_number)), ("Log", ti.log_url)]
    return Message(f"{SUBJECT_PREFIX} Run failed: {_dag_id(context)}", tuple(fields))


def stale_since(
    published_at: dt.datetime | None, now: dt.datetime, limit: dt.timedelta
) -> dt.datetime | None:
    """``published_at`` if the source has been silent longer than ``limit`` (naive UTC)."""
    return published_at if published_at and now - published_at > limit else None


def source_stale(
    dataset_id: str, published_at: dt.datetime, now: dt.datetime, limit: dt.timedelta
) -> Message:
    """The source's metadata says nothing was published for longer than ``limit`` (UTC)."""
    return Message(
        f"{SUBJECT_PREFIX} DataSF has not published {dataset_id} since "
        f"{published_at:%Y-%m-%d %H:%M} UTC",
        (
            ("Dataset", dataset_id),
            ("Last published", f"{published_at:%Y-%m-%d %H:%M} UTC"),
            ("Silent for", _days(now - published_at)),
            ("Threshold", _days(limit)),
            ("Effect", "the run succeeded; the marts hold nothing newer than that"),
        ),
    )


def _days(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def backfill_ended(context: Any, failed: bool) -> Message:
    """A backfill run ended: its chunks and the rows its merged chunks read and changed, from
    the XComs of plan_chunks and of each chunk.merge (those that ran)."""
    from sfpd.backfill import summarise

    ti = context["ti"]
    batches = ti.xcom_pull(task_ids="plan_chunks") or []
    merged = (
        ti.xcom_pull(task_ids="chunk.merge", map_indexes=list(range(len(batches))))
        if batches
        else []
    )
    totals = summarise(result for result in merged or [] if result)
    fields = [
        *_run_fields(context),
        ("Chunks merged", f"{totals.pop('chunks')} of {sum(len(batch) for batch in batches)}"),
        *((name.replace("_", " ").capitalize(), f"{value:,}") for name, value in totals.items()),
    ]
    if failed:
        fields += run_failed(context).fields[len(_run_fields(context)) :]
    outcome = "failed" if failed else "succeeded"
    return Message(f"{SUBJECT_PREFIX} Backfill {outcome}: {_dag_id(context)}", tuple(fields))


def task_callbacks(settings: Settings) -> dict[str, Any]:
    """``default_args`` entries: every task (Cosmos's dbt tasks too) alerts when it fails after
    its retries; nothing when no channel is configured."""
    channels = channels_for(settings)
    return {"on_failure_callback": [Alert(channels, task_failed)]} if channels else {}


def run_callbacks(settings: Settings) -> dict[str, Any]:
    """The daily DAG's ``@dag`` arguments: a failed run alerts once, a run not succeeded
    SFPD_LATE_AFTER_HOURS after it was queued (a scheduled run is queued at its schedule)
    alerts once (:func:`run_late`, a Deadline Alert); nothing when no channel is configured."""
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    channels = channels_for(settings)
    if not channels:
        return {}
    late = AsyncCallback(
        run_late, kwargs={**dataclasses.asdict(channels), "late_after": str(settings.late_after)}
    )
    return {
        "on_failure_callback": Alert(channels, run_failed),
        # DAGRUN_QUEUED_AT, not DAGRUN_LOGICAL_DATE: on Airflow 3.1 the latter refuses to create
        # a run without a logical date (the UI's Trigger with no date)
        "deadline": DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=settings.late_after,
            callback=late,
        ),
    }


def late_message(context: dict, late_after: str) -> Message:
    """A run past its deadline; ``context`` is what Airflow gives a Deadline Alert's callback:
    the run as the REST API shows it and the deadline (no task, no exception)."""
    from airflow.configuration import conf

    run, deadline = context.get("dag_run") or {}, context.get("deadline") or {}
    dag_id, run_id = run.get("dag_id", "?"), run.get("dag_run_id", "?")
    when = {k: dt.datetime.fromisoformat(run[k]) if run.get(k) else None
            for k in ("data_interval_end", "logical_date", "run_after")}  # fmt: skip
    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    return Message(
        f"{SUBJECT_PREFIX} Run late: {dag_id} has not succeeded {late_after} after it was queued",
        (
            ("DAG", dag_id),
            ("Run", run_id),
            ("Window", _window(when)),
            ("State", str(run.get("state"))),
            ("Queued at", str(run.get("queued_at"))),
            ("Deadline", str(deadline.get("deadline_time"))),
            ("Run in the UI", f"{base_url}/dags/{dag_id}/runs/{quote(run_id)}"),
        ),
    )


async def run_late(context: dict | None = None, late_after: str = "", **channels: Any) -> None:
    """The Deadline Alert's callback: runs in the triggerer (so it lives in plugins/, which the
    triggerer imports), sends :func:`late_message` through the channels."""
    fields = {**channels, "emails": tuple(channels.get("emails") or ())}
    await Channels(**fields).asend(late_message(context or {}, late_after), context)


def backfill_callbacks(settings: Settings) -> dict[str, Any]:
    """The backfill DAG's ``@dag`` arguments: one summary when a run ends, success or failure
    (on failure, the task it failed on)."""
    channels = channels_for(settings)
    if not channels:
        return {}
    return {
        "on_success_callback": Alert(channels, functools.partial(backfill_ended, failed=False)),
        "on_failure_callback": Alert(channels, functools.partial(backfill_ended, failed=True)),
    }
