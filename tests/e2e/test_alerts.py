"""Alerts under a real scheduler (api-server, scheduler, dag-processor, triggerer on 127.0.0.1),
e-mailed to a real SMTP server on 127.0.0.1 (aiosmtpd), runs triggered through the REST API.

In one Airflow, one after another:
1. the daily run the scheduler creates when the DAG is unpaused, on the healthy source: it
   succeeds;
2. a daily run whose source answers 500 to every data request: one e-mail for its failed task,
   one for the run (Airflow's callbacks; tasks that never ran send none); then a one-week
   backfill on the healthy source: it succeeds and sends one summary;
3. every daily run not succeeded SFPD_LATE_AFTER_HOURS (here 36 s) after it was queued gets one
   lateness e-mail (a Deadline Alert, sent by the triggerer), a run succeeded before gets none;
   the replayed source last published 2026-01-01: one staleness e-mail a day, runs succeed;
4. the SMTP server stopped: a daily run still succeeds, nothing retried, the failed sends logged.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from sfpd_dev.airflow_local import LocalAirflow
from sfpd_dev.local import airflow_env
from sfpd_dev.replay import Faults, ReplayServer
from tests.alert_servers import SmtpSink
from tests.conftest import FIXTURES, PROJECT_ROOT

pytestmark = pytest.mark.slow

DAILY, BACKFILL = "sfpd_incidents_daily", "sfpd_incidents_backfill"
LATE_AFTER = dt.timedelta(hours=0.01)  # 36 s
MARGIN = dt.timedelta(seconds=15)  # runs ending this close to their deadline are not judged
WAIT = 600


def subjects(smtp: SmtpSink, kind: str) -> list[str]:
    return [s for s in smtp.subjects() if s.startswith(f"[sfpd-incidents] {kind}")]


def bodies(smtp: SmtpSink, subject: str) -> list[str]:
    return [m.get_body(("html",)).get_content() for m in smtp.messages if m["Subject"] == subject]


def body(smtp: SmtpSink, subject: str) -> str:
    (text,) = bodies(smtp, subject)
    return text


@pytest.fixture(scope="module")
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def source():
    with ReplayServer(FIXTURES) as server:
        yield server


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, source, smtp):
    home = tmp_path_factory.mktemp("alerts")
    socrata = json.loads(source.connection_uri_json())
    socrata["extra"] |= {"retries": 1, "backoff_factor": 0.1}  # a 500 fails in a second
    env = {
        **airflow_env(PROJECT_ROOT, home),
        "SFPD_DUCKDB_PATH": str(home / "state" / "sfpd.duckdb"),
        "SFPD_LAKE_URI": (home / "state" / "lake").as_uri(),
        "AIRFLOW_CONN_SOCRATA_DEFAULT": json.dumps(socrata),
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp.connection(),
        "SFPD_ALERT_EMAILS": "ops@example.org",
        "SFPD_LATE_AFTER_HOURS": str(LATE_AFTER.total_seconds() / 3600),
        "SFPD_TASK_RETRIES": "0",
    }
    with LocalAirflow(home, env, parallelism=4) as running:
        running.wait_for_dags((DAILY, BACKFILL))
        yield running


def run_to_end(airflow, dag_id: str, logical_date: str | None, conf: dict | None = None) -> dict:
    run_id = airflow.api.trigger(dag_id, logical_date, conf)
    return airflow.api.wait_for_run(dag_id, run_id, WAIT)


@pytest.fixture(scope="module")
def runs(airflow, source, smtp):
    airflow.api.unpause(DAILY)  # the scheduler creates the latest scheduled run
    airflow.api.unpause(BACKFILL)
    while not (scheduled := airflow.api.dag_runs(DAILY)):
        time.sleep(1)
    healthy = airflow.api.wait_for_run(DAILY, scheduled[0]["dag_run_id"], WAIT)
    source.faults = Faults(rate=1.0, kinds=("500",), max_in_a_row=10**6)
    failed = run_to_end(airflow, DAILY, "2019-01-01T14:00:00Z")
    source.faults = Faults()
    backfill = run_to_end(
        airflow, BACKFILL, None,
        {"start_date": "2018-12-03", "end_date": "2018-12-10", "chunk": "week", "run_dbt": False},
    )  # fmt: skip
    dailies = [failed, healthy]
    # every deadline passed, and the triggerer had time to send what it fires
    last_deadline = max(dt.datetime.fromisoformat(r["queued_at"]) for r in dailies) + LATE_AFTER
    time.sleep(max(0.0, (last_deadline - dt.datetime.now(dt.UTC) + MARGIN).total_seconds()))
    return {"failed": failed, "healthy": healthy, "backfill": backfill}


def test_a_failed_task_and_its_run_send_one_email_each(runs, smtp):
    failed = runs["failed"]
    assert failed["state"] == "failed" and runs["healthy"]["state"] == "success"
    task = subjects(smtp, "Task failed")
    assert task == ["[sfpd-incidents] Task failed: sfpd_incidents_daily.extract"]
    text = body(smtp, task[0])
    log_url = f"/dags/{DAILY}/runs/{quote(failed['dag_run_id'])}/tasks/extract?try_number=1"
    for field in (failed["dag_run_id"], "[2018-11-01, 2019-01-01)", "<td>1</td>",
                  "SourceError: Socrata answered HTTP 500", log_url):  # fmt: skip
        assert field in text, field
    assert subjects(smtp, "Run failed") == ["[sfpd-incidents] Run failed: sfpd_incidents_daily"]
    run_text = body(smtp, "[sfpd-incidents] Run failed: sfpd_incidents_daily")
    assert failed["dag_run_id"] in run_text and "[2018-11-01, 2019-01-01)" in run_text


def test_a_backfill_sends_one_summary(runs, smtp, airflow):
    assert runs["backfill"]["state"] == "success"
    (summary,) = subjects(smtp, "Backfill")
    assert summary == "[sfpd-incidents] Backfill succeeded: sfpd_incidents_backfill"
    text = body(smtp, summary)
    run_id = runs["backfill"]["dag_run_id"]
    (merged,) = airflow.api.xcom(BACKFILL, run_id, "chunk.merge", map_index=0)
    assert "<th align='left'>Chunks merged</th><td>1 of 1</td>" in text
    assert f"<th align='left'>Rows read</th><td>{merged['rows_read']:,}</td>" in text
    assert merged["rows_read"] > 100


def test_a_run_not_succeeded_by_its_deadline_sends_one_lateness_email(runs, smtp):
    late = [text for subject in set(subjects(smtp, "Run late")) for text in bodies(smtp, subject)]
    judged = 0
    for run in (runs["failed"], runs["healthy"]):
        deadline = dt.datetime.fromisoformat(run["queued_at"]) + LATE_AFTER
        ended = dt.datetime.fromisoformat(run["end_date"])
        mails = [text for text in late if run["dag_run_id"] in text]
        if run["state"] != "success" or ended > deadline + MARGIN:
            assert len(mails) == 1, run["dag_run_id"]
            judged += 1
        elif ended < deadline - MARGIN:
            assert mails == [], run["dag_run_id"]
    # the failed run never succeeded: it is late whatever its timing
    assert judged >= 1
    assert len(late) <= 2


def test_a_stale_source_sends_one_email_a_day_and_the_runs_go_on(runs, smtp, airflow):
    stale = subjects(smtp, "DataSF has not published")
    dailies = (runs["failed"], runs["healthy"])
    days = {dt.datetime.fromisoformat(run["start_date"]).date() for run in dailies}
    assert len(stale) == len(days)  # one a day (two if the runs straddled midnight UTC)
    assert stale[0].endswith("since 2026-01-01 00:00 UTC")
    assert runs["healthy"]["state"] == "success"
    report = airflow.api.xcom(DAILY, runs["healthy"]["dag_run_id"], "report")
    html = Path(report.removeprefix("file://")).read_text()
    assert "DataSF has not published since 2026-01-01 00:00 UTC" in html


def test_a_broken_smtp_server_fails_nothing(runs, smtp, airflow):
    smtp.stop()
    airflow.api.request("DELETE", "/variables/sfpd_stale_notified_wg3w-h783")  # send again today
    run = run_to_end(airflow, DAILY, "2019-01-03T14:00:00Z")
    assert run["state"] == "success"
    tis = airflow.api.task_instances(DAILY, run["dag_run_id"])
    assert {ti["try_number"] for ti in tis if ti["state"] == "success"} == {1}
    log = next(
        (Path(airflow.home) / "logs").glob(
            f"dag_id={DAILY}/run_id={run['dag_run_id']}/task_id=check_upstream/attempt=1.log"
        )
    )
    assert "not sent by e-mail through connection 'smtp_default'" in log.read_text()
