"""The production warehouse: BigQuery, driven by a google-cloud-bigquery client (in DAG tasks:
BigQueryHook(...).get_client()). A transaction is a session's: its jobs run in it, COMMIT at the
end, ROLLBACK on error, the session aborted after. Where the dataset and the lake's bucket must
be for a load job to work is checked before any work (:meth:`BigQueryWarehouse.check_locations`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from sfpd.config import DEFAULT_RAW_SCHEMA
from sfpd.schema import bigquery_columns
from sfpd.warehouse.base import RAW_TABLE, REJECTS_STAGING_TABLE, STAGING_TABLE, Warehouse
from sfpd.warehouse.checks import LakeUnreadable
from sfpd.warehouse.records import Changes
from sfpd.warehouse.session import Session
from sfpd.window import Scope

log = logging.getLogger(__name__)

REPARTITIONED_TABLE = "incidents__repartitioned"  # a raw table moving to monthly partitions
STAGING_EXPIRES_AFTER = dt.timedelta(days=1)
_DML = ("DELETE", "INSERT", "UPDATE", "MERGE")
_UNREADABLE = ("Not found: URI", "Error while reading data")


class LocationMismatch(RuntimeError):
    """The dataset, the jobs' location and the lake's bucket are not where they can work."""


# GCP regions inside the EU multi-region: a bucket there serves a dataset in EU
EU_REGIONS = frozenset(
    ("europe-central2", "europe-north1", "europe-north2", "europe-southwest1", "europe-west1",
     "europe-west3", "europe-west4", "europe-west8", "europe-west9", "europe-west10",
     "europe-west12")
)  # fmt: skip


def bucket_serves(bucket_location: str, dataset_location: str) -> bool:
    """Whether a load job into a dataset in ``dataset_location`` can read a bucket in
    ``bucket_location`` (BigQuery's "Loading data from Cloud Storage", location
    considerations): the same location; a region inside the dataset's EU multi-region; any
    bucket for the US multi-region."""
    bucket, dataset = bucket_location.lower(), dataset_location.lower()
    return dataset == "us" or bucket == dataset or (dataset == "eu" and bucket in EU_REGIONS)


def partitioned_by_day(table) -> bool:
    """Whether a BigQuery table (google.cloud.bigquery.Table) has daily time partitions."""
    return bool(table.time_partitioning) and table.time_partitioning.type_ == "DAY"


class BigQuerySession(Session):
    """Query jobs in a BigQuery session (``session_id``), or each on its own (None)."""

    def __init__(self, warehouse: BigQueryWarehouse, session_id: str | None = None) -> None:
        self.warehouse = warehouse
        self.session_id = session_id
        self.bytes_billed = self.bytes_processed = 0

    def job(self, sql: str, config=None):
        """A finished query job, in this session if it has one."""
        from google.cloud import bigquery

        config = config or bigquery.QueryJobConfig()
        if self.session_id:
            config.connection_properties = [
                bigquery.ConnectionProperty("session_id", self.session_id)
            ]
        job = self.warehouse.client.query(sql, job_config=config, location=self.warehouse.location)
        job.result()
        # a script's job counts its statements' (load jobs bill nothing and have neither)
        self.bytes_billed += job.total_bytes_billed or 0
        self.bytes_processed += job.total_bytes_processed or 0
        return job

    def run(self, sql: str, parameters: list[tuple[str, str, object]] | None = None) -> list:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(name, kind, value)
                for name, kind, value in parameters or []
            ]
        )
        job = self.job(sql, config)
        if job.statement_type in _DML:
            return [(job.num_dml_affected_rows or 0,)]
        return [tuple(row.values()) for row in job.result()]

    def merge(self, sql: str) -> Changes | int:
        job = self.job(sql)
        stats = job.dml_stats  # the job's dmlStats: what the MERGE inserted and updated
        if stats is None:
            return job.num_dml_affected_rows or 0
        return Changes(stats.inserted_row_count, stats.updated_row_count, 0)

    def load(self, uris: list[str], table: str, columns: list[tuple[str, str]]) -> None:
        from google.api_core.exceptions import BadRequest, NotFound
        from google.cloud import bigquery

        warehouse = self.warehouse
        job = warehouse.client.load_table_from_uri(
            uris,
            warehouse.table_id(table),
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=[bigquery.SchemaField(name, kind) for name, kind in columns],
            ),
            location=warehouse.location,
        )
        try:
            job.result()
        except (BadRequest, NotFound) as exc:
            # BigQuery's words for the files themselves: "Not found: URI gs://…", "Error while
            # reading data, error message: …" (the load job's errors, reason "invalid")
            if not any(words in str(exc) for words in _UNREADABLE):
                raise
            raise LakeUnreadable(uris, exc) from exc
        # a staging table outlives its load by a day at most, whatever stops the run after this
        # (a load job cannot set it: tables.patch, bigquery.tables.update)
        expiring = bigquery.Table(warehouse.table_id(table))
        expiring.expires = dt.datetime.now(dt.UTC) + STAGING_EXPIRES_AFTER
        warehouse.client.update_table(expiring, ["expires"])

    def table_columns(self, name: str) -> set[str] | None:
        from google.api_core.exceptions import NotFound

        try:  # through the API: no query, no metadata update
            table = self.warehouse.client.get_table(self.warehouse.table_id(name))
        except NotFound:
            return None
        return {field.name for field in table.schema}

    def read(self, sql: str) -> pa.Table:
        return self.job(sql).to_arrow(create_bqstorage_client=False)


class BigQueryWarehouse(Warehouse):
    dialect = "bigquery"

    def __init__(
        self,
        client,
        project: str,
        dataset: str = DEFAULT_RAW_SCHEMA,
        location: str = "US",
        writes: bool = True,
    ) -> None:
        super().__init__(dataset, writes)
        self.client = client
        self.project = project
        self.dataset = dataset
        self.location = location
        self.columns = bigquery_columns()

    def table(self, name: str, schema: str | None = None) -> str:
        return f"`{self.project}.{schema or self.dataset}.{name}`"

    def _conflict(self, error: Exception) -> str | None:
        """BigQuery's "Transaction is aborted due to concurrent update against table T" (another
        session's transaction holds T) and "Could not serialize access to table T due to
        concurrent update" (troubleshooting queries, Google Cloud docs): the table."""
        from google.api_core.exceptions import GoogleAPICallError

        said = str(error)
        if not isinstance(error, GoogleAPICallError) or "due to concurrent update" not in said:
            return None
        named = re.search(r"(?:against|access to) table (\S+?)\.?(?:\s|$)", said)
        return named[1] if named else "a table of the load"

    def staging_tables(self, run_id: str, scope: Scope) -> tuple[str, str]:
        """A load's own staging tables, named by its run and scope: two writers (a resized pool,
        a second deployment, a worker killed mid-load) never share one."""
        key = hashlib.sha256(f"{run_id}\n{scope.label}".encode()).hexdigest()[:12]
        run = re.sub(r"\W+", "_", run_id).strip("_")[:60]
        return f"{STAGING_TABLE}__{run}_{key}", f"{REJECTS_STAGING_TABLE}__{run}_{key}"

    def table_id(self, name: str) -> str:
        """A table of the dataset, as the API names it."""
        return f"{self.project}.{self.dataset}.{name}"

    @contextmanager
    def session(self, transaction: bool = False) -> Iterator[BigQuerySession]:
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud import bigquery

        if not transaction:
            yield BigQuerySession(self)
            return
        config = bigquery.QueryJobConfig(create_session=True)
        begin = BigQuerySession(self).job("BEGIN TRANSACTION", config)
        session = BigQuerySession(self, begin.session_info.session_id)
        try:
            yield session
            session.job("COMMIT TRANSACTION")
        except BaseException:
            try:
                session.job("ROLLBACK TRANSACTION")
            except GoogleAPICallError as exc:  # a failed statement may have ended it already
                log.warning("ROLLBACK TRANSACTION: %s", exc)
            raise
        finally:
            try:
                session.job("CALL BQ.ABORT_SESSION()")
            except GoogleAPICallError as exc:  # it ends by itself after 24 idle hours
                log.info("The session did not end at once (%s)", exc)

    def _dataset(self, create: bool) -> None:
        """The dataset, read through the API (``bigquery.datasets.get``, which the dataset's own
        roles carry) and made only when it is missing and ``create`` (``bigquery.datasets.create``
        is a project's: docs/deploy.md, "Permissions"). One that exists elsewhere than
        SFPD_BQ_LOCATION is refused: jobs run in the location they are given."""
        from google.api_core.exceptions import Conflict, NotFound
        from google.cloud import bigquery

        dataset_id = f"{self.project}.{self.dataset}"
        try:
            found = self.client.get_dataset(dataset_id)
        except NotFound:
            if not create:
                return
            log.info("Making the dataset %s in %s", dataset_id, self.location)
            dataset = bigquery.Dataset(dataset_id)
            dataset.location = self.location
            try:
                found = self.client.create_dataset(dataset)
            except Conflict:  # another task made it meanwhile
                found = self.client.get_dataset(dataset_id)
        location = found.location or self.location
        if location.lower() != self.location.lower():
            raise LocationMismatch(
                f"The BigQuery dataset {dataset_id} is in {location}, but "
                f"SFPD_BQ_LOCATION is {self.location}: set SFPD_BQ_LOCATION={location}, or "
                "SFPD_RAW_SCHEMA to a dataset in that location. Nothing was read or written."
            )

    def _prepare(self, session: Session) -> None:
        """The dataset; a raw table an earlier version partitioned by day is moved to monthly
        partitions, once."""
        from google.api_core.exceptions import NotFound

        self._dataset(create=True)
        repartition = {"repartitioned": self.table(REPARTITIONED_TABLE), "raw_name": RAW_TABLE}
        try:
            raw = self.client.get_table(self.table_id(RAW_TABLE))
        except NotFound:
            if session.table_columns(REPARTITIONED_TABLE) is not None:  # stopped after the DROP
                session.run(self.sql("repartition", finish=True, **repartition))
            return
        if partitioned_by_day(raw):
            log.warning("Moving %s to monthly partitions (once; it was partitioned by day)", raw)
            session.run(self.sql("repartition", finish=False, **repartition))

    def _inspect(self, session: Session) -> None:
        from google.api_core.exceptions import NotFound

        try:
            raw = self.client.get_table(self.table_id(RAW_TABLE))
        except NotFound:
            return
        if partitioned_by_day(raw):
            log.warning(
                "%s is partitioned by day: the next merge moves it to monthly partitions (this "
                "task only reads, and leaves it)", raw,
            )  # fmt: skip

    def check_locations(self, bucket: str, bucket_location: str) -> None:
        """Before any work: the dataset where SFPD_BQ_LOCATION says, and the lake's bucket
        where a load job into it can read (else :class:`LocationMismatch`, naming both). It reads
        only: a missing dataset is made in SFPD_BQ_LOCATION by the first merge."""
        self._dataset(create=False)
        if not bucket_serves(bucket_location, self.location):
            raise LocationMismatch(
                f"The lake's bucket gs://{bucket} is in {bucket_location}, and a load job "
                f"into the dataset {self.project}.{self.dataset} in {self.location} cannot read "
                "it: BigQuery loads from a bucket in the dataset's location (any bucket for the "
                "US multi-region). Point SFPD_LAKE_URI at a bucket in "
                f"{self.location}, or set SFPD_BQ_LOCATION (and the dataset) to "
                f"{bucket_location}. Nothing was read or written."
            )
