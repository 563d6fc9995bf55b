"""The dbt project as Airflow task groups (astronomer-cosmos), configured in one place.

Cosmos is used through its public classes and arguments, and no private attribute of a Cosmos
object is read or set. Where its behaviour is changed, each place says why (checked against
Cosmos 1.15.1; look again at each upgrade):

1. :func:`dbt_task_group` sets ``ProjectConfig.manifest_path`` back to the local path after
   construction: Cosmos wraps it in an ObjectStoragePath (for remote manifests), whose first use
   registers every provider's filesystems at each parse of the DAG file (docs/benchmarks.md,
   "DAG parse"); Cosmos has no argument to keep a local path.
2. :func:`_sensors_after_producer`: in a DbtTaskGroup (unlike a DbtDag) Cosmos 1.15 starts the
   watcher's first sensors beside the producer; they are put after it (Airflow's public task
   API) so that `airflow dags test`, which runs one task at a time, does not wait forever.
3. :func:`_mart_outlets` adds our Assets to the tasks Cosmos made (its public ``tasks_map`` and
   ``dbt_graph``): Cosmos's own AssetAlias does not show in Airflow 3's Assets list.
4. :class:`sfpd.dbt_profile.GoogleCloudConnectionProfileMapping` chooses among Cosmos's three
   Google profile mappings when a task first renders the profile, where Cosmos's
   ``get_automatic_profile_mapping`` reads the connection at parse.
5. On DuckDB every dbt task gets Airflow's ``pre_execute`` (:func:`wait_for_warehouse`) through
   Cosmos's ``operator_args``: dbt-duckdb fails at once on a locked file, where our tasks wait.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup, TriggerRule
from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
    DbtResourceType,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)
from cosmos.operators.local import DbtDocsLocalOperator, DbtSourceLocalOperator
from cosmos.operators.virtualenv import DbtDocsVirtualenvOperator, DbtSourceVirtualenvOperator

from sfpd.assets import mart_asset
from sfpd.config import Settings
from sfpd.dbt_profile import profile_config
from sfpd.pools import pools_for

log = logging.getLogger(__name__)

# What `dbt docs generate` writes and the docs page reads (Cosmos's dbt docs in the Airflow UI).
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
# Watcher sensors look at the producer's results this often (seconds) when they defer.
WATCHER_POKE_INTERVAL = 2


class ManifestMissing(FileNotFoundError):
    pass


def lineage_enabled() -> bool:
    """True when OpenLineage events are sent: its provider is installed and a transport is
    configured (the provider's own test)."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


def wait_for_warehouse(context: object = None) -> None:
    """``pre_execute`` of a task that runs dbt on DuckDB: returns once no other process holds the
    file (waits, bounded; otherwise fails naming the holder and what to do), before dbt opens it."""
    from sfpd.warehouse import connect_duckdb

    connect_duckdb(Settings.from_env().duckdb_path).close()


def _requirements(settings: Settings) -> list[str]:
    """dbt's pins for a virtualenv (``<dbt project>/requirements.txt``)."""
    lines = (settings.dbt_project_dir / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _writer(settings: Settings) -> dict[str, Any]:
    """Operator arguments of a task that runs dbt on the warehouse: its pool and, on DuckDB, a
    wait for the file before dbt opens it."""
    writer: dict[str, Any] = {"pool": pools_for(settings).warehouse}
    if settings.single_writer:
        writer["pre_execute"] = wait_for_warehouse
    return writer


def _execution(settings: Settings) -> tuple[ExecutionConfig, TestBehavior, dict[str, Any]]:
    """How Cosmos runs dbt (SFPD_DBT_EXECUTION_MODE; docs/how-it-works.md, "Under a scheduler"),
    the test behaviour that goes with it, and the operator arguments it adds.

    watcher (DuckDB's default): one `dbt build` (dbt's threads) in a producer task, a sensor task
    per node that reports its result. One process opens the DuckDB file, once per run, in the
    warehouse pool. local (BigQuery's default): one `dbt build --select <node>` task per node, in
    parallel; on DuckDB each of them in the warehouse pool, one at a time. virtualenv: as local,
    with dbt from ``<dbt project>/requirements.txt`` in a virtualenv Cosmos builds once per
    worker (SFPD_DBT_VIRTUALENV_DIR) and reuses, for images whose packages clash with dbt's.
    """
    writer = _writer(settings)
    if settings.dbt_execution_mode == "watcher":
        config = ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # Cosmos skips a retried producer (its sensors then run their nodes one by one):
            # a failed build fails the run instead, and clearing it rebuilds (docs/how-it-works.md).
            setup_operator_args={**writer, "retries": 0},
        )
        return config, TestBehavior.AFTER_EACH, {"poke_interval": WATCHER_POKE_INTERVAL}
    # A node's task builds it and runs its own tests (cautious: not the tests that also need a
    # node built later); a test on several nodes gets its own task after all of them.
    if settings.dbt_execution_mode == "virtualenv":
        config = ExecutionConfig(
            execution_mode=ExecutionMode.VIRTUALENV,
            virtualenv_dir=settings.dbt_virtualenv_dir,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        )
        return config, TestBehavior.BUILD, {**writer, "py_requirements": _requirements(settings)}
    config = ExecutionConfig(
        invocation_mode=InvocationMode.DBT_RUNNER,
        test_indirect_selection=TestIndirectSelection.CAUTIOUS,
    )
    return config, TestBehavior.BUILD, writer


def _sensors_after_producer(group: DbtTaskGroup) -> None:
    """Start the watcher sensors once the producer has finished.

    In a DbtTaskGroup Cosmos starts the first sensors beside the producer (a DbtDag puts them
    after it). `airflow dags test` runs one task at a time, so a sensor that defers before the
    producer ran would wait forever; under a scheduler a sensor started after the producer finds
    its node's result at its first look, with no deferral. ``none_failed``: a failed producer
    fails them (the error is in its log; no dbt run of their own), a skipped one (a cleared
    producer) lets them run their own node, as Cosmos intends.
    """
    roots = list(group.get_roots())
    producer = next(task for task in roots if task.task_id.endswith(PRODUCER_WATCHER_TASK_ID))
    for task in roots:
        if task is not producer:
            producer >> task
            task.trigger_rule = TriggerRule.NONE_FAILED


def dbt_task_group(settings: Settings, full_refresh: bool = False, **kwargs: Any) -> DbtTaskGroup:
    """Seeds, models and their tests in dependency order, a task per node (see
    :func:`_execution` for how dbt runs). The models built by month rebuild the months the loads
    since their last build touched (include/dbt/macros/incremental_months.sql), whatever the
    run's window; ``full_refresh`` rebuilds them whole (the backfill DAG)."""
    manifest = settings.dbt_project_dir / "target" / "manifest.json"
    if not manifest.exists():
        raise ManifestMissing(f"{manifest} is missing: build it with `make manifest` (dbt parse)")
    project_config = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        env_vars={
            **settings.dbt_env(),
            # dbt unit tests run in CI (`make test`), not in pipeline runs: they check code, not
            # data.
            "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
            # No manifest.json / run_results.json per task: Cosmos runs each task in a temporary
            # copy of the project, deleted after, and reads the results in memory; writing them
            # was a quarter of the daily DAG's run (docs/benchmarks.md). Unless lineage is on:
            # Cosmos builds the dbt nodes' OpenLineage datasets from those two files.
            "DBT_WRITE_JSON": "true" if lineage_enabled() else "false",
        },
    )
    # Cosmos wraps the manifest in an ObjectStoragePath (for remote manifests); opening one
    # registers every provider's filesystems and lineage hooks at each parse of the DAG file
    # (docs/benchmarks.md, DAG parse). Ours is always a local file: read it as one.
    project_config.manifest_path = manifest
    execution_config, test_behavior, execution_args = _execution(settings)
    group = DbtTaskGroup(
        project_config=project_config,
        profile_config=profile_config(settings),
        execution_config=execution_config,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=test_behavior,
            should_detach_multiple_parents_tests=test_behavior == TestBehavior.BUILD,
        ),
        operator_args={"install_deps": False, "full_refresh": full_refresh, **execution_args},
        **kwargs,
    )
    if execution_config.execution_mode == ExecutionMode.WATCHER:
        _sensors_after_producer(group)
    _mart_outlets(group, settings)
    return group


def _mart_outlets(group: DbtTaskGroup, settings: Settings) -> None:
    """Each mart's Asset (:mod:`sfpd.assets`) on the task that finishes its model: the model's
    test task (one per node) or its build task (build and tests in one). Cosmos's own assets
    (its AssetAlias) do not show in Airflow 3's Assets list and carry no name to schedule on."""
    for node_id, node in group.dbt_graph.filtered_nodes.items():
        if node.resource_type != DbtResourceType.MODEL or "marts" not in node.file_path.parts:
            continue
        target = group.tasks_map[node_id]
        for task in target.leaves if isinstance(target, TaskGroup) else [target]:
            task.outlets = [*task.outlets, mart_asset(settings, node.name)]


def publish_docs(project_dir: str, context: object = None, **_: object) -> None:
    """Cosmos's callback after `dbt docs generate` (in its temporary copy of the project): the
    docs into the lake, ``<dataset>/docs/``, where the Airflow UI's dbt docs page reads them."""
    from sfpd.connections import google_refusals, lake_for

    settings = Settings.from_env()
    target = Path(project_dir) / "target"
    files = {name: (target / name).read_bytes() for name in DOCS_FILES}
    with google_refusals(settings):
        written = lake_for(settings).write_docs(settings.dataset_id, files)
    log.info("dbt docs written to %s", written)


def _dbt_command(settings: Settings, local: type, virtualenv: type, **kwargs: Any) -> Any:
    """One dbt command as its own task, run the way the dbt task group runs its nodes (in
    Airflow's environment, or in Cosmos's virtualenv), in the warehouse's pool."""
    if settings.dbt_execution_mode == "virtualenv":
        operator = virtualenv
        mode = {"py_requirements": _requirements(settings),
                "virtualenv_dir": settings.dbt_virtualenv_dir}  # fmt: skip
    else:
        operator, mode = local, {"invocation_mode": InvocationMode.DBT_RUNNER}
    env = {**settings.dbt_env(), **kwargs.pop("env", {})}
    return operator(
        project_dir=str(settings.dbt_project_dir),
        profile_config=profile_config(settings),
        install_deps=False,
        env=env,
        **_writer(settings),
        **mode,
        **kwargs,
    )


def dbt_source_freshness(settings: Settings) -> Any:
    """`dbt source freshness` after the build: its result in the task's log; a warning (no raw
    row written for 72 h: DataSF stopped publishing) passes, an error (no load or check in
    load_audit for 72 h: the pipeline is not landing) fails the task."""
    return _dbt_command(
        settings, DbtSourceLocalOperator, DbtSourceVirtualenvOperator,
        task_id="dbt_source_freshness",
    )  # fmt: skip


class _ByProduct:
    """A by-product's task (the dbt docs): its failure is a warning in its log, and the task
    succeeds. The marts and the report are built by then: no run fails, and no one is paged,
    for the docs (docs/operating.md, "dbt docs in the Airflow UI")."""

    task_id: str

    def execute(self, context: Any, **kwargs: Any) -> Any:
        try:
            return super().execute(context, **kwargs)  # type: ignore[misc]
        except Exception as exc:  # whatever failed, it fails nothing else
            log.warning("%s failed, which fails nothing else (the marts are built): %s",
                        self.task_id, exc)  # fmt: skip
            return None


class DbtDocsByProductLocalOperator(_ByProduct, DbtDocsLocalOperator):
    """`dbt docs generate` in Airflow's environment, as a by-product."""


class DbtDocsByProductVirtualenvOperator(_ByProduct, DbtDocsVirtualenvOperator):
    """`dbt docs generate` in Cosmos's virtualenv, as a by-product."""


def dbt_docs(settings: Settings) -> Any:
    """`dbt docs generate` after the build, written to the lake (:func:`publish_docs`). A
    failure is a warning in its log (:class:`_ByProduct`): the marts are built by then."""
    return _dbt_command(
        settings, DbtDocsByProductLocalOperator, DbtDocsByProductVirtualenvOperator,
        task_id="dbt_docs", callback=publish_docs, env={"DBT_WRITE_JSON": "true"},
    )  # fmt: skip
