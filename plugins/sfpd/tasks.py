"""Airflow tasks shared by the DAGs. Each is a thin adapter from Airflow (context, connections,
XCom) to :class:`sfpd.pipeline.Loader` and the other plain modules; only small dicts go through
XCom (``to_dict()``/``from_dict()`` at this boundary), the data itself goes through the lake. The
DAG files give each task its pool (:mod:`sfpd.pools`).

Settings are decided once per run: the plan task records the settings a run depends on
(:meth:`sfpd.config.Settings.recorded`) in its XCom, and every task that reads or writes the
lake or the warehouse fails at once, naming the setting, on a worker whose environment differs.

The DAG files import this module every time they are parsed, so it imports only what wiring
needs; the modules that pull in pyarrow, DuckDB, requests and the Google clients are imported
inside the tasks that use them (tests/dags/test_dag_integrity.py keeps it so)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow.sdk import get_current_context, task

from sfpd.alerts import source_stale, stale_since, task_callbacks
from sfpd.backfill import BackfillParamError, batches, plan_backfill, summarise
from sfpd.channels import channels_for
from sfpd.compat import AirflowFailException
from sfpd.config import ConfigError, Settings
from sfpd.connections import (
    google_refusals,
    lake_for,
    refuse_bad_locations,
    socrata_endpoint,
    warehouse_for,
)
from sfpd.pools import pools_for
from sfpd.window import SF_TZ, Window, rolling_window, run_anchor

if TYPE_CHECKING:
    from sfpd.pipeline import Loader

log = logging.getLogger(__name__)

# The XCom key of the settings a run's plan task recorded, and the plan tasks' ids
SETTINGS_KEY = "settings"
PLAN_TASKS = ("plan_window", "plan_chunks")


def default_args(settings: Settings) -> dict:
    """Owner, retries and failure alerts for every task. Retries with exponential backoff
    (SFPD_TASK_RETRIES, 2 by default: a local run can set 0 to fail fast instead of waiting
    minutes between tries); a task failed after them alerts (:mod:`sfpd.alerts`)."""
    return {
        "owner": "sfpd-incidents",
        "retries": settings.task_retries,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        **task_callbacks(settings),
    }


def _record_settings() -> Settings:
    """This worker's settings, recorded on the run (the plan task's XCom) for the tasks after."""
    settings = Settings.from_env()
    get_current_context()["ti"].xcom_push(SETTINGS_KEY, settings.recorded())
    return settings


def run_settings() -> Settings:
    """This worker's settings, once they agree with those the run's plan task recorded; else the
    task fails at once, naming each setting that differs."""
    settings = Settings.from_env()
    context = get_current_context()
    plan = next(task_id for task_id in PLAN_TASKS if task_id in context["dag"].task_ids)
    recorded = context["ti"].xcom_pull(task_ids=plan, key=SETTINGS_KEY, map_indexes=-1)
    try:
        settings.check_recorded(recorded or {}, plan)
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc
    return settings


def in_merge_pool(settings: Settings, pool: str) -> bool:
    """Whether a task of ``pool`` may change the warehouse's tables (make them, add the audit's
    columns, move its partitions): only one of the merge pool, whose tasks run one at a time
    (:mod:`sfpd.pools`); any other finds what is there and reads it."""
    return pool == pools_for(settings).merge


@contextmanager
def _loader(settings: Settings) -> Iterator[Loader]:
    """The run's :class:`~sfpd.pipeline.Loader`, its Socrata session open; its warehouse makes
    tables only in a task of the merge pool (:func:`in_merge_pool`)."""
    from sfpd.pipeline import Loader
    from sfpd.socrata import SocrataSource

    endpoint = socrata_endpoint(settings.socrata_conn_id, settings.dataset_id)
    writes = in_merge_pool(settings, get_current_context()["task"].pool)
    with google_refusals(settings), SocrataSource(endpoint, settings.page_size) as source:
        yield Loader(
            source, lake_for(settings), warehouse_for(settings, writes), settings.dataset_id,
            get_current_context()["run_id"], settings.max_reject_share,
        )  # fmt: skip


@task
def plan_window() -> dict[str, str]:
    """The run's window: two months ending at the San Francisco date of the run's anchor
    (:func:`sfpd.window.run_anchor`: its data interval end, or when it was triggered). It records
    the run's settings; on BigQuery, locations that cannot work fail it before anything is read."""
    refuse_bad_locations(_record_settings())
    context = get_current_context()
    anchor = run_anchor(
        context.get("data_interval_end"), context.get("logical_date"), context["dag_run"].run_after
    )
    window = rolling_window(anchor)
    log.info("Run anchored at %s covers incidents in [%s, %s)", anchor, window.start, window.end)
    return window.to_dict()


def _extract(windows: list[dict[str, str]]) -> list[dict]:
    """Socrata → typed Parquet in the lake, page by page, for each window in turn."""
    with _loader(run_settings()) as loader:
        return [loader.extract(Window.from_dict(window)).to_dict() for window in windows]


def _merge(extracts: list[dict]) -> list[dict]:
    """Each window's lake files → staging → MERGE into the raw table, one transaction per
    window; counts logged, returned and written to load_audit."""
    from sfpd.extract import Extract

    results = []
    with _loader(run_settings()) as loader:
        for extracted in extracts:
            result = loader.merge(Extract.from_dict(extracted))
            log.info(
                "Window %s..%s: read %d, rejected %d, inserted %d, updated %d, deleted %d",
                result.window_start, result.window_end, result.rows_read, result.rows_rejected,
                result.rows_inserted, result.rows_updated, result.rows_deleted,
            )  # fmt: skip
            results.append(result.to_dict())
    return results


@task.short_circuit(ignore_downstream_trigger_rules=False)
def source_changed(window: dict[str, str], params: dict | None = None) -> bool:
    """False (the extract and merge are skipped) when the dataset's metadata says nothing
    changed since the loads so far read it (:meth:`sfpd.pipeline.Loader.skip_reason`); the
    run's ``force_pull`` param reads anyway. It reads the warehouse's audit, and makes nothing
    (missing tables read as empty: the merge makes them)."""
    if params["force_pull"]:
        log.info("force_pull is on: reading the window whatever the metadata says")
        return True
    with _loader(run_settings()) as loader:
        reason = loader.skip_reason(Window.from_dict(window))
    if reason:
        log.info("Skipping the extract: %s (trigger with force_pull to read anyway)", reason)
        return False
    return True


@task
def check_upstream() -> str | None:
    """When DataSF last published the dataset (its metadata; UTC), for the report. Longer ago
    than SFPD_STALE_AFTER_DAYS, the run goes on and one notification a day says so (the day of
    the last one is the Airflow Variable ``sfpd_stale_notified_<dataset>``). It runs beside the
    plan task, so it does not check the run's settings: it reads only the source's metadata."""
    from airflow.sdk import Variable

    from sfpd.socrata import SocrataSource

    settings = Settings.from_env()
    endpoint = socrata_endpoint(settings.socrata_conn_id, settings.dataset_id)
    with SocrataSource(endpoint, settings.page_size) as source:
        published = source.rows_updated_at()
    if published is None:
        return None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if stale_since(published, now, settings.stale_after):
        log.warning("DataSF has not published %s since %s UTC", settings.dataset_id, published)
        key, today = f"sfpd_stale_notified_{settings.dataset_id}", now.date().isoformat()
        if Variable.get(key, default=None) != today:
            message = source_stale(settings.dataset_id, published, now, settings.stale_after)
            if channels_for(settings).send(message, get_current_context()):
                Variable.set(key, today)
    return published.isoformat()


@task
def extract(window: dict[str, str]) -> dict:
    """The run's window from Socrata into the lake."""
    return _extract([window])[0]


@task
def merge(extracted: dict) -> dict:
    """The run's window from the lake into the raw table (MERGE on row_id)."""
    return _merge([extracted])[0]


@task(trigger_rule="none_failed")
def catch_up(params: dict | None = None) -> dict:
    """What changed upstream outside the run's window (:meth:`sfpd.pipeline.Loader.catch_up`):
    rows whose ``:updated_at`` is after the last catch-up, wherever their date, then the loaded
    days whose counts differ from the source's, loaded again. Socrata reads and MERGEs in one
    task: it holds the merge's pool (on DuckDB, the file) while it reads. It runs when the
    window's merge was skipped (nothing changed), and checks on its own (``force_pull``: reads
    whatever the metadata says)."""
    with _loader(run_settings()) as loader:
        result = loader.catch_up(force=params["force_pull"])
    changed = result.changed
    log.info(
        "Catch-up: %s rows changed upstream (inserted %s, updated %s); %d loaded days differed "
        "from the source's counts, loaded again in %d load(s) (deleted %d)",
        changed.rows_read if changed else 0, changed.rows_inserted if changed else 0,
        changed.rows_updated if changed else 0, result.days_differing, len(result.reloaded),
        sum(r.rows_deleted for r in result.reloaded),
    )  # fmt: skip
    return result.to_dict()


def _label(windows: list[dict[str, str]]) -> None:
    """Names a backfill task's map index in the grid by the span of its chunks."""
    get_current_context()["chunks"] = f"{windows[0]['start']} to {windows[-1]['end']}"


@task(map_index_template="{{ chunks }}")
def extract_chunks(windows: list[dict[str, str]]) -> list[dict]:
    """A backfill's consecutive chunks from Socrata into the lake, one window each."""
    _label(windows)
    return _extract(windows)


@task(map_index_template="{{ chunks }}")
def merge_chunks(extracts: list[dict]) -> list[dict]:
    """Those chunks into the raw table, one MERGE per chunk (each its load_audit row)."""
    _label([extract["window"] for extract in extracts])
    return _merge(extracts)


@task
def plan_chunks(params: dict | None = None) -> list[list[dict[str, str]]]:
    """The backfill's chunks from the trigger form, in runs of consecutive chunks (one extract
    and one merge task each, see :func:`sfpd.backfill.batches`); a bad value fails here, with
    no retry, before anything is read or written; so do locations that cannot work (BigQuery)."""
    today = dt.datetime.now(SF_TZ).date()
    try:
        windows = plan_backfill(params["start_date"], params["end_date"], params["chunk"], today)
    except BackfillParamError as exc:
        raise AirflowFailException(f"Bad backfill param {exc}") from exc
    refuse_bad_locations(_record_settings())
    groups = batches(windows)
    log.info("Backfill [%s, %s) in %d %s chunks, %d extract and merge tasks",
             windows[0].start, windows[-1].end, len(windows), params["chunk"],
             len(groups))  # fmt: skip
    return [[window.to_dict() for window in group] for group in groups]


@task
def summarise_backfill(results: list) -> dict[str, int]:
    """Totals over all chunks (each chunk's own figures are in load_audit and its merge XCom)."""
    totals = summarise(results)
    log.info("Backfill totals: %s", totals)
    return totals


@task.short_circuit
def dbt_requested(params: dict | None = None) -> bool:
    """Skips the dbt task group when the trigger form's run_dbt is off."""
    return bool(params["run_dbt"])


@task
def prune_lake() -> int:
    """The lake keeps each load's folder and each report for SFPD_LAKE_RETENTION_DAYS after it
    was written (the newest report always); older ones go. The number removed."""
    from sfpd.lake import prune_lake as prune

    settings = run_settings()
    retention = dt.timedelta(days=settings.lake_retention_days)
    with google_refusals(settings):
        removed = prune(lake_for(settings), settings.dataset_id, dt.datetime.now(dt.UTC), retention)
    return len(removed)


@task
def report(
    window: dict[str, str] | list[list[dict[str, str]]], published_at: str | None = None
) -> str:
    """The HTML report of the marts, written to the lake beside the data; its URI (XCom).
    ``window`` is the run's window, or a backfill's chunks (the report states their span);
    ``published_at``: when the source last published (check_upstream), said at the top when
    that is longer ago than SFPD_STALE_AFTER_DAYS. It reads the warehouse."""
    from sfpd.report import render_report, report_data, report_name

    settings = run_settings()
    if isinstance(window, list):
        chunks = [chunk for batch in window for chunk in batch]
        window = {"start": chunks[0]["start"], "end": chunks[-1]["end"]}
    run_window = Window.from_dict(window)
    now = dt.datetime.now(dt.UTC)
    published = dt.datetime.fromisoformat(published_at) if published_at else None
    stale = stale_since(published, now.replace(tzinfo=None), settings.stale_after)
    with google_refusals(settings):
        data = report_data(warehouse_for(settings))
        html = render_report(data, run_window, now, stale_since=stale)
        uri = lake_for(settings).write_report(settings.dataset_id, report_name(run_window), html)
    log.info("Report written: %s", uri)
    return uri
