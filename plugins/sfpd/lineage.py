"""OpenLineage datasets of the pipeline's own tasks (apache-airflow-providers-openlineage).

Cosmos reports the dbt nodes' datasets (the raw table and seeds in, staging and marts out); this
extractor reports what our TaskFlow tasks read and write, named the way OpenLineage and dbt's
integration name them, so a catalog (Marquez, DataHub, Dataplex) joins them into one chain:

    Socrata dataset -> extract -> lake files -> merge -> raw table -> dbt -> staging -> marts

| task | inputs | outputs |
|---|---|---|
| extract, chunk.extract | the Socrata dataset | the lake's window files |
| merge, chunk.merge | the lake's window files | the raw table |
| catch_up | the Socrata dataset | the lake's window files, the raw table |
| report | the marts | the lake's reports |

Names: the Socrata dataset ``https://<host>`` / ``resource/<dataset id>``; the lake
``file`` / ``<folder>`` or ``gs://<bucket>`` / ``<prefix>/...`` (OpenLineage's object-storage
naming); tables as dbt's integration names them: ``bigquery`` / ``<project>.<dataset>.<table>``,
or ``duckdb://<file>`` / ``<database>.<schema>.<table>`` (the database is the file's stem).

It is used when configured (docs/operating.md, Lineage):
``AIRFLOW__OPENLINEAGE__EXTRACTORS=sfpd.lineage.SfpdTaskExtractor``. Tasks of other DAGs get an
empty result, which makes the provider fall back to what it does without this extractor.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset

from sfpd.assets import RAW_TABLE
from sfpd.config import MARTS_SCHEMA, Settings

DAGS = ("sfpd_incidents_daily", "sfpd_incidents_backfill")
REPORT_SQL = Path(__file__).parent / "sql" / "report"


def report_marts() -> list[str]:
    """The marts the report's queries read (their ``mart("...")`` calls)."""
    calls = re.compile(r'mart\("(\w+)"\)')
    return sorted({m for sql in REPORT_SQL.glob("*.sql") for m in calls.findall(sql.read_text())})


def table(settings: Settings, schema: str, name: str) -> Dataset:
    """A warehouse table as dbt's OpenLineage integration names it."""
    if settings.warehouse == "bigquery":
        return Dataset(namespace="bigquery", name=f"{settings.gcp_project}.{schema}.{name}")
    path = settings.duckdb_path
    return Dataset(namespace=f"duckdb://{path}", name=f"{path.stem}.{schema}.{name}")


def lake(settings: Settings, folder: str) -> Dataset:
    """A folder of the lake (``windows``: the loads' Parquet files; ``reports``)."""
    from sfpd.lake import folder_uri  # not at import: it imports pyarrow

    uri = folder_uri(settings.lake_uri, settings.dataset_id, folder)
    parsed = urlsplit(uri)
    if parsed.scheme == "gs":
        return Dataset(namespace=f"gs://{parsed.netloc}", name=parsed.path.lstrip("/"))
    return Dataset(namespace="file", name=parsed.path)


def socrata(host_url: str, dataset_id: str) -> Dataset:
    return Dataset(namespace=host_url.rstrip("/"), name=f"resource/{dataset_id}")


def datasets(task_id: str, settings: Settings, host_url: str) -> OperatorLineage:
    """What a task of the pipeline's DAGs reads and writes (the table in the module's doc)."""
    source = socrata(host_url, settings.dataset_id)
    windows, raw = lake(settings, "windows"), table(settings, settings.raw_schema, RAW_TABLE)
    step = task_id.rsplit(".", 1)[-1]
    if step == "extract":
        return OperatorLineage(inputs=[source], outputs=[windows])
    if step == "merge":
        return OperatorLineage(inputs=[windows], outputs=[raw])
    if step == "catch_up":
        return OperatorLineage(inputs=[source], outputs=[windows, raw])
    if step == "report":
        marts = [table(settings, MARTS_SCHEMA, mart) for mart in report_marts()]
        return OperatorLineage(inputs=marts, outputs=[lake(settings, "reports")])
    return OperatorLineage()


class SfpdTaskExtractor(BaseExtractor):
    """The provider's extractor for TaskFlow tasks, answering for the pipeline's DAGs only."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        if self.operator.dag_id not in DAGS:
            return OperatorLineage()
        from sfpd.connections import socrata_endpoint

        settings = Settings.from_env()
        endpoint = socrata_endpoint(settings.socrata_conn_id, settings.dataset_id)
        return datasets(self.operator.task_id, settings, endpoint.base_url)
