"""Where each task runs: the one place that decides its Airflow pool, per warehouse.

The pools are declared in airflow_settings.yaml (create them on any other deployment). The DAG
files and the dbt task group (:mod:`sfpd.cosmos_dbt`) ask :func:`pools_for`; no task chooses its
own.

- ``socrata``: every task that reads the Socrata API; its slots limit the calls across all runs.
- ``merge``: every task that MERGEs into the raw table, on either warehouse: one at a time.
- ``warehouse``: every other task that opens the warehouse (the skip check, dbt, the report): on
  DuckDB the merge's pool too (one process may open the file while it is written), on BigQuery
  Airflow's default pool (its tables take any number of readers and dbt runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from sfpd.config import Settings

SOCRATA_POOL = "socrata_api"
WAREHOUSE_POOL = "sfpd_warehouse"
DEFAULT_POOL = "default_pool"


@dataclass(frozen=True)
class Pools:
    socrata: str
    merge: str
    warehouse: str


def pools_for(settings: Settings) -> Pools:
    """The pools of the pipeline's tasks on the configured warehouse."""
    return Pools(
        socrata=SOCRATA_POOL,
        merge=WAREHOUSE_POOL,
        warehouse=WAREHOUSE_POOL if settings.single_writer else DEFAULT_POOL,
    )
