"""The OpenLineage datasets of the pipeline's tasks (sfpd.lineage) and the Assets' URIs
(sfpd.assets): named as dbt's OpenLineage integration and the Google provider name them. That
the chain joins in real events is tests/e2e (test_operations, test_daily_dag_bigquery)."""

from types import SimpleNamespace

import pytest

from sfpd.assets import mart_asset, raw_asset
from sfpd.config import Settings
from sfpd.lineage import SfpdTaskExtractor, datasets, report_marts

DUCKDB = Settings.from_env(
    {"SFPD_DUCKDB_PATH": "/srv/w/sfpd.duckdb", "SFPD_LAKE_URI": "file:///srv/lake"}
)
BIGQUERY = Settings.from_env(
    {"SFPD_WAREHOUSE": "bigquery", "SFPD_GCP_PROJECT": "my-project",
     "SFPD_LAKE_URI": "gs://bucket/sfpd"}
)  # fmt: skip
HOST = "https://data.sf.gov"


def names(lineage) -> tuple[list, list]:
    pairs = lambda found: [(d.namespace, d.name) for d in found]  # noqa: E731
    return pairs(lineage.inputs), pairs(lineage.outputs)


@pytest.mark.parametrize(
    ("settings", "lake", "raw"),
    [
        (DUCKDB, ("file", "/srv/lake/wg3w-h783/windows"),
         ("duckdb:///srv/w/sfpd.duckdb", "sfpd.sfpd_raw.incidents")),
        (BIGQUERY, ("gs://bucket", "sfpd/wg3w-h783/windows"),
         ("bigquery", "my-project.sfpd_raw.incidents")),
    ],
)  # fmt: skip
def test_each_task_reads_and_writes_what_the_next_one_names_the_same(settings, lake, raw):
    socrata = (HOST, "resource/wg3w-h783")
    assert names(datasets("extract", settings, HOST)) == ([socrata], [lake])
    assert names(datasets("chunk.extract", settings, HOST)) == ([socrata], [lake])
    assert names(datasets("merge", settings, HOST)) == ([lake], [raw])
    assert names(datasets("chunk.merge", settings, HOST)) == ([lake], [raw])
    assert names(datasets("catch_up", settings, HOST)) == ([socrata], [lake, raw])
    inputs, outputs = names(datasets("report", settings, HOST))
    assert len(inputs) == 6 and all(name.split(".")[-2] == "sfpd_marts" for _, name in inputs)
    assert outputs == [(lake[0], lake[1].replace("windows", "reports"))]
    assert names(datasets("plan_window", settings, HOST)) == ([], [])


def test_the_report_reads_the_marts_its_queries_name():
    assert report_marts() == [
        "fct_incident_offences", "rpt_daily_reports_by_district", "rpt_emerging_hotspots",
        "rpt_hotspots_by_neighborhood", "rpt_monthly_reports_by_district",
        "rpt_resolution_rates_by_category",
    ]  # fmt: skip


def test_the_extractor_answers_for_the_pipelines_dags_only():
    other = SfpdTaskExtractor(SimpleNamespace(dag_id="someone_elses_dag", task_id="extract"))
    assert names(other.extract()) == ([], [])  # the provider then falls back to its own way


def test_asset_uris_say_where_the_table_is():
    assert raw_asset(BIGQUERY).uri == "bigquery://my-project/sfpd_raw/incidents"
    assert mart_asset(BIGQUERY, "fct_incident_reports").name == "sfpd_marts.fct_incident_reports"
    assert raw_asset(DUCKDB).uri == "x-duckdb:///srv/w/sfpd.duckdb/sfpd_raw/incidents"
