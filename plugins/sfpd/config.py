"""Settings from the environment: the configuration contract documented in the README."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# plugins/sfpd/config.py -> project root (Astro: /usr/local/airflow).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSES = ("duckdb", "bigquery")
# How Cosmos runs dbt (docs/how-it-works.md, "Under a scheduler"): one `dbt build` watched by a
# sensor per node, or one dbt process per node. Default per warehouse: DuckDB has one writer at a
# time.
# virtualenv: dbt outside Airflow's environment (Composer: its images' pins clash with dbt's)
DBT_EXECUTION_MODES = ("watcher", "local", "virtualenv")
DEFAULT_DBT_EXECUTION_MODE = {"duckdb": "watcher", "bigquery": "local"}
DEFAULT_DATASET_ID = "wg3w-h783"  # Police Department Incident Reports: 2018 to Present
MAX_PAGE_SIZE = 50_000  # the most rows a SODA 2.x page may hold
DEFAULT_RAW_SCHEMA = "sfpd_raw"  # schema (DuckDB) / dataset (BigQuery) of the pipeline's tables
DEFAULT_MAX_REJECT_SHARE = 0.01  # rows that may be quarantined before a load fails
# Days the lake keeps a load's folder and a report after it was written (the warehouse's audit
# and rejects tables keep the history); at least 2, so no running or retrying task loses its files.
DEFAULT_LAKE_RETENTION_DAYS = 30
MIN_LAKE_RETENTION_DAYS = 2


def default_dbt_project_dir(root: Path) -> Path:
    """include/dbt (Astro layout), else data/dbt (a Cloud Composer bucket has no include/)."""
    astro = root / "include" / "dbt"
    composer = root / "data" / "dbt"
    return composer if not astro.exists() and composer.exists() else astro


class ConfigError(ValueError):
    """A setting has a value the pipeline cannot use."""


# Values rendered into SQL or URLs as names: checked here, so nothing else has to quote them.
_PATTERNS = {
    # a Socrata dataset id ("four-by-four")
    "SFPD_DATASET_ID": (r"[a-z0-9]{4}-[a-z0-9]{4}", "a Socrata dataset id like wg3w-h783"),
    # a schema (DuckDB) or dataset (BigQuery) name, rendered into SQL
    "SFPD_RAW_SCHEMA": (r"[A-Za-z_][A-Za-z0-9_]{0,1023}", "letters, digits and _"),
    # a GCP project id (or a domain-scoped one, example.com:project)
    "SFPD_GCP_PROJECT": (
        r"([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]",
        "a GCP project id: 6-30 lowercase letters, digits and -",
    ),
}


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _checked(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name) or default
    pattern, what = _PATTERNS[name]
    if value is not None and not re.fullmatch(pattern, value):
        raise ConfigError(f"{name}={value!r} is not {what}")
    return value


@dataclass(frozen=True)
class Settings:
    warehouse: str
    duckdb_path: Path
    lake_uri: str
    dataset_id: str
    socrata_conn_id: str
    page_size: int
    dbt_project_dir: Path
    raw_schema: str = DEFAULT_RAW_SCHEMA
    max_reject_share: float = DEFAULT_MAX_REJECT_SHARE
    lake_retention_days: int = DEFAULT_LAKE_RETENTION_DAYS
    # BigQuery (SFPD_WAREHOUSE=bigquery)
    gcp_conn_id: str = "google_cloud_default"
    gcp_project: str | None = None
    bq_location: str = "US"
    dbt_execution_mode: str = "watcher"
    dbt_virtualenv_dir: Path = Path(tempfile.gettempdir()) / "sfpd-dbt-venv"
    # read the source even when its metadata says nothing changed since the last load
    force_pull: bool = False
    # a profiles.yml of your own for dbt (its target named after the warehouse)
    dbt_profiles_yml: Path | None = None

    @property
    def single_writer(self) -> bool:
        """True when one process at a time may open the warehouse (a DuckDB file)."""
        return self.warehouse == "duckdb"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        root = Path(env.get("SFPD_PROJECT_ROOT", PROJECT_ROOT))
        warehouse = env.get("SFPD_WAREHOUSE", "duckdb").strip().lower()
        if warehouse not in WAREHOUSES:
            raise ConfigError(
                f"SFPD_WAREHOUSE={warehouse!r} is not supported; use one of {WAREHOUSES}"
            )
        duckdb_path = Path(env.get("SFPD_DUCKDB_PATH", root / "data" / "warehouse" / "sfpd.duckdb"))
        if not duckdb_path.is_absolute():
            raise ConfigError(f"SFPD_DUCKDB_PATH must be an absolute path, not {duckdb_path}")
        try:
            page_size = int(env.get("SFPD_PAGE_SIZE", MAX_PAGE_SIZE))
        except ValueError as exc:
            raise ConfigError(f"SFPD_PAGE_SIZE must be an integer: {exc}") from exc
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"SFPD_PAGE_SIZE must be between 1 and {MAX_PAGE_SIZE}")
        try:
            max_reject_share = float(env.get("SFPD_MAX_REJECT_SHARE", DEFAULT_MAX_REJECT_SHARE))
        except ValueError as exc:
            raise ConfigError(f"SFPD_MAX_REJECT_SHARE must be a number: {exc}") from exc
        if not 0 <= max_reject_share <= 1:
            raise ConfigError("SFPD_MAX_REJECT_SHARE must be between 0 and 1 (0.01 = 1%)")
        try:
            retention = int(env.get("SFPD_LAKE_RETENTION_DAYS", DEFAULT_LAKE_RETENTION_DAYS))
        except ValueError as exc:
            raise ConfigError(f"SFPD_LAKE_RETENTION_DAYS must be a whole number: {exc}") from exc
        if retention < MIN_LAKE_RETENTION_DAYS:
            raise ConfigError(
                f"SFPD_LAKE_RETENTION_DAYS must be at least {MIN_LAKE_RETENTION_DAYS}: a load's "
                "files are read by its merge (and its retries) after the extract wrote them"
            )
        lake_uri = env.get("SFPD_LAKE_URI", (root / "data" / "lake").as_uri())
        if lake_uri.startswith("gs://") and not lake_uri.removeprefix("gs://").strip("/"):
            raise ConfigError(f"SFPD_LAKE_URI={lake_uri!r} names no bucket: gs://bucket/prefix")
        gcp_project = _checked(env, "SFPD_GCP_PROJECT", None)
        if warehouse == "duckdb" and not lake_uri.startswith("file:///"):
            raise ConfigError(
                f"SFPD_WAREHOUSE=duckdb loads the lake from local files: "
                f"SFPD_LAKE_URI={lake_uri!r} must be file:///absolute/path "
                "(a gs:// lake needs SFPD_WAREHOUSE=bigquery)"
            )
        if warehouse == "bigquery":
            if not gcp_project:
                raise ConfigError("SFPD_WAREHOUSE=bigquery needs SFPD_GCP_PROJECT (the project id)")
            if not lake_uri.startswith("gs://"):
                raise ConfigError(
                    "SFPD_WAREHOUSE=bigquery loads from GCS: set SFPD_LAKE_URI=gs://bucket/prefix"
                )
        dbt_execution_mode = (
            env.get("SFPD_DBT_EXECUTION_MODE", DEFAULT_DBT_EXECUTION_MODE[warehouse])
            .strip()
            .lower()
        )
        if dbt_execution_mode not in DBT_EXECUTION_MODES:
            raise ConfigError(
                f"SFPD_DBT_EXECUTION_MODE={dbt_execution_mode!r} is not supported; "
                f"use one of {DBT_EXECUTION_MODES}"
            )
        force_pull = env.get("SFPD_FORCE_PULL", "false").strip().lower()
        if force_pull not in _BOOLEANS:
            raise ConfigError(f"SFPD_FORCE_PULL={force_pull!r} is not one of {sorted(_BOOLEANS)}")
        profiles_yml = env.get("SFPD_DBT_PROFILES_YML")
        if profiles_yml and not Path(profiles_yml).is_absolute():
            raise ConfigError(f"SFPD_DBT_PROFILES_YML must be an absolute path, not {profiles_yml}")
        return cls(
            warehouse=warehouse,
            duckdb_path=duckdb_path,
            lake_uri=lake_uri,
            dataset_id=_checked(env, "SFPD_DATASET_ID", DEFAULT_DATASET_ID),
            socrata_conn_id=env.get("SFPD_SOCRATA_CONN_ID", "socrata_default"),
            page_size=page_size,
            dbt_project_dir=Path(env.get("SFPD_DBT_PROJECT_DIR", default_dbt_project_dir(root))),
            raw_schema=_checked(env, "SFPD_RAW_SCHEMA", DEFAULT_RAW_SCHEMA),
            max_reject_share=max_reject_share,
            lake_retention_days=retention,
            gcp_conn_id=env.get("SFPD_GCP_CONN_ID", "google_cloud_default"),
            gcp_project=gcp_project,
            bq_location=env.get("SFPD_BQ_LOCATION", "US"),
            dbt_execution_mode=dbt_execution_mode,
            dbt_virtualenv_dir=Path(env.get("SFPD_DBT_VIRTUALENV_DIR", cls.dbt_virtualenv_dir)),
            force_pull=_BOOLEANS[force_pull],
            dbt_profiles_yml=Path(profiles_yml) if profiles_yml else None,
        )

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt profile and project read (profiles.yml, dbt_project.yml)."""
        return {
            "SFPD_WAREHOUSE": self.warehouse,
            "SFPD_DUCKDB_PATH": str(self.duckdb_path),
            "SFPD_RAW_SCHEMA": self.raw_schema,
            "SFPD_GCP_PROJECT": self.gcp_project or "",
            "SFPD_BQ_LOCATION": self.bq_location,
        }
