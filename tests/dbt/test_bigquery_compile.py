"""The dbt project for BigQuery, in `make test`: `dbt compile` with dbt-bigquery (against
bqemulator, for the relations dbt looks up) and the public marts' contracts enforced, as in
production; every compiled model parses as BigQuery SQL. (Building on the emulator needs the
contracts off: it cannot take their DDL. That build is tests/e2e/test_daily_dag_bigquery.py.)"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from tests.conftest import PROJECT_ROOT
from tests.dbt.conftest import dbt
from tests.emulators.servers import PROJECT, bigquery_client, start_bigquery

BIGQUERY_TYPES = {"string", "int64", "float64", "numeric", "bool", "date", "datetime",
                  "timestamp", "time"}  # fmt: skip
# Types other engines have and BigQuery has not (sqlglot would read them as BigQuery's own).
FOREIGN_TYPES = re.compile(r"(?i)\bas\s+(double|real|varchar|text|integer|hugeint|boolean)\b")
CALL = re.compile(r"(?i)\b([a-z_][a-z0-9_]*)\s*\(")


def called(sql: str) -> set[str]:
    """The names of the functions a SQL text calls (comments left out)."""
    code = "\n".join(line.split("--")[0] for line in sql.splitlines())
    return {name.lower() for name in CALL.findall(code)}


def compile_for_bigquery(emulators, target: Path, *select: str) -> str:
    """`dbt compile` with dbt-bigquery against bqemulator (for the relations dbt looks up), the
    contracts enforced as in production; dbt's output."""
    env = {
        **os.environ,
        "SFPD_WAREHOUSE": "bigquery",
        "SFPD_GCP_PROJECT": PROJECT,
        "BIGQUERY_EMULATOR_HOST": emulators["bq"].endpoint,
        "DBT_TARGET_PATH": str(target / "target"),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    env.pop("SFPD_DBT_ENFORCE_CONTRACTS", None)  # the default: enforced
    selected = ("--select", *select) if select else ()
    return dbt(env, "compile", *selected, project_dir=PROJECT_ROOT / "include" / "dbt",
               profiles_dir=PROJECT_ROOT / "tests" / "emulators").stdout  # fmt: skip


@pytest.fixture(scope="module")
def compiled(emulators, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("dbt-bigquery")
    compile_for_bigquery(emulators, target)
    return target / "target"


def test_every_model_compiles_for_bigquery_with_its_contract_and_parses(compiled):
    manifest = json.loads((compiled / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "bigquery"
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    marts = [n for n in models if "/marts/" in n["original_file_path"]]
    assert len(marts) == 9 and all(n["contract"]["enforced"] for n in marts)
    for node in marts:
        types = {c["data_type"].lower() for c in node["columns"].values()}
        assert types <= BIGQUERY_TYPES, (node["name"], types - BIGQUERY_TYPES)
    for node in models:
        sql = (compiled / "compiled" / "sfpd" / node["original_file_path"]).read_text()
        assert f"`{PROJECT}`." in sql, node["name"]  # BigQuery's relations
    files = sorted((compiled / "compiled").rglob("*.sql"))  # the models and their data tests
    assert len(files) > len(models)
    for path in files:
        sql = path.read_text()
        parsed = sqlglot.parse_one(sql, dialect="bigquery")  # raises on what it cannot parse
        unknown = {f.name for f in parsed.find_all(exp.Anonymous)}  # no dialect's functions
        assert not unknown, (path.name, unknown)
        # another engine's function sqlglot knows (DuckDB's isodow) is rewritten for BigQuery:
        # every name called must still be called in sqlglot's BigQuery rendering of the file
        bigquery = parsed.sql("bigquery", unsupported_level=ErrorLevel.RAISE)
        assert called(sql) <= called(bigquery), (path.name, called(sql) - called(bigquery))
        assert not FOREIGN_TYPES.search(sql), (path.name, FOREIGN_TYPES.search(sql))


def test_models_built_by_month_overwrite_monthly_partitions_and_say_why(compiled):
    """On BigQuery a model built by month replaces the month partitions its new rows fall in
    (insert_overwrite): monthly partitions stay far under the 4,000 a job may modify through
    2040 (456 months from 2003), daily ones would not."""
    manifest = json.loads((compiled / "manifest.json").read_text())
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    by_month = {name for name, node in nodes.items() if node["config"].get("partition_by")}
    assert by_month == {
        "fct_incident_offences", "fct_incident_reports",
        "rpt_daily_reports_by_district", "rpt_monthly_reports_by_district",
    }  # fmt: skip
    for name in by_month:
        config = nodes[name]["config"]
        assert config["materialized"] == "incremental", name
        assert config["incremental_strategy"] == "insert_overwrite", name
        assert config["partition_by"]["granularity"] == "month", name
        column = config["partition_by"]["field"]
        assert f"partitioned by the month of {column}" in nodes[name]["description"], name


BY_MONTH = ("fct_incident_offences", "fct_incident_reports", "rpt_daily_reports_by_district",
            "rpt_monthly_reports_by_district")  # fmt: skip


@pytest.fixture(scope="module")
def compiled_by_month(tmp_path_factory) -> tuple[Path, str]:
    """`dbt compile` of a daily build by month for BigQuery: the models built by month exist
    (empty) and load_audit holds a load newer than them that touched October 2019. On a
    bqemulator of its own: the shared one's datasets belong to the tests that build there."""
    work = tmp_path_factory.mktemp("bqemulator-by-month")
    (work / "gcs").mkdir()
    bq = start_bigquery(work / "gcs", work)
    try:
        client = bigquery_client(bq)
        for dataset in ("sfpd_raw", "sfpd_marts"):
            client.create_dataset(dataset)
        client.query(
            "CREATE TABLE sfpd_raw.load_audit (loaded_at TIMESTAMP, months_touched STRING);"
            "INSERT INTO sfpd_raw.load_audit VALUES "
            "(TIMESTAMP '2019-11-02 10:00:00', '2019-10-01')"
        ).result()
        for model in BY_MONTH:
            client.query(
                f"CREATE TABLE sfpd_marts.{model} (incident_date DATE, loaded_through TIMESTAMP)"
            ).result()
        log = compile_for_bigquery({"bq": bq}, work, *BY_MONTH, "rpt_emerging_hotspots")
    finally:
        bq.stop()
    return work / "target" / "compiled" / "sfpd" / "models", log


def test_a_daily_build_by_month_compiles_for_bigquery_reading_only_those_months(
    compiled_by_month,
):
    models, log = compiled_by_month
    october = "(incident_date >= date '2019-10-01' and incident_date < date '2019-11-01')"
    sql = {path.stem: path.read_text() for path in models.rglob("*.sql")
           if path.stem in {*BY_MONTH, "rpt_emerging_hotspots"}}  # fmt: skip
    assert len(sql) == 5
    assert "fct_incident_offences: rebuilding months 2019-10-01" in log
    assert october in sql["fct_incident_offences"] and october in sql["fct_incident_reports"]
    # a year's change, then the months whose rolling counts reach back to October
    assert "rebuilding months 2019-10-01 2020-10-01" in log
    for text in sql.values():
        parsed = sqlglot.parse_one(text, dialect="bigquery")
        assert not {f.name for f in parsed.find_all(exp.Anonymous)}
