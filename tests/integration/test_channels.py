"""Notifications delivered for real (sfpd.channels, and sfpd.alerts' notifier): e-mail to an SMTP
server on 127.0.0.1 (aiosmtpd), Slack and apprise to a webhook server on 127.0.0.1, through the
providers' notifiers; and a channel that cannot deliver is one warning, never an exception.
What each message says: tests/unit/test_alerts.py. (That a run's failures reach these from
Airflow's callbacks, once each, is tests/e2e/test_operations.py.)"""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG

from sfpd.alerts import Alert, task_failed
from sfpd.channels import Channels, Message
from sfpd_dev.ports import refusing_port
from tests.alert_servers import SmtpSink, WebhookSink

MESSAGE = Message("[sfpd-incidents] Test <alert>", (("DAG", "sfpd_incidents_daily"), ("Run", "r1")))


@pytest.fixture
def smtp(monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", sink.connection())
        yield sink


@pytest.fixture
def webhook(monkeypatch):
    with WebhookSink() as sink:
        host = sink.url.removeprefix("http://")
        slack = {"conn_type": "slackwebhook", "host": host, "schema": "http", "password": "T/B/X"}
        apprise = {"conn_type": "apprise", "extra": {"config": {"path": f"json://{host}/"}}}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_TEST", json.dumps(slack))
        monkeypatch.setenv("AIRFLOW_CONN_APPRISE_TEST", json.dumps(apprise))
        yield sink


def test_an_email_carries_the_subject_and_every_field(smtp):
    channels = Channels(("ops@example.org", "data@example.org"), smtp_conn_id="smtp_test")
    assert channels.send(MESSAGE) == 1
    (mail,) = smtp.messages
    assert mail["Subject"] == MESSAGE.subject
    assert {a.strip() for a in mail["To"].split(",")} == {"ops@example.org", "data@example.org"}
    body = mail.get_body(("html",)).get_content()
    assert "Test &lt;alert&gt;" in body and "<th align='left'>Run</th><td>r1</td>" in body


def test_slack_and_apprise_post_the_text(webhook):
    channels = Channels(slack_conn_id="slack_test", apprise_conn_id="apprise_test")
    assert channels.send(MESSAGE) == 2
    slack, apprise = sorted(webhook.posts, key=lambda body: b'"text"' not in body)
    assert json.loads(slack)["text"] == MESSAGE.text()
    posted = json.loads(apprise)
    assert posted["title"] == MESSAGE.subject and "Run: r1" in posted["message"]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"smtp_conn_id": "smtp_missing"}, id="no such connection"),
        pytest.param({"smtp_conn_id": "smtp_refused"}, id="nothing listening"),
        pytest.param({"slack_conn_id": "slack_test"}, id="webhook answers 500"),
    ],
)
def test_a_channel_that_cannot_deliver_is_one_warning_naming_its_connection(
    broken, monkeypatch, logs
):
    channels = Channels(("ops@example.org",) if "smtp_conn_id" in broken else (), **broken)
    with WebhookSink(status=500) as failing, refusing_port() as port:
        refused = json.loads(SmtpSink().connection())  # a port nothing listens on
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_REFUSED", json.dumps(refused | {"port": port}))
        host = failing.url.removeprefix("http://")
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_TEST",
            json.dumps({"conn_type": "slackwebhook", "host": host, "schema": "http",
                        "password": "T/B/X"}),
        )  # fmt: skip
        assert channels.send(MESSAGE) == 0
    warnings = logs.messages("sfpd.channels", logging.WARNING)
    (conn_id,) = broken.values()
    assert len(warnings) == 1 and f"through connection {conn_id!r}" in warnings[0]


def test_the_notifier_composes_a_task_failure_from_airflows_context(smtp):
    ti = SimpleNamespace(
        dag_id="sfpd_incidents_daily", task_id="extract", map_index=-1, try_number=3,
        log_url="http://localhost:8080/dags/sfpd_incidents_daily/runs/r1/tasks/extract?try_number=3",
    )  # fmt: skip
    context = {
        "ti": ti,
        "dag": DAG("sfpd_incidents_daily", schedule=None),
        "run_id": "scheduled__2019-01-01",
        "data_interval_end": dt.datetime(2019, 1, 1, 14, tzinfo=dt.UTC),
        "exception": RuntimeError("Socrata answered HTTP 500 for http://x\nTraceback..."),
    }
    Alert(Channels(("ops@example.org",), smtp_conn_id="smtp_test"), task_failed)(context)
    (mail,) = smtp.messages
    assert mail["Subject"] == "[sfpd-incidents] Task failed: sfpd_incidents_daily.extract"
    body = mail.get_body(("html",)).get_content()
    for field in ("scheduled__2019-01-01", "[2018-11-01, 2019-01-01)", ">3<", ti.log_url,
                  "RuntimeError: Socrata answered HTTP 500 for http://x<"):  # fmt: skip
        assert field in body, field
    assert "Traceback" not in body


def test_a_context_the_message_cannot_be_composed_from_still_alerts(smtp, logs):
    channels = Channels(("ops@example.org",), smtp_conn_id="smtp_test")
    Alert(channels, task_failed)({"run_id": "r1"})  # no task instance in the context
    (mail,) = smtp.messages
    assert mail["Subject"] == "[sfpd-incidents] Something failed"
    assert "<th align='left'>Run</th><td>r1</td>" in mail.get_body(("html",)).get_content()
    assert "Could not compose the alert" in logs.text


def test_a_channel_whose_provider_is_missing_is_refused_when_the_dag_is_parsed(monkeypatch):
    import importlib.util

    from sfpd.channels import channels_for
    from sfpd.config import ConfigError, Settings

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if "slack" in name else real(name)
    )
    settings = Settings.from_env({"SFPD_ALERT_SLACK_CONN_ID": "slack_ops"})
    with pytest.raises(ConfigError, match="'slack_ops' need apache-airflow-providers-slack"):
        channels_for(settings)
    assert channels_for(Settings.from_env({"SFPD_ALERT_APPRISE_CONN_ID": "ap"}))
