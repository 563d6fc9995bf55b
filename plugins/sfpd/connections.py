"""The pipeline's source, lake and warehouse, opened with the credentials of Airflow connections.

Imported when the DAG files are parsed (through :mod:`sfpd.tasks`): the modules that pull in
pyarrow, DuckDB, requests and the Google clients are imported inside the functions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from airflow.sdk import BaseHook

from sfpd.compat import AirflowFailException, AirflowNotFoundException
from sfpd.config import ConfigError, Settings
from sfpd.gcp_access import refusal

if TYPE_CHECKING:
    from sfpd.lake import Lake
    from sfpd.socrata import SocrataEndpoint
    from sfpd.warehouse import Warehouse

log = logging.getLogger(__name__)


def socrata_endpoint(conn_id: str, dataset_id: str) -> SocrataEndpoint:
    """The Socrata server from an Airflow connection; the public DataSF API if it is absent.

    host, port, schema (http or https), password (the app token) and the extra's ``api``
    (soda2, soda3) are read from it. A connection that cannot work (SODA3 without a token)
    fails the task at once, without retries.
    """
    from sfpd.socrata import SocrataEndpoint

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("No connection %r: reading the public DataSF API", conn_id)
        return SocrataEndpoint(dataset_id=dataset_id)
    try:
        return SocrataEndpoint.from_connection_fields(
            conn.host, conn.port, conn.schema, conn.password, dataset_id, conn.extra_dejson
        )
    except ConfigError as exc:
        raise AirflowFailException(f"Connection {conn_id!r}: {exc}") from exc


def lake_for(settings: Settings) -> Lake:
    """The configured lake; GCS credentials come from the GCP connection (GCSHook)."""
    from sfpd.lake import open_lake

    if settings.lake_uri.startswith("gs://"):
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return open_lake(settings.lake_uri, GCSHook(gcp_conn_id=settings.gcp_conn_id).get_conn())
    return open_lake(settings.lake_uri)


def warehouse_for(settings: Settings, writes: bool = False) -> Warehouse:
    """The configured warehouse; BigQuery credentials come from the GCP connection. Only a task
    that writes (the merge pool's) opens it with ``writes``: it alone makes tables."""
    from sfpd.warehouse import BigQueryWarehouse, DuckDBWarehouse

    if settings.warehouse == "bigquery":
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        hook = BigQueryHook(gcp_conn_id=settings.gcp_conn_id, location=settings.bq_location)
        client = hook.get_client(project_id=settings.gcp_project, location=settings.bq_location)
        return BigQueryWarehouse(
            client, settings.gcp_project, settings.raw_schema, settings.bq_location, writes
        )
    return DuckDBWarehouse(settings.duckdb_path, settings.raw_schema, writes=writes)


@contextmanager
def google_refusals(settings: Settings) -> Iterator[None]:
    """A Google 403 for a missing IAM permission fails the task at once (no retry grants a role),
    naming the permission, the resource and the role to grant (:mod:`sfpd.gcp_access`)."""
    try:
        yield
    except Exception as exc:
        bucket = urlparse(settings.lake_uri).netloc
        refused = refusal(exc, settings.gcp_project, bucket, settings.raw_schema)
        if refused is None:
            raise
        raise AirflowFailException(str(refused)) from exc


def refuse_bad_locations(settings: Settings) -> None:
    """On BigQuery, before any work: the dataset in SFPD_BQ_LOCATION and the lake's bucket where
    a load job into it can read (else the task fails at once, naming both locations)."""
    if settings.warehouse != "bigquery":
        return
    from sfpd.warehouse import LocationMismatch

    lake = lake_for(settings)
    try:
        with google_refusals(settings):
            warehouse_for(settings).check_locations(lake.bucket, lake.location())
    except LocationMismatch as exc:
        raise AirflowFailException(str(exc)) from exc
