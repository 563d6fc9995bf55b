"""Where notifications go and how they are delivered: e-mail through an SMTP connection
(apache-airflow-providers-smtp), Slack through a webhook connection (providers-slack), any apprise
target (providers-apprise), each through that provider's notifier.

A channel that cannot deliver (connection missing, host refusing, a webhook answering 500) logs
one warning naming its connection and never fails the task or run it reports on.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfpd.config import ConfigError

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier

    from sfpd.config import Settings

log = logging.getLogger(__name__)


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


def _notifier(module: str, name: str, **arguments: Any) -> Callable[[], BaseNotifier]:
    """A provider's notifier, built when called: parsing a DAG file never imports a provider."""
    return lambda: getattr(importlib.import_module(module), name)(**arguments)


class Delivery:
    """One message on one channel: success is logged; a failure is one warning, never raised."""

    def __init__(self, message: Message, channel: str, conn_id: str) -> None:
        self.message, self.channel, self.conn_id = message, channel, conn_id
        self.sent = False

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, _: object) -> bool:
        where = (self.message.subject, self.channel, self.conn_id)
        if error is None:
            self.sent = True
            log.info("Alert %r sent by %s (connection %r)", *where)
        elif isinstance(error, Exception):  # an alert must never fail what it reports on
            log.warning("Alert %r not sent by %s through connection %r: %s", *where,
                        f"{type(error).__name__}: {error}")  # fmt: skip
        return isinstance(error, Exception)


@dataclass(frozen=True)
class Channels:
    """Where notifications go. Empty: nowhere (the DAGs then carry no callbacks)."""

    emails: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    slack_conn_id: str | None = None
    apprise_conn_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.emails or self.slack_conn_id or self.apprise_conn_id)

    def _deliveries(self, message: Message) -> Iterator[tuple[Delivery, Callable[[], Any]]]:
        """A :class:`Delivery` and the provider's notifier per configured channel."""
        if self.emails:
            yield Delivery(message, "e-mail", self.smtp_conn_id), _notifier(
                "airflow.providers.smtp.notifications.smtp", "SmtpNotifier",
                to=list(self.emails), subject=message.subject, html_content=message.html(),
                smtp_conn_id=self.smtp_conn_id,
            )  # fmt: skip
        if self.slack_conn_id:
            yield Delivery(message, "Slack", self.slack_conn_id), _notifier(
                "airflow.providers.slack.notifications.slack_webhook", "SlackWebhookNotifier",
                slack_webhook_conn_id=self.slack_conn_id, text=message.text(),
            )  # fmt: skip
        if self.apprise_conn_id:
            yield Delivery(message, "apprise", self.apprise_conn_id), _notifier(
                "airflow.providers.apprise.notifications.apprise", "AppriseNotifier",
                title=message.subject, body=message.body(), apprise_conn_id=self.apprise_conn_id,
            )  # fmt: skip

    def send(self, message: Message, context: Any = None) -> int:
        """Sends ``message`` on every channel; the number of channels it reached."""
        sent = 0
        for delivery, notifier in self._deliveries(message):
            with delivery:  # notify(), not __call__: the message is final, not a template
                notifier().notify(context or {})
            sent += delivery.sent
        return sent

    async def asend(self, message: Message, context: Any = None) -> int:
        """:meth:`send` from a coroutine (the triggerer, where Deadline Alerts run)."""
        sent = 0
        for delivery, notifier in self._deliveries(message):
            with delivery:
                await notifier().async_notify(context or {})
            sent += delivery.sent
        return sent


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
