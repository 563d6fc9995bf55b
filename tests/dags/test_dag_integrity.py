"""Every DAG file imports cleanly and follows the project's rules (Astro template style)."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.conftest import PROJECT_ROOT

DAGS_FOLDER = PROJECT_ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(
        f"{path}: {error}" for path, error in dagbag.import_errors.items()
    )


def test_every_dag_file_defines_a_dag(dagbag):
    files = {path.name for path in DAGS_FOLDER.glob("*.py")}
    loaded = {dag.fileloc.rsplit("/", 1)[-1] for dag in dagbag.dags.values()}
    assert files and files <= loaded


@pytest.mark.parametrize("dag_id", ["sfpd_incidents_daily"])
def test_expected_dags_exist(dagbag, dag_id):
    assert dag_id in dagbag.dags


def test_dags_have_tags_docs_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries} < 2"


def test_daily_dag_schedule_and_concurrency(dagbag):
    dag = dagbag.dags["sfpd_incidents_daily"]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert str(dag.timetable.description).startswith("At 06:00")
    assert dag.timezone.name == "America/Los_Angeles"
    # extract -> merge -> every dbt node
    merge = dag.get_task("merge")
    assert dag.get_task("extract").downstream_task_ids == {"merge"}
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.")}
    assert "dbt.stg_sfpd__incidents_model_build" in dbt_tasks
    assert merge.downstream_task_ids & dbt_tasks
