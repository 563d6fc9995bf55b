"""dbt's profile for the configured warehouse (Cosmos's ProfileConfig), from the checked-in
profiles.yml (DuckDB) or from the Airflow GCP connection (BigQuery)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from cosmos import ProfileConfig
from cosmos.exceptions import CosmosValueError
from cosmos.profiles import (
    BaseProfileMapping,
    GoogleCloudOauthProfileMapping,
    GoogleCloudServiceAccountDictProfileMapping,
    GoogleCloudServiceAccountFileProfileMapping,
)

from sfpd.config import Settings

DBT_THREADS = 8


class GoogleCloudConnectionProfileMapping(BaseProfileMapping):
    """dbt's BigQuery profile authenticated the way the Airflow GCP connection's hook is: a
    service-account key file (extra ``key_path``), a key JSON (extra ``keyfile_dict``), else
    OAuth with the default credentials (Composer's service account, workload identity, ADC).

    Cosmos's mapping for that kind is chosen when a task first needs the profile: parsing a DAG
    never reads the connection."""

    airflow_connection_type = "google_cloud_platform"
    dbt_profile_type = "bigquery"
    KINDS: tuple[type[BaseProfileMapping], ...] = (
        GoogleCloudServiceAccountFileProfileMapping,
        GoogleCloudServiceAccountDictProfileMapping,
        GoogleCloudOauthProfileMapping,
    )

    def _mapping(self, kind: type[BaseProfileMapping]) -> BaseProfileMapping:
        return kind(
            self.conn_id, self.profile_args, self.disable_event_tracking, self.dbt_config_vars
        )

    @cached_property
    def chosen(self) -> BaseProfileMapping:
        for kind in self.KINDS:  # each reads the connection (at most three reads, at run time)
            mapping = self._mapping(kind)
            if mapping.can_claim_connection():
                return mapping
        raise CosmosValueError(
            f"Airflow connection {self.conn_id!r} cannot authenticate dbt on BigQuery: it must be "
            "a Google Cloud connection, and a project must be set (SFPD_GCP_PROJECT or the "
            "connection's extra `project`)."
        )

    def can_claim_connection(self) -> bool:
        return self.chosen.can_claim_connection()

    @property
    def dbt_profile_method(self) -> str | None:  # type: ignore[override]
        return self.chosen.dbt_profile_method

    @property
    def profile(self) -> dict[str, Any]:
        return self.chosen.profile

    @property
    def mock_profile(self) -> dict[str, Any]:  # parse time: no connection read
        return self._mapping(GoogleCloudOauthProfileMapping).mock_profile

    @property
    def env_vars(self) -> dict[str, str]:
        return self.chosen.env_vars


def profile_config(settings: Settings) -> ProfileConfig:
    """DuckDB: the checked-in profiles.yml (paths from env vars). BigQuery: from the Airflow GCP
    connection (:class:`GoogleCloudConnectionProfileMapping`), with threads and location set.
    SFPD_DBT_PROFILES_YML: a profiles.yml of your own instead, its target named after the
    warehouse."""
    if settings.warehouse == "bigquery" and settings.dbt_profiles_yml is None:
        return ProfileConfig(
            profile_name="sfpd",
            target_name="bigquery",
            profile_mapping=GoogleCloudConnectionProfileMapping(
                conn_id=settings.gcp_conn_id,
                profile_args={
                    "project": settings.gcp_project,
                    "dataset": "sfpd",
                    "location": settings.bq_location,
                    "threads": DBT_THREADS,
                },
            ),
        )
    return ProfileConfig(
        profile_name="sfpd",
        target_name=settings.warehouse,
        profiles_yml_filepath=settings.dbt_profiles_yml
        or settings.dbt_project_dir / "profiles.yml",
    )
