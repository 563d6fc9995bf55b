"""The BigQuery warehouse (load job + MERGE, catch-up) against bqemulator on 127.0.0.1, from a
GCS lake on fake-gcs-server. What the emulator cannot judge (partitioning, clustering,
partition pruning) is checked on the SQL itself: tests/unit/test_sql.py."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpd.extract import extract_to_lake
from sfpd.gcs_lake import GcsLake
from sfpd.pipeline import Loader
from sfpd.schema import FIELD_NAMES
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd.warehouse import (
    AUDIT_COLUMNS,
    BigQueryWarehouse,
    LakeUnreadable,
    LocationMismatch,
    StagingRejected,
    TransactionConflict,
)
from sfpd.window import Window
from sfpd_dev.replay import ReplayServer, rows_in
from tests.conftest import FIXTURES, rows_of
from tests.emulators.servers import PROJECT, bigquery_client, storage_client
from tests.integration.test_pipeline_catch_up import moved

ID, RUN = "wg3w-h783", "test-run"
NOV_DEC_2018 = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))
IN_WINDOW = len(rows_of(NOV_DEC_2018))  # the bundled rows of November-December 2018
AUTUMN_2019 = Window(dt.date(2019, 9, 1), dt.date(2019, 11, 1))


@pytest.fixture
def gcs(emulators):
    client = storage_client(emulators["gcs"])
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    client.create_bucket(bucket)
    return client, bucket


@pytest.fixture
def lake(gcs):
    client, bucket = gcs
    return GcsLake.from_uri(f"gs://{bucket}/sfpd", client)


@pytest.fixture
def warehouse(emulators):
    dataset = f"raw_{uuid.uuid4().hex[:8]}"
    return BigQueryWarehouse(bigquery_client(emulators["bq"]), PROJECT, dataset, "US")


def raw_rows(warehouse) -> list[tuple]:
    sql = f"SELECT * FROM {warehouse.table('incidents')} ORDER BY row_id"
    return [tuple(row.values()) for row in warehouse.client.query(sql).result()]


def test_bigquery_load_and_merge_then_rerun_changes_nothing(source, lake, warehouse):
    Loader(source, lake, warehouse, "wg3w-h783", RUN).load(AUTUMN_2019)
    autumn = raw_rows(warehouse)
    result = Loader(source, lake, warehouse, "wg3w-h783", RUN).load(NOV_DEC_2018)
    assert (result.rows_read, result.rows_inserted) == (IN_WINDOW, IN_WINDOW)
    assert (result.rows_in_window_before, result.rows_in_window_after) == (0, IN_WINDOW)
    after_first = raw_rows(warehouse)
    assert len({row[0] for row in after_first}) == len(after_first)  # row_id unique
    assert set(autumn) <= set(after_first)  # the other window is untouched

    again = Loader(source, lake, warehouse, "wg3w-h783", RUN).load(NOV_DEC_2018)
    assert again.rows_in_window_before == again.rows_in_window_after == IN_WINDOW
    assert (again.rows_inserted, again.rows_updated, again.rows_deleted) == (0, 0, 0)
    assert raw_rows(warehouse) == after_first
    audit = warehouse.client.query(f"SELECT COUNT(*) FROM {warehouse.table('load_audit')}")
    assert [tuple(r.values()) for r in audit.result()] == [(3,)]
    # each load's bytes are written (bqemulator bills nothing: 0; the sum over a load's jobs is
    # tests/unit/test_warehouse_bigquery.py's)
    billed = f"SELECT bytes_billed, bytes_processed FROM {warehouse.table('load_audit')}"
    assert [tuple(r.values()) for r in warehouse.client.query(billed).result()] == [(0, 0)] * 3
    assert (result.bytes_billed, result.bytes_processed) == (0, 0)


def test_bigquery_types_come_from_the_one_schema(source, lake, warehouse):
    Loader(source, lake, warehouse, "wg3w-h783", RUN).load(NOV_DEC_2018)
    table = warehouse.client.get_table(f"{PROJECT}.{warehouse.dataset}.incidents")
    assert [field.name for field in table.schema] == [*FIELD_NAMES, "_loaded_at"]
    types = {field.name: field.field_type for field in table.schema}
    assert types["incident_datetime"] == "DATETIME"  # floating local time, not TIMESTAMP
    assert types["incident_date"] == "DATE"
    assert types["incident_id"] == "INTEGER"


def test_unfit_staging_leaves_bigquery_raw_unchanged(source, lake, warehouse, gcs):
    extract = extract_to_lake(NOV_DEC_2018, source, lake, "wg3w-h783")
    Loader(source, lake, warehouse, ID, RUN).merge(extract)
    before = raw_rows(warehouse)
    client, bucket = gcs
    data = client.bucket(bucket).blob(extract.uris[0].split(f"{bucket}/", 1)[1]).download_as_bytes()
    ten = pq.read_table(io.BytesIO(data)).slice(0, 10)
    buffer = io.BytesIO()
    pq.write_table(pa.concat_tables([ten, ten]), buffer)
    client.bucket(bucket).blob("dup/part.parquet").upload_from_string(buffer.getvalue())
    dup = replace(extract, uris=[f"gs://{bucket}/dup/part.parquet"], rows=20)
    with pytest.raises(StagingRejected, match="10 repeated row_id"):
        Loader(source, lake, warehouse, ID, RUN).merge(dup)
    assert raw_rows(warehouse) == before


def test_bigquery_repairs_rows_the_table_held_twice(source, lake, warehouse, logs):
    """dedupe.sql's count comes back from a DML job as DuckDB's does from its DELETE."""
    Loader(source, lake, warehouse, ID, RUN).load(NOV_DEC_2018)
    before = raw_rows(warehouse)
    raw = warehouse.table("incidents")
    warehouse.client.query(
        f"INSERT INTO {raw} SELECT * FROM {raw} WHERE row_id IN "
        f"(SELECT row_id FROM {raw} ORDER BY row_id LIMIT 3)"
    ).result()
    assert len(raw_rows(warehouse)) == len(before) + 3
    again = Loader(source, lake, warehouse, ID, RUN).load(NOV_DEC_2018)
    assert "Removed 6 copies of row_ids the table held twice" in logs.text
    assert (again.rows_inserted, again.rows_updated, again.rows_deleted) == (3, 0, 0)
    assert sorted(row[:-1] for row in raw_rows(warehouse)) == sorted(row[:-1] for row in before)


def test_bigquery_catch_up_moves_edits_and_removes_rows_wherever_they_are(lake, warehouse):
    """The catch-up on the production SQL: test_pipeline_catch_up.py's case, smaller."""
    with ReplayServer(FIXTURES) as server:
        endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
        with SocrataSource(endpoint, page_size=5000) as source:
            for window in (NOV_DEC_2018, AUTUMN_2019):
                Loader(source, lake, warehouse, ID, RUN).load(window)
            old = sorted(rows_in(server.corpus, NOV_DEC_2018.soql_where()), key=_row_id)
            recent = sorted(rows_in(server.corpus, AUTUMN_2019.soql_where()), key=_row_id)
            server.upsert(
                [moved(row, "2019-10-20T13:00:00") for row in old[:3]]
                + [moved(row, "2018-12-24T09:30:00") for row in recent[:3]]
                + [{**row, "resolution": "Unfounded (reviewed)"} for row in old[3:6]]
            )
            server.delete(row["row_id"] for row in old[6:8])

            window = Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
            caught = Loader(source, lake, warehouse, ID, RUN).catch_up()

            assert (window.rows_inserted, window.rows_updated, window.rows_deleted) == (0, 3, 3)
            assert (caught.changed.rows_read, caught.changed.rows_inserted) == (9, 3)
            assert sum(result.rows_deleted for result in caught.reloaded) == 2
            loaded = {
                row[0]: (row[4], row[17])  # incident_datetime, resolution
                for row in raw_rows(warehouse)
            }
            assert len(loaded) == len(raw_rows(warehouse))  # row_id unique
            expected = {
                row["row_id"]: (dt.datetime.fromisoformat(row["incident_datetime"]),
                                row.get("resolution"))
                for window in (NOV_DEC_2018, AUTUMN_2019)
                for row in rows_in(server.corpus, window.soql_where())
            }  # fmt: skip
            assert loaded == expected
            again = Loader(source, lake, warehouse, ID, RUN).catch_up()
            assert again.changed is None and again.reloaded == []
            # the next daily run reads nothing: the audit says the loads saw the source as it is
            check = Loader(source, lake, warehouse, ID, "check")
            assert "nothing changed upstream" in check.skip_reason(AUTUMN_2019)


def _row_id(row: dict) -> str:
    return row["row_id"]


# ---------------------------------------------------------------- what the emulator cannot show


def table_rows(warehouse, name: str) -> list[tuple]:
    sql = f"SELECT * FROM {warehouse.table(name)}"
    return sorted(tuple(map(str, row.values())) for row in warehouse.client.query(sql).result())


def test_a_failure_between_the_merge_and_the_audit_leaves_every_table_as_it_was(
    source, lake, warehouse, monkeypatch
):
    """One load is one transaction (a session's): the MERGE and the quarantine's replacement
    are rolled back with the audit row that failed."""
    Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
    before = {name: table_rows(warehouse, name) for name in ("incidents", "incidents_rejects",
                                                               "load_audit")}  # fmt: skip

    def fail(*args, **kwargs):
        raise RuntimeError("injected: the audit row was not written")

    monkeypatch.setattr(warehouse, "_insert_audit", fail)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    with pytest.raises(RuntimeError, match="injected"):
        Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert {name: table_rows(warehouse, name) for name in before} == before
    # the failed load's own staging tables are left (they expire a day after their load: the
    # emulator keeps no expiration, tests/unit/test_warehouse_bigquery.py shows it is set)
    left = {t.table_id for t in warehouse.client.list_tables(f"{PROJECT}.{warehouse.dataset}")}
    assert sorted(name for name in left if "staging" in name) == sorted(
        warehouse.staging_tables(RUN, NOV_DEC_2018)
    )
    monkeypatch.undo()
    retried = Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert retried.rows_inserted == IN_WINDOW  # the retry
    tables = {t.table_id for t in warehouse.client.list_tables(f"{PROJECT}.{warehouse.dataset}")}
    assert tables == {"incidents", "incidents_rejects", "load_audit"}  # its staging dropped


def test_each_load_stages_in_tables_of_its_own(warehouse):
    """Two writers (a resized pool, a second deployment) never share a staging table: the
    names follow the run and the scope; a run id's characters BigQuery refuses are replaced."""
    run = "scheduled__2019-01-01T14:00:00+00:00"
    names = {
        warehouse.staging_tables(r, w) for r in (run, RUN) for w in (NOV_DEC_2018, AUTUMN_2019)
    }
    assert len({name for pair in names for name in pair}) == 8
    rows, rejects = warehouse.staging_tables(run, NOV_DEC_2018)
    assert rows.startswith("incidents_staging__scheduled__2019_01_01T14_00_00_00_00_")
    assert rejects.startswith("incidents_rejects_staging__scheduled__2019_01_01T14_00_00_00_00_")
    assert re.fullmatch(r"\w{1,1024}", rows) and re.fullmatch(r"\w{1,1024}", rejects)


def test_an_audit_table_of_an_earlier_version_gets_the_column_it_lacks(emulators, logs):
    """The audit table as an earlier version made it (through the API, as the emulator keeps a
    table's API schema from its creation: DDL changes do not show there, so that the ALTER runs
    once is shown on DuckDB, tests/integration/test_warehouse_duckdb.py). The first warehouse
    object adds the column and uses it; a table made now needs none."""
    from google.cloud import bigquery

    client, dataset = bigquery_client(emulators["bq"]), f"old_{uuid.uuid4().hex[:8]}"
    client.create_dataset(f"{PROJECT}.{dataset}")
    old = [(n, t) for n, t in AUDIT_COLUMNS.items() if n != "source_rows_updated_at"]
    schema = [bigquery.SchemaField(name, kind) for name, kind in old]
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.load_audit", schema=schema))
    warehouse = BigQueryWarehouse(client, PROJECT, dataset, "US")
    assert warehouse.source_state().rows_updated_at is None  # the column is there
    assert "Adding column(s) ['source_rows_updated_at'] to load_audit" in logs.text
    logs.clear()
    BigQueryWarehouse(client, PROJECT, f"new_{uuid.uuid4().hex[:8]}", "US").watermark()
    assert "Adding column" not in logs.text


def test_locations_that_cannot_work_are_refused_naming_both(emulators):
    bq, gcs = bigquery_client(emulators["bq"]), storage_client(emulators["gcs"])
    dataset = f"eu_{uuid.uuid4().hex[:8]}"
    BigQueryWarehouse(bq, PROJECT, dataset, "EU").watermark()  # the dataset is in the EU
    with pytest.raises(LocationMismatch, match=(
        f"dataset {PROJECT}.{dataset} is in EU, but SFPD_BQ_LOCATION is US: set "
        "SFPD_BQ_LOCATION=EU"
    )):  # fmt: skip
        BigQueryWarehouse(bq, PROJECT, dataset, "US").check_locations("any", "US")
    bucket = gcs.create_bucket(f"us-{uuid.uuid4().hex[:8]}", location="US")
    eu = BigQueryWarehouse(bq, PROJECT, dataset, "EU")
    lake = GcsLake.from_uri(f"gs://{bucket.name}/sfpd", gcs)
    where = lake.location()  # fake-gcs-server puts every bucket in US-CENTRAL1
    with pytest.raises(LocationMismatch, match=f"gs://{bucket.name} is in {where}, and a load"):
        eu.check_locations(lake.bucket, where)
    eu.check_locations(lake.bucket, "europe-west1")  # a region inside the EU multi-region
    us = BigQueryWarehouse(bq, PROJECT, f"us_{uuid.uuid4().hex[:8]}", "US")
    us.check_locations(lake.bucket, "europe-west1")  # the US multi-region loads from anywhere


@pytest.mark.parametrize("damage", ["not Parquet", "gone"])
def test_a_lake_object_that_cannot_be_read_fails_the_merge_naming_it(
    source, lake, warehouse, gcs, damage
):
    Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
    before = raw_rows(warehouse)
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    client, bucket = gcs
    blob = client.bucket(bucket).blob(extract.uris[-1].split(f"{bucket}/", 1)[1])
    if damage == "gone":
        blob.delete()
    else:
        blob.upload_from_string(b"<html>a proxy's error page</html>")
    with pytest.raises(LakeUnreadable) as caught:
        Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert f"({len(extract.uris)} in {extract.uris[-1].rsplit('/', 1)[0]}/)" in str(caught.value)
    assert "clear it (or the whole run)" in str(caught.value)
    assert raw_rows(warehouse) == before


def aborting(warehouse, monkeypatch, times: int) -> list[str]:
    """The next ``times`` MERGEs are aborted as BigQuery aborts a transaction another session's
    holds (its words: "Transaction is aborted due to concurrent update against table ..."; the
    emulator runs one writer at a time and cannot). The statements run are returned."""
    from google.api_core.exceptions import BadRequest

    run, query = [], warehouse.client.query
    raw = f"{PROJECT}.{warehouse.dataset}.incidents"

    def aborted(sql, *args, **kwargs):
        run.append(sql)
        merges = [s for s in run if re.search(r"^MERGE ", s, re.M)]
        if merges and merges[-1] is sql and len(merges) <= times:
            raise BadRequest(f"Transaction is aborted due to concurrent update against table {raw}")
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(warehouse.client, "query", aborted)
    monkeypatch.setattr(warehouse, "conflict_wait", 0)
    return run


def test_a_transaction_another_writer_aborted_is_run_again_whole(
    source, lake, warehouse, monkeypatch, logs
):
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    run = aborting(warehouse, monkeypatch, times=1)
    result = Loader(source, lake, warehouse, ID, RUN).merge(extract)
    assert (result.rows_inserted, result.rows_in_window_after) == (IN_WINDOW, IN_WINDOW)
    assert sum(sql.strip() == "BEGIN TRANSACTION" for sql in run) == 2
    assert sum(sql.strip() == "ROLLBACK TRANSACTION" for sql in run) == 1
    assert f"Another transaction holds {PROJECT}.{warehouse.dataset}.incidents" in logs.text
    assert len(table_rows(warehouse, "load_audit")) == 1


def test_a_transaction_aborted_try_after_try_fails_naming_the_table_and_what_to_end(
    source, lake, warehouse, monkeypatch
):
    Loader(source, lake, warehouse, ID, RUN).load(AUTUMN_2019)
    before = {name: table_rows(warehouse, name) for name in ("incidents", "load_audit")}
    extract = extract_to_lake(NOV_DEC_2018, source, lake, ID)
    aborting(warehouse, monkeypatch, times=3)
    with pytest.raises(TransactionConflict) as conflict:
        Loader(source, lake, warehouse, ID, RUN).merge(extract)
    said = str(conflict.value)
    assert said.startswith(
        "The load's transaction was aborted 3 times: another transaction "
        f"holds {PROJECT}.{warehouse.dataset}.incidents (400 Transaction"
    )
    assert "CALL BQ.ABORT_SESSION('<session_id>')" in said
    monkeypatch.undo()
    assert {name: table_rows(warehouse, name) for name in before} == before
