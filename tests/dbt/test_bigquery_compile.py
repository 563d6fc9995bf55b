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
from tests.emulators.servers import PROJECT

BIGQUERY_TYPES = {"string", "int64", "float64", "numeric", "bool", "date", "datetime",
                  "timestamp", "time"}  # fmt: skip
# Types other engines have and BigQuery has not (sqlglot would read them as BigQuery's own).
FOREIGN_TYPES = re.compile(r"(?i)\bas\s+(double|real|varchar|text|integer|hugeint|boolean)\b")
CALL = re.compile(r"(?i)\b([a-z_][a-z0-9_]*)\s*\(")


def called(sql: str) -> set[str]:
    """The names of the functions a SQL text calls (comments left out)."""
    code = "\n".join(line.split("--")[0] for line in sql.splitlines())
    return {name.lower() for name in CALL.findall(code)}


@pytest.fixture(scope="module")
def compiled(emulators, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("dbt-bigquery")
    env = {
        **os.environ,
        "SFPD_WAREHOUSE": "bigquery",
        "SFPD_GCP_PROJECT": PROJECT,
        "BIGQUERY_EMULATOR_HOST": emulators["bq"].endpoint,
        "DBT_TARGET_PATH": str(target / "target"),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    env.pop("SFPD_DBT_ENFORCE_CONTRACTS", None)  # the default: enforced
    dbt(env, "compile", project_dir=PROJECT_ROOT / "include" / "dbt",
        profiles_dir=PROJECT_ROOT / "tests" / "emulators")  # fmt: skip
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
