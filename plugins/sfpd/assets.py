"""The tables the pipeline writes, as Airflow Assets other DAGs can be scheduled on.

Each asset is named ``<schema>.<table>`` (a dashboard team's DAG schedules on
``mart_asset(Settings.from_env(), "fct_incident_reports")``: docs/dashboards.md) and its URI
says where the table is: ``bigquery://<project>/<dataset>/<table>`` (the Google provider's
form, which OpenLineage and Dataplex read), or, on the embedded warehouse,
``x-duckdb://<absolute path of the file>/<schema>/<table>``: no provider defines a DuckDB
scheme, and an ``x-`` scheme is Airflow's form for one of your own (not normalised: a
``duckdb:`` URI loads every provider's handlers at each parse, ~0.45 s, and loses the path's
leading ``//``). An event is emitted when the task that writes the table succeeds: the window's
MERGE and the catch-up for the raw table, the task that finishes each mart's dbt model (its
tests).
"""

from __future__ import annotations

from airflow.sdk import Asset

from sfpd.config import MARTS_SCHEMA, Settings

RAW_TABLE = "incidents"


def table_uri(settings: Settings, schema: str, table: str) -> str:
    if settings.warehouse == "bigquery":
        return f"bigquery://{settings.gcp_project}/{schema}/{table}"
    return f"x-duckdb://{settings.duckdb_path}/{schema}/{table}"


def table_asset(settings: Settings, schema: str, table: str) -> Asset:
    return Asset(name=f"{schema}.{table}", uri=table_uri(settings, schema, table))


def raw_asset(settings: Settings) -> Asset:
    """The raw table (one row per offence, merged on row_id)."""
    return table_asset(settings, settings.raw_schema, RAW_TABLE)


def mart_asset(settings: Settings, model: str) -> Asset:
    return table_asset(settings, MARTS_SCHEMA, model)
