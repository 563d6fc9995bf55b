"""Notifications to whoever runs the pipeline: a failed task (after its retries), a failed run,
a late daily run, a stale source and the end of a backfill.

The channels come from the settings (README, "Operating it"): e-mail through an SMTP connection
(apache-airflow-providers-smtp), Slack through a webhook connection (providers-slack), any apprise
target (providers-apprise). Each message goes through that provider's notifier; with no channel
configured the DAGs get no callbacks at all (said once in the log when a DAG file is parsed).

A channel that cannot deliver (connection missing, host refusing, a webhook answering 500) logs
one warning naming its connection and never fails the task or run it reports on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from sfpd.config import ConfigError
from sfpd.window import rolling_window, run_anchor

if TYPE_CHECKING:
    from sfpd.config import Settings

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[sfpd-incidents]"


@dataclass(frozen=True)
class Message:
    """A notification: a subject and labelled fields, as text (Slack, apprise) or HTML (e-mail)."""

    subject: str
    fields: tuple[tuple[str, str], ...]

    def body(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.fields)

    def text(self) -> str:
        return f"{self.subject}\n{self.body()}"

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in self.fields
        )
        return f"<p>{html.escape(self.subject)}</p><table>{rows}</table>"


@dataclass(frozen=True)
class Channels:
    """Where notifications go. Empty: nowhere (the DAGs then carry no callbacks)."""

    emails: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    slack_conn_id: str | None = None
    apprise_conn_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.emails or self.slack_conn_id or self.apprise_conn_id)

    def _notifiers(self, message: Message) -> list[tuple[str, str, Callable[[], BaseNotifier]]]:
        """(channel, connection id, the provider's notifier) per configured channel; built when
        sent, so parsing a DAG file never imports the providers."""
        notifiers = []
        if self.emails:

            def smtp() -> BaseNotifier:
                from airflow.providers.smtp.notifications.smtp import SmtpNotifier

                return SmtpNotifier(
                    to=list(self.emails),
                    subject=message.subject,
                    html_content=message.html(),
                    smtp_conn_id=self.smtp_conn_id,
                )

            notifiers.append(("e-mail", self.smtp_conn_id, smtp))
        if self.slack_conn_id:

            def slack() -> BaseNotifier:
                from airflow.providers.slack.notifications.slack_webhook import (
                    SlackWebhookNotifier,
                )

                return SlackWebhookNotifier(
                    slack_webhook_conn_id=self.slack_conn_id, text=message.text()
                )

            notifiers.append(("Slack", self.slack_conn_id, slack))
        if self.apprise_conn_id:

            def apprise() -> BaseNotifier:
                from airflow.providers.apprise.notifications.apprise import AppriseNotifier

                return AppriseNotifier(
                    title=message.subject,
                    body=message.body(),
                    apprise_conn_id=self.apprise_conn_id,
                )

            notifiers.append(("apprise", self.apprise_conn_id, apprise))
        return notifiers

    def send(self, message: Message, context: Any = None) -> int:
        """Sends ``message`` on every channel; the number of channels it reached. A channel that
        fails is one warning, never an exception."""
        sent = 0
        for channel, conn_id, notifier in self._notifiers(message):
            try:
                # notify(), not the notifier's __call__: the message is final, not a template
                notifier().notify(context or {})
            except Exception as exc:  # an alert must never fail what it reports on
                _not_sent(message, channel, conn_id, exc)
            else:
                sent += _sent(message, channel, conn_id)
        return sent

    async def asend(self, message: Message, context: Any = None) -> int:
        """:meth:`send` from a coroutine (the triggerer, where Deadline Alerts run)."""
        sent = 0
        for channel, conn_id, notifier in self._notifiers(message):
            try:
                await notifier().async_notify(context or {})
            except Exception as exc:  # an alert must never fail what it reports on
                _not_sent(message, channel, conn_id, exc)
            else:
                sent += _sent(message, channel, conn_id)
        return sent


def _sent(message: Message, channel: str, conn_id: str) -> int:
    log.info("Alert %r sent by %s (connection %r)", message.subject, channel, conn_id)
    return 1


def _not_sent(message: Message, channel: str, conn_id: str, exc: Exception) -> None:
    log.warning(
        "Alert %r not sent by %s through connection %r: %s",
        message.subject, channel, conn_id, f"{type(exc).__name__}: {exc}",
    )  # fmt: skip


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


_said_no_channel = False


def channels_for(settings: Settings) -> Channels:
    """The configured channels; with none, says so in the log once per process."""
    global _said_no_channel
    channels = Channels(
        settings.alert_emails,
        settings.alert_smtp_conn_id,
        settings.alert_slack_conn_id,
        settings.alert_apprise_conn_id,
    )
    for conn_id, module, provider in (
        (channels.slack_conn_id, "airflow.providers.slack", "apache-airflow-providers-slack"),
        (channels.apprise_conn_id, "airflow.providers.apprise", "apache-airflow-providers-apprise"),
    ):
        if conn_id and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"Alerts through connection {conn_id!r} need {provider}: add it to requirements.txt"
            )
    if not channels and not _said_no_channel:
        _said_no_channel = True
        log.info(
            "No alert channel configured (SFPD_ALERT_EMAILS, SFPD_ALERT_SLACK_CONN_ID, "
            "SFPD_ALERT_APPRISE_CONN_ID): failures, late runs and a stale source show in the UI "
            "and the logs only"
        )
    return channels


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
