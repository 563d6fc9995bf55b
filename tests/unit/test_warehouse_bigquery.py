"""What the BigQuery warehouse (sfpd.warehouse.bigquery_engine) asks of Google's client before a
load, against a fake of that client (google.cloud.bigquery.Client's methods it calls, answered
from the dataset's tables as the API returns them, every call recorded): a raw table an earlier
version partitioned by day is moved to monthly partitions once, and a move stopped after its
DROP is finished by the next run. On the emulator: tests/integration/test_warehouse_bigquery.py
(which cannot show these: bqemulator keeps no partitioning)."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from google.cloud.bigquery.table import Row

from sfpd.warehouse import AUDIT_COLUMNS, BigQueryWarehouse

PROJECT, DATASET = "sfpd-prod", "sfpd_raw"
RAW, COPY = f"{PROJECT}.{DATASET}.incidents", f"{PROJECT}.{DATASET}.incidents__repartitioned"
REJECTS, AUDIT = f"{PROJECT}.{DATASET}.incidents_rejects", f"{PROJECT}.{DATASET}.load_audit"


class FinishedJob:
    """A query job that has run: no rows but the watermark query's one."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        code = [line for line in sql.splitlines() if line.strip() and not line.startswith("--")]
        self.statement_type = "SELECT" if code[0].upper().startswith("SELECT") else "SCRIPT"
        self.num_dml_affected_rows = None
        self.total_bytes_billed = self.total_bytes_processed = None

    def result(self):
        return [Row((None,), {"watermark": 0})] if self.statement_type == "SELECT" else []


class RecordingClient:
    """The calls the warehouse makes of google.cloud.bigquery.Client, answered from ``tables``
    (table id -> google.cloud.bigquery.Table), recorded in ``calls``. A query's DDL makes,
    drops and renames tables here as BigQuery would (nothing else of a query is run)."""

    def __init__(self, *tables: bigquery.Table) -> None:
        self.tables = {f"{t.project}.{t.dataset_id}.{t.table_id}": t for t in tables}
        self.datasets = {f"{t.project}.{t.dataset_id}" for t in tables}
        self.calls: list[tuple[str, str]] = []

    def get_dataset(self, dataset_id: str) -> bigquery.Dataset:
        self.calls.append(("get_dataset", dataset_id))
        if dataset_id not in self.datasets:
            raise NotFound(f"Not found: Dataset {dataset_id}")
        return bigquery.Dataset(dataset_id)

    def create_dataset(self, dataset: bigquery.Dataset):
        self.calls.append(("create_dataset", dataset.dataset_id))
        self.datasets.add(f"{dataset.project}.{dataset.dataset_id}")
        return dataset

    def get_table(self, table_id: str) -> bigquery.Table:
        self.calls.append(("get_table", table_id))
        if table_id not in self.tables:
            raise NotFound(f"Not found: Table {table_id}")
        return self.tables[table_id]

    def query(self, sql: str, job_config=None, location=None) -> FinishedJob:
        self.calls.append(("query", sql))
        for statement in sql.split(";"):  # what the DDL does to which tables exist
            if made := re.search(
                r"CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?`(.+?)`", statement
            ):
                partitioned = "MONTH" if "PARTITION BY" in statement else None
                self.tables.setdefault(made[1], table(made[1], partitioned))
            elif dropped := re.search(r"DROP TABLE `(.+?)`", statement):
                del self.tables[dropped[1]]
            elif renamed := re.search(r"ALTER TABLE `(.+?)` RENAME TO (\w+)", statement):
                old = self.tables.pop(renamed[1])
                new = f"{old.project}.{old.dataset_id}.{renamed[2]}"
                self.tables[new] = table(new, old.time_partitioning and "MONTH")
        return FinishedJob(sql)

    def queries(self) -> list[str]:
        return [sql for call, sql in self.calls if call == "query"]


def table(table_id: str, partitioned_by: str | None = None) -> bigquery.Table:
    columns = AUDIT_COLUMNS if table_id == AUDIT else {"row_id": "STRING"}
    made = bigquery.Table(table_id, [bigquery.SchemaField(n, k) for n, k in columns.items()])
    if partitioned_by:
        made.time_partitioning = bigquery.TimePartitioning(type_=partitioned_by,
                                                           field="incident_date")  # fmt: skip
    return made


def prepared(client: RecordingClient) -> list[str]:
    """The queries the warehouse ran before its first read (the watermark's)."""
    BigQueryWarehouse(client, PROJECT, DATASET).watermark()
    *before, watermark = client.queries()
    assert "Where the next catch-up starts" in watermark
    return before


def test_a_raw_table_partitioned_by_day_is_moved_to_months(logs):
    client = RecordingClient(table(RAW, "DAY"), table(REJECTS), table(AUDIT))
    (move,) = prepared(client)
    assert move.index(f"CREATE OR REPLACE TABLE `{COPY}`") < move.index(f"DROP TABLE `{RAW}`")
    assert "PARTITION BY DATE_TRUNC(incident_date, MONTH)" in move
    assert move.rstrip().endswith(f"ALTER TABLE `{COPY}` RENAME TO incidents;")
    (moving,) = logs.messages("sfpd.warehouse", logging.WARNING)
    assert moving.startswith("Moving") and moving.endswith(
        "to monthly partitions (once; it was partitioned by day)"
    )


@pytest.mark.parametrize("partitioned_by", ["MONTH", None])
def test_a_raw_table_not_partitioned_by_day_is_left_as_it_is(partitioned_by):
    client = RecordingClient(table(RAW, partitioned_by), table(REJECTS), table(AUDIT))
    assert prepared(client) == []  # not a statement before the read
    assert ("get_table", COPY) not in client.calls


def test_a_move_stopped_after_its_drop_is_finished_by_renaming_the_copy():
    """DDL cannot run in a transaction: a run stopped between the DROP and the rename leaves the
    copy alone. The next run renames it, and makes nothing else."""
    client = RecordingClient(table(COPY, "MONTH"), table(REJECTS), table(AUDIT))
    (finish,) = prepared(client)
    assert finish.strip().splitlines()[-1] == f"ALTER TABLE `{COPY}` RENAME TO incidents;"
    assert "CREATE OR REPLACE" not in finish and "DROP TABLE" not in finish
    assert set(client.tables) == {RAW, REJECTS, AUDIT}


def test_a_new_dataset_gets_its_tables_and_no_move():
    client = RecordingClient()
    (create,) = prepared(client)
    assert "CREATE TABLE IF NOT EXISTS" in create and "incidents__repartitioned" not in create
    assert set(client.tables) == {RAW, REJECTS, AUDIT}
    assert ("create_dataset", DATASET) in client.calls


def test_a_dataset_that_exists_is_read_not_made_again():
    """Making a dataset takes ``bigquery.datasets.create``, a project's permission, even when it
    exists (create_dataset with exists_ok): a dataset granted on its own must only be read."""
    client = RecordingClient(table(RAW, "MONTH"), table(REJECTS), table(AUDIT))
    assert prepared(client) == []
    assert ("get_dataset", f"{PROJECT}.{DATASET}") in client.calls
    assert not [call for call, _ in client.calls if call == "create_dataset"]


def test_a_task_that_only_reads_makes_nothing_where_nothing_is():
    client = RecordingClient()
    reader = BigQueryWarehouse(client, PROJECT, DATASET, writes=False)
    state = reader.source_state()
    assert (state.rows_updated_at, state.caught_up_at, state.first_loaded_at) == (None,) * 3
    assert reader.covered_windows() == []
    assert {call for call, _ in client.calls} == {"get_table"}  # no dataset made, no query
    assert len(client.calls) == 4  # raw (its partitioning), audit, raw, rejects: once
    assert client.tables == {} and client.datasets == set()


def test_a_task_that_only_reads_leaves_a_table_partitioned_by_day(logs):
    client = RecordingClient(table(RAW, "DAY"), table(REJECTS), table(AUDIT))
    BigQueryWarehouse(client, PROJECT, DATASET, writes=False).watermark()
    (read,) = client.queries()
    assert "Where the next catch-up starts" in read  # that query, and no statement before it
    assert client.tables[RAW].time_partitioning.type_ == "DAY"
    (said,) = logs.messages("sfpd.warehouse", logging.WARNING)
    assert said.endswith("is partitioned by day: the next merge moves it to monthly partitions "
                         "(this task only reads, and leaves it)")  # fmt: skip


class LoadingClient:
    """A load job that succeeds, and the table updates after it, recorded."""

    def __init__(self) -> None:
        self.updated: list[tuple[bigquery.Table, list[str]]] = []

    def load_table_from_uri(self, uris, table_id, job_config=None, location=None):
        return FinishedJob("LOAD DATA")

    def update_table(self, table: bigquery.Table, fields: list[str]) -> bigquery.Table:
        self.updated.append((table, fields))
        return table


def test_a_staging_table_expires_a_day_after_its_load():
    """Whatever stops a run after its load (a killed worker), its staging tables are gone a day
    later (bqemulator keeps no expiration: this is where it is shown)."""
    client = LoadingClient()
    before = dt.datetime.now(dt.UTC)
    with BigQueryWarehouse(client, PROJECT, DATASET).session() as session:
        session.load(["gs://lake/part-00000.parquet"], "incidents_staging__run_1", [])
    ((table, fields),) = client.updated
    assert (table.table_id, fields) == ("incidents_staging__run_1", ["expires"])
    day, ms = dt.timedelta(days=1), dt.timedelta(milliseconds=1)  # the API keeps milliseconds
    assert before + day - ms <= table.expires <= dt.datetime.now(dt.UTC) + day


class BillingClient(RecordingClient):
    """Each query job bills what ``bills`` says, in turn (bytes billed, bytes processed)."""

    def __init__(self, *bills: tuple[int | None, int | None]) -> None:
        super().__init__()
        self.bills = list(bills)

    def query(self, sql: str, job_config=None, location=None) -> FinishedJob:
        job = super().query(sql, job_config, location)
        job.total_bytes_billed, job.total_bytes_processed = self.bills.pop(0)
        return job


def test_a_sessions_jobs_bytes_are_summed():
    """What each job billed (BigQuery's totalBytesBilled; a DDL statement's or a cached query's
    may be missing) adds up to the session's, which a load writes to its audit row."""
    mb = 1_000_000
    client = BillingClient((10 * mb, 7 * mb), (None, None), (20 * mb, 31 * mb))
    with BigQueryWarehouse(client, PROJECT, DATASET).session() as session:
        for statement in ("SELECT 1", "CREATE TABLE t (x INT64)", "SELECT 2"):
            session.run(statement)
    assert (session.bytes_billed, session.bytes_processed) == (30 * mb, 38 * mb)
