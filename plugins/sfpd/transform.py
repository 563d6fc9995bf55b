"""The dbt project as Airflow task groups (astronomer-cosmos), configured in one place."""

from __future__ import annotations

import os
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.profiles import GoogleCloudOauthProfileMapping

from sfpd.config import Settings

DBT_THREADS = 8


class ManifestMissing(FileNotFoundError):
    pass


def profile_config(settings: Settings) -> ProfileConfig:
    """DuckDB: the checked-in profiles.yml (paths from env vars). BigQuery: the Airflow GCP
    connection's default credentials (ADC on Composer, the connection's key elsewhere), with
    threads and location set. With BIGQUERY_EMULATOR_HOST set (a local emulator, as the
    google-cloud-bigquery client honours it) the profiles.yml target `bigquery_emulator`."""
    if settings.warehouse == "bigquery" and not os.environ.get("BIGQUERY_EMULATOR_HOST"):
        return ProfileConfig(
            profile_name="sfpd",
            target_name="bigquery",
            profile_mapping=GoogleCloudOauthProfileMapping(
                conn_id=settings.gcp_conn_id,
                profile_args={
                    "project": settings.gcp_project,
                    "dataset": "sfpd",
                    "location": settings.bq_location,
                    "threads": DBT_THREADS,
                },
            ),
        )
    target = "bigquery_emulator" if settings.warehouse == "bigquery" else settings.warehouse
    return ProfileConfig(
        profile_name="sfpd",
        target_name=target,
        profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
    )


def dbt_task_group(
    settings: Settings, dbt_vars: dict[str, Any], full_refresh: bool | str = False, **kwargs: Any
) -> DbtTaskGroup:
    """Seeds, models and their tests, one task per node (dbt build), in dependency order.
    ``full_refresh`` may be a template (e.g. a DAG param) rendered at run time."""
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
            # data, and an incremental model's unit test needs the model built already.
            "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
            # No manifest.json / run_results.json per task: Cosmos runs each task in a temporary
            # copy of the project, deleted after, and reads the results in memory; writing them
            # was a quarter of the daily DAG's run (README, Benchmarks).
            "DBT_WRITE_JSON": "false",
        },
    )
    # Cosmos wraps the manifest in an ObjectStoragePath (for remote manifests); opening one
    # registers every provider's filesystems and lineage hooks, ~0.5 s at each parse of the
    # DAG file (README, Benchmarks). Ours is always a local file: read it as one.
    project_config.manifest_path = manifest
    return DbtTaskGroup(
        project_config=project_config,
        profile_config=profile_config(settings),
        # A node's task builds it and runs its own tests (cautious: not the tests that also
        # need a node built later); a test on several nodes gets its own task after all of them.
        execution_config=ExecutionConfig(
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
        ),
        operator_args={"vars": dbt_vars, "install_deps": False, "full_refresh": full_refresh},
        **kwargs,
    )
