"""Operating it, under a real scheduler (api-server, scheduler, dag-processor, triggerer on
127.0.0.1), runs triggered through the REST API: alerts e-mailed to a real SMTP server on
127.0.0.1 (aiosmtpd), the dbt docs page in the UI (headless Chromium), and the dashboard DAG of
docs/dashboards.md, scheduled on the fct_incident_reports asset.

In one Airflow, one after another:
1. the daily run the scheduler creates when the DAG is unpaused, on the healthy source: it
   succeeds;
2. a daily run whose source answers 500 to every data request: one e-mail for its failed task,
   one for the run (Airflow's callbacks; tasks that never ran send none); then a one-week
   backfill on the healthy source: it succeeds and sends one summary;
3. every daily run not succeeded SFPD_LATE_AFTER_HOURS (here 36 s) after it was queued gets one
   lateness e-mail (a Deadline Alert, sent by the triggerer): both are late by construction (the
   failed one never succeeds; the healthy one's source holds its first page back until well
   after its deadline);
   the replayed source last published 2026-01-01: one staleness e-mail a day, runs succeed;
4. the SMTP server and the OpenLineage endpoint stopped: a daily run still succeeds, nothing
   retried, the failed sends logged.
Meanwhile the dashboard DAG runs on the asset event of the first daily run's mart, and the UI
serves the docs its dbt build wrote to the lake.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from sfpd_dev.airflow_local import DOCS_SLUG, LocalAirflow
from sfpd_dev.local import airflow_env
from sfpd_dev.replay import Faults, ReplayServer
from tests.alert_servers import SmtpSink, WebhookSink
from tests.browser import dump_dom, screenshot
from tests.conftest import FIXTURES, PROJECT_ROOT

pytestmark = pytest.mark.slow

DAILY, BACKFILL = "sfpd_incidents_daily", "sfpd_incidents_backfill"
DASHBOARD = "refresh_incident_dashboard"  # docs/dashboards.md
LATE_AFTER = dt.timedelta(hours=0.01)  # 36 s
# The healthy run's first page is answered this much after its deadline: the scheduler has
# seen the deadline missed long before the run can succeed.
MARGIN = dt.timedelta(seconds=15)
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


def dashboard_dag(folder: Path) -> Path:
    """The DAGs folder: the project's two DAG files and docs/dashboards.md's example, as is."""
    markdown = (PROJECT_ROOT / "docs" / "dashboards.md").read_text()
    section = markdown[markdown.index("## Scheduling your own DAG on the marts") :]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    folder.mkdir()
    (folder / "refresh_incident_dashboard.py").write_text(code)
    for name in (f"{DAILY}.py", f"{BACKFILL}.py"):
        (folder / name).symlink_to(PROJECT_ROOT / "dags" / name)
    return folder


@pytest.fixture(scope="module")
def lineage():
    """An OpenLineage HTTP endpoint: every event the tasks and Cosmos send."""
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, source, smtp, lineage):
    home = tmp_path_factory.mktemp("operations")
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
        "AIRFLOW__CORE__DAGS_FOLDER": str(dashboard_dag(home / "dags")),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {
                "type": "http",
                "url": lineage.url,
                "endpoint": "api/v1/lineage",
                "retry": {"total": 1, "connect": 1, "read": 1, "backoff_factor": 0.1},
            }
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "sfpd-test",
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "sfpd.lineage.SfpdTaskExtractor",
    }
    with LocalAirflow(home, env, parallelism=4) as running:
        running.wait_for_dags((DAILY, BACKFILL, DASHBOARD))
        running.api.unpause(DASHBOARD)
        wait_until_scheduled_on(running, "sfpd_marts.fct_incident_reports", DASHBOARD)
        yield running


def wait_until_scheduled_on(airflow, asset: str, dag_id: str, timeout: float = 120) -> None:
    """Until the scheduler links ``dag_id`` to ``asset`` (an ``Asset.ref`` is resolved once the
    asset exists, at a later parse): a DAG without catchup takes only events after that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = airflow.api.request("GET", "/assets", params={"name_pattern": asset})["assets"]
        if any(d["dag_id"] == dag_id for a in found for d in a.get("scheduled_dags", [])):
            return
        time.sleep(2)
    raise TimeoutError(f"{dag_id} never scheduled on {asset}")


def run_to_end(airflow, dag_id: str, logical_date: str | None, conf: dict | None = None) -> dict:
    run_id = airflow.api.trigger(dag_id, logical_date, conf)
    return airflow.api.wait_for_run(dag_id, run_id, WAIT)


@pytest.fixture(scope="module")
def runs(airflow, source, smtp):
    source.faults = Faults(delay_next=(LATE_AFTER + MARGIN).total_seconds())  # late for sure
    airflow.api.unpause(DAILY)  # the scheduler creates the latest scheduled run
    airflow.api.unpause(BACKFILL)
    while not (scheduled := airflow.api.dag_runs(DAILY)):
        time.sleep(1)
    healthy = airflow.api.wait_for_run(DAILY, scheduled[0]["dag_run_id"], WAIT)
    assert source.faults.injected["delay"] == 1  # its extract waited for the held-back page
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
    """Both daily runs missed their deadline: the failed one never succeeded, the healthy one
    ended well after it (its first page came late). That a run succeeding before its deadline
    gets none is Airflow's Deadline Alert (the deadline goes when the run succeeds), not ours:
    tests/README.md."""
    late = [text for subject in set(subjects(smtp, "Run late")) for text in bodies(smtp, subject)]
    healthy = runs["healthy"]
    deadline = dt.datetime.fromisoformat(healthy["queued_at"]) + LATE_AFTER
    assert dt.datetime.fromisoformat(healthy["end_date"]) > deadline + MARGIN
    for run in (runs["failed"], healthy):
        mails = [text for text in late if run["dag_run_id"] in text]
        assert len(mails) == 1, run["dag_run_id"]
    assert len(late) == 2


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


def test_a_dead_smtp_server_and_lineage_endpoint_fail_nothing(runs, smtp, lineage, airflow):
    smtp.stop()
    lineage.stop()
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


def test_a_dashboard_dag_on_the_fact_asset_runs_after_the_daily_run(runs, airflow):
    healthy = runs["healthy"]["dag_run_id"]
    deadline = time.monotonic() + 120
    while True:
        triggered = {}
        for run in airflow.api.dag_runs(DASHBOARD):
            path = f"/dags/{DASHBOARD}/dagRuns/{quote(run['dag_run_id'])}/upstreamAssetEvents"
            events = airflow.api.request("GET", path)["asset_events"]
            triggered |= {(e["source_dag_id"], e["source_run_id"]): (run, e) for e in events}
        if (DAILY, healthy) in triggered or time.monotonic() > deadline:
            break
        time.sleep(2)
    run, event = triggered[(DAILY, healthy)]
    assert run["run_type"] == "asset_triggered"
    assert event["source_task_id"] == "dbt.fct_incident_reports.test"
    assert event["name"] == "sfpd_marts.fct_incident_reports"
    state = airflow.api.wait_for_run(DASHBOARD, run["dag_run_id"], 120)["state"]
    assert state == "success"
    # the failed daily run never built the marts: it triggered nothing
    assert (DAILY, runs["failed"]["dag_run_id"]) not in triggered


def test_the_ui_serves_the_dbt_docs_the_build_wrote(runs, airflow, tmp_path):
    assert runs["healthy"]["state"] == "success"
    page = f"{airflow.url}/cosmos/{DOCS_SLUG}/dbt_docs_index.html"
    manifest = requests.get(f"{airflow.url}/cosmos/{DOCS_SLUG}/manifest.json", timeout=30).json()
    marts = [
        node for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "/marts/" in node["original_file_path"]
    ]  # fmt: skip
    assert len(marts) == 9 and all(node["description"] for node in marts)
    # the dbt docs app, drawn by a browser from what the api-server serves: the project's models
    dom = dump_dom(f"{page}#!/model/model.sfpd.fct_incident_reports", tmp_path / "profile")
    assert "fct_incident_reports" in dom.stdout and "One row per report" in dom.stdout, dom.stderr
    shot = screenshot(
        f"{page}#!/model/model.sfpd.fct_incident_reports", tmp_path / "dbt-docs.png",
        tmp_path / "profile", window="1400,1000",
    )  # fmt: skip
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_openlineage_events_chain_the_source_to_the_marts(runs, lineage, airflow, source, tmp_path):
    """Socrata → extract → lake files → merge → raw table → dbt (Cosmos's watcher: one job for
    the build) → staging and marts, each dataset named the same by whichever task reads or
    writes it, DuckDB tables in dbt's namespace."""
    events = [json.loads(body) for body in lineage.posts]
    (tmp_path / "events.json").write_text(json.dumps(events, indent=1))
    print(f"OpenLineage events: {tmp_path / 'events.json'}")
    duckdb = f"duckdb://{airflow.env['SFPD_DUCKDB_PATH']}"
    lake = str(Path(airflow.env["SFPD_LAKE_URI"].removeprefix("file://")) / "wg3w-h783")
    socrata = (f"http://127.0.0.1:{source.port}", "resource/wg3w-h783")
    windows, raw = ("file", f"{lake}/windows"), (duckdb, "sfpd.sfpd_raw.incidents")
    graph = lineage_edges(events)
    assert (f"{DAILY}.extract", windows) in graph[socrata]
    assert (f"{DAILY}.merge", raw) in graph[windows]
    assert (f"{DAILY}.catch_up", raw) in graph[socrata]  # rows changed outside the window
    dbt = f"{DAILY}.dbt.dbt_producer_watcher"
    built = {dataset for job, dataset in graph[raw] if job == dbt}
    assert (duckdb, "sfpd.sfpd_staging.stg_sfpd__incidents") in built
    marts = {name for ns, name in built if ns == duckdb and name.startswith("sfpd.sfpd_marts.")}
    assert len(marts) == 9 and "sfpd.sfpd_marts.fct_incident_reports" in marts
    # and on to the report, from the marts it reads
    assert (f"{DAILY}.report", ("file", f"{lake}/reports")) in graph[
        (duckdb, "sfpd.sfpd_marts.fct_incident_offences")
    ]


def lineage_edges(events: list[dict]) -> dict[tuple, set[tuple]]:
    """For each dataset (namespace, name) a completed task read: (the task's job, a dataset it
    wrote). A DAG run's own event (job ``<dag_id>``, no task) repeats its tasks' datasets: left
    out."""
    edges: dict[tuple, set[tuple]] = {}
    for event in events:
        if event["eventType"] != "COMPLETE" or "." not in event["job"]["name"]:
            continue
        for read in event.get("inputs", []):
            for written in event.get("outputs", []):
                edges.setdefault((read["namespace"], read["name"]), set()).add(
                    (event["job"]["name"], (written["namespace"], written["name"]))
                )
    return edges
