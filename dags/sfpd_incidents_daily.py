"""
### SFPD incidents — daily

Pulls a rolling two-month window of DataSF's *Police Department Incident Reports: 2018 to
Present* (Socrata `wg3w-h783`), writes it to the lake as typed Parquet, MERGEs it into the raw
table on `row_id` (both skipped by `source_changed` when the dataset's metadata says nothing
changed since the last load), catches up what changed upstream outside the window (rows with a
newer `:updated_at` wherever their date, and loaded days whose counts differ from the
source's), builds the dbt project (Cosmos task group), then renders an HTML report of the marts
into the lake (`<lake>/<dataset>/reports/`; its URI is the `report` task's XCom), and removes
the lake's load folders and reports older than the retention (SFPD_LAKE_RETENTION_DAYS).
After the build, dbt's source freshness and the dbt docs (into `<lake>/<dataset>/docs/`, served
in the UI). `check_upstream` says when DataSF last published (stale: an alert, a banner on the
report). The raw table and the marts are Assets; failures, a late run (a Deadline Alert) and a
stale source alert through the configured channels (docs/operating.md).

The window is `[anchor - 2 months, anchor)` on `incident_datetime`, where the anchor is the San
Francisco date of the run's data interval end, or, for a run triggered without a logical date,
of when it was triggered. Configuration: see the README.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from sfpd.alerts import run_callbacks
from sfpd.assets import raw_asset
from sfpd.config import Settings
from sfpd.cosmos_dbt import dbt_docs, dbt_source_freshness, dbt_task_group
from sfpd.pools import pools_for
from sfpd.tasks import (
    catch_up,
    check_upstream,
    default_args,
    extract,
    merge,
    plan_window,
    prune_lake,
    report,
    source_changed,
)

settings = Settings.from_env()
pool = pools_for(settings)


@dag(
    dag_id="sfpd_incidents_daily",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="America/Los_Angeles"),
    start_date=pendulum.datetime(2018, 1, 1, tz="America/Los_Angeles"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(settings),
    tags=["sfpd", "socrata", "dbt"],
    doc_md=__doc__,
    **run_callbacks(settings),
    params={
        "force_pull": Param(
            settings.force_pull,
            type="boolean",
            title="Force pull",
            description="Read the window and catch up even when the dataset's metadata says "
            "nothing changed since the last load (default: SFPD_FORCE_PULL).",
        ),
    },
)
def sfpd_incidents_daily() -> None:
    window = plan_window()
    published_at = check_upstream.override(pool=pool.socrata)()  # reads Socrata too
    extracted = extract.override(pool=pool.socrata)(window)
    source_changed.override(pool=pool.warehouse)(window) >> extracted
    raw = [raw_asset(settings)]  # their success updates the raw table's Asset
    merged = merge.override(pool=pool.merge, outlets=raw)(extracted)
    caught_up = catch_up.override(pool=pool.merge, outlets=raw)()
    dbt = dbt_task_group(settings, group_id="dbt")
    reported = report.override(pool=pool.warehouse)(window, published_at)
    merged >> caught_up >> dbt >> reported >> prune_lake()
    dbt >> [dbt_source_freshness(settings), dbt_docs(settings)]


sfpd_incidents_daily()
