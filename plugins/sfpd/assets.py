"""The tables the pipeline writes, as Airflow Assets other DAGs can be scheduled on.

Each asset is named ``<schema>.<table>`` (what a dashboard team's DAG refers to:
``schedule=Asset.ref(name="sfpd_marts.fct_incident_reports")``) and its URI says where the table
is: ``bigquery://<project>/<dataset>/<table>`` (the Google provider's form), or, on the embedded
warehouse, ``duckdb://<absolute path of the file>/<schema>/<table>``. An event is emitted when the
task that writes the table succeeds: the window's MERGE and the catch-up for the raw table, the
dbt task of each mart's model.
"""

from __future__ import annotations

from airflow.sdk import Asset

from sfpd.config import Settings

MARTS_SCHEMA = "sfpd_marts"  # include/dbt/macros/generate_schema_name.sql: sfpd_<folder schema>
RAW_TABLE = "incidents"


def table_uri(settings: Settings, schema: str, table: str) -> str:
    if settings.warehouse == "bigquery":
        return f"bigquery://{settings.gcp_project}/{schema}/{table}"
    return f"duckdb://{settings.duckdb_path}/{schema}/{table}"


def table_asset(settings: Settings, schema: str, table: str) -> Asset:
    return Asset(name=f"{schema}.{table}", uri=table_uri(settings, schema, table))


def raw_asset(settings: Settings) -> Asset:
    """The raw table (one row per offence, merged on row_id)."""
    return table_asset(settings, settings.raw_schema, RAW_TABLE)


def mart_asset(settings: Settings, model: str) -> Asset:
    return table_asset(settings, MARTS_SCHEMA, model)
