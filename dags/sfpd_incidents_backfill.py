"""
### SFPD incidents — backfill

Loads any range of *Police Department Incident Reports: 2018 to Present* (Socrata `wg3w-h783`),
from the full history to a repair of a few weeks. Trigger it with the form: start and end date,
chunk size, and whether to build dbt afterwards.

Each chunk (calendar week, month or quarter) is its own window through the same code as the
daily DAG: Socrata → lake → staging → MERGE on `row_id`, rows gone upstream deleted inside the
chunk. Runs of consecutive chunks (at most 16 pairs of tasks) are extracted in the
`socrata_api` pool and merged one at a time (`sfpd_warehouse` pool), each chunk its own MERGE.
Then a summary of what changed (also in `load_audit`), one dbt build over the whole range and
the HTML report of the marts (in the lake, `<dataset>/reports/`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task_group

from sfpd.alerts import backfill_callbacks
from sfpd.assets import raw_asset
from sfpd.backfill import CHUNKS, DATASET_START
from sfpd.config import Settings
from sfpd.cosmos_dbt import dbt_docs, dbt_source_freshness, dbt_task_group
from sfpd.pools import pools_for
from sfpd.tasks import (
    dbt_requested,
    default_args,
    extract_chunks,
    merge_chunks,
    plan_chunks,
    report,
    summarise_backfill,
)

settings = Settings.from_env()
pool = pools_for(settings)


@task_group
def chunk(windows: list[dict]) -> list[dict]:
    """Consecutive chunks: their extracts (Socrata pool), then their MERGEs (one at a time),
    each updating the raw table's Asset."""
    extracted = extract_chunks.override(task_id="extract", pool=pool.socrata)(windows)
    merge = merge_chunks.override(task_id="merge", pool=pool.merge, outlets=[raw_asset(settings)])
    return merge(extracted)


@dag(
    dag_id="sfpd_incidents_backfill",
    schedule=None,
    start_date=pendulum.datetime(2018, 1, 1, tz="America/Los_Angeles"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(settings),
    tags=["sfpd", "socrata", "dbt", "backfill"],
    doc_md=__doc__,
    **backfill_callbacks(settings),
    params={
        "start_date": Param(
            DATASET_START.isoformat(),
            type="string",
            format="date",
            title="Start date",
            description=f"First incident date to load (YYYY-MM-DD, not before {DATASET_START}).",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="End date (exclusive)",
            description="Load incidents before this date (YYYY-MM-DD, at most tomorrow). "
            "Empty: through today (San Francisco).",
        ),
        "chunk": Param(
            "month",
            type="string",
            enum=list(CHUNKS),
            title="Chunk size",
            description="Each chunk is one extract and one MERGE, cut at calendar boundaries.",
        ),
        "run_dbt": Param(
            True, type="boolean", title="Run dbt", description="Build the dbt project after."
        ),
    },
)
def sfpd_incidents_backfill() -> None:
    chunks = plan_chunks()
    merged = chunk.expand(windows=chunks)
    dbt = dbt_task_group(settings, full_refresh=True, group_id="dbt")  # any month may change
    built = summarise_backfill(merged) >> dbt_requested() >> dbt
    built >> report.override(pool=pool.warehouse)(chunks)
    dbt >> [dbt_source_freshness(settings), dbt_docs(settings)]


sfpd_incidents_backfill()
