"""Settings from the environment: the configuration contract documented in the README."""

from __future__ import annotations

import datetime as dt
import math
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
MARTS_SCHEMA = "sfpd_marts"  # the dbt marts (include/dbt/macros/generate_schema_name.sql)
DEFAULT_MAX_REJECT_SHARE = 0.01  # rows that may be quarantined before a load fails
# Days the lake keeps a load's folder and a report after it was written (the warehouse's audit
# and rejects tables keep the history); at least 2, so no running or retrying task loses its files.
DEFAULT_LAKE_RETENTION_DAYS = 30
MIN_LAKE_RETENTION_DAYS = 2
DEFAULT_TASK_RETRIES = 2  # a local run may set 0 to fail fast
# A daily run not succeeded this long after its schedule is late; a source whose metadata shows
# no change for this long is stale (alerts: docs/operating.md).
DEFAULT_LATE_AFTER_HOURS = 3
DEFAULT_STALE_AFTER_DAYS = 3


# The settings every task of a run must agree on (environment variable: Settings field): the DAG's
# shape (pools, dbt tasks) and where the data is. The run's plan task records them.
RUN_SETTINGS = {
    "SFPD_WAREHOUSE": "warehouse",
    "SFPD_DBT_EXECUTION_MODE": "dbt_execution_mode",
    "SFPD_DUCKDB_PATH": "duckdb_path",
    "SFPD_LAKE_URI": "lake_uri",
    "SFPD_DATASET_ID": "dataset_id",
    "SFPD_RAW_SCHEMA": "raw_schema",
    "SFPD_GCP_PROJECT": "gcp_project",
    "SFPD_BQ_LOCATION": "bq_location",
}


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


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    kind: type[int] | type[float],
    low: float,
    high: float | None = None,
    why: str = "",
):
    """A numeric setting within [low, high], or a ConfigError naming it."""
    what = "a whole number" if kind is int else "a number"
    raw = env.get(name, "").strip()
    try:
        value = kind(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be {what}, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}{why}")
    return value


def _checked(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name) or default
    pattern, what = _PATTERNS[name]
    if value is not None and not re.fullmatch(pattern, value):
        raise ConfigError(f"{name}={value!r} is not {what}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not supported; use one of {choices}")
    return value


def _absolute_path(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    value = env.get(name, default)
    if not value and default is None:  # an optional path left unset
        return None
    if not Path(value).is_absolute():
        raise ConfigError(f"{name} must be an absolute path, not {value}")
    return Path(value)


def _lake_uri(env: Mapping[str, str], root: Path, warehouse: str) -> str:
    """SFPD_LAKE_URI: a local folder for DuckDB, a GCS bucket (and prefix) for BigQuery."""
    lake_uri = env.get("SFPD_LAKE_URI", (root / "data" / "lake").as_uri())
    if lake_uri.startswith("gs://") and not lake_uri.removeprefix("gs://").strip("/"):
        raise ConfigError(f"SFPD_LAKE_URI={lake_uri!r} names no bucket: gs://bucket/prefix")
    if warehouse == "duckdb" and not lake_uri.startswith("file:///"):
        raise ConfigError(
            f"SFPD_WAREHOUSE=duckdb loads the lake from local files: "
            f"SFPD_LAKE_URI={lake_uri!r} must be file:///absolute/path "
            "(a gs:// lake needs SFPD_WAREHOUSE=bigquery)"
        )
    if warehouse == "bigquery" and not lake_uri.startswith("gs://"):
        raise ConfigError(
            "SFPD_WAREHOUSE=bigquery loads from GCS: set SFPD_LAKE_URI=gs://bucket/prefix"
        )
    return lake_uri


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
    # the default of the daily DAG's force_pull param: read the source even when its metadata
    # says nothing changed since the last load
    force_pull: bool = False
    # a profiles.yml of your own for dbt (its target named after the warehouse)
    dbt_profiles_yml: Path | None = None
    task_retries: int = DEFAULT_TASK_RETRIES
    # alerts (sfpd.alerts): e-mail addresses, connections, and when a run is late / a source stale
    alert_emails: tuple[str, ...] = ()
    alert_smtp_conn_id: str = "smtp_default"
    alert_slack_conn_id: str | None = None
    alert_apprise_conn_id: str | None = None
    late_after: dt.timedelta = dt.timedelta(hours=DEFAULT_LATE_AFTER_HOURS)
    stale_after: dt.timedelta = dt.timedelta(days=DEFAULT_STALE_AFTER_DAYS)

    @property
    def single_writer(self) -> bool:
        """True when one process at a time may open the warehouse (a DuckDB file)."""
        return self.warehouse == "duckdb"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        root = Path(env.get("SFPD_PROJECT_ROOT", PROJECT_ROOT))
        warehouse = _choice(env, "SFPD_WAREHOUSE", "duckdb", WAREHOUSES)
        duckdb_path = _absolute_path(env, "SFPD_DUCKDB_PATH", root / "data/warehouse/sfpd.duckdb")
        page_size = _number(env, "SFPD_PAGE_SIZE", MAX_PAGE_SIZE, int, 1, MAX_PAGE_SIZE)
        max_reject_share = _number(
            env, "SFPD_MAX_REJECT_SHARE", DEFAULT_MAX_REJECT_SHARE, float, 0, 1, " (0.01 = 1%)"
        )
        retention = _number(
            env, "SFPD_LAKE_RETENTION_DAYS", DEFAULT_LAKE_RETENTION_DAYS, int,
            MIN_LAKE_RETENTION_DAYS, None, ": a load's files are read by its merge (and its "
            "retries) after the extract wrote them",
        )  # fmt: skip
        task_retries = _number(env, "SFPD_TASK_RETRIES", DEFAULT_TASK_RETRIES, int, 0)
        late_after = _number(env, "SFPD_LATE_AFTER_HOURS", DEFAULT_LATE_AFTER_HOURS, float, 0.01)
        stale_after = _number(env, "SFPD_STALE_AFTER_DAYS", DEFAULT_STALE_AFTER_DAYS, float, 0.1)
        gcp_project = _checked(env, "SFPD_GCP_PROJECT", None)
        if warehouse == "bigquery" and not gcp_project:
            raise ConfigError("SFPD_WAREHOUSE=bigquery needs SFPD_GCP_PROJECT (the project id)")
        lake_uri = _lake_uri(env, root, warehouse)
        dbt_execution_mode = _choice(
            env, "SFPD_DBT_EXECUTION_MODE", DEFAULT_DBT_EXECUTION_MODE[warehouse],
            DBT_EXECUTION_MODES,
        )  # fmt: skip
        force_pull = env.get("SFPD_FORCE_PULL", "false").strip().lower()
        if force_pull not in _BOOLEANS:
            raise ConfigError(f"SFPD_FORCE_PULL={force_pull!r} is not one of {sorted(_BOOLEANS)}")
        profiles_yml = _absolute_path(env, "SFPD_DBT_PROFILES_YML", None)
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
            dbt_profiles_yml=profiles_yml,
            task_retries=task_retries,
            alert_emails=tuple(
                a.strip() for a in env.get("SFPD_ALERT_EMAILS", "").split(",") if a.strip()
            ),
            alert_smtp_conn_id=env.get("SFPD_ALERT_SMTP_CONN_ID") or "smtp_default",
            alert_slack_conn_id=env.get("SFPD_ALERT_SLACK_CONN_ID") or None,
            alert_apprise_conn_id=env.get("SFPD_ALERT_APPRISE_CONN_ID") or None,
            late_after=dt.timedelta(hours=late_after),
            stale_after=dt.timedelta(days=stale_after),
        )

    def recorded(self) -> dict[str, str]:
        """The settings a run's tasks must agree on (what the DAG's shape and the data's place
        depend on), by environment variable, as the run's plan task records them."""
        return {name: str(getattr(self, field)) for name, field in RUN_SETTINGS.items()}

    def check_recorded(self, recorded: Mapping[str, str], where: str) -> None:
        """A ConfigError naming each setting whose value here differs from ``recorded`` (the
        settings :meth:`recorded` gave in ``where``)."""
        mine = self.recorded()
        differing = [
            f"{name} is {mine[name]!r} here but was {value!r} in {where}"
            for name, value in sorted(recorded.items())
            if mine.get(name) != value
        ]
        if differing:
            raise ConfigError(
                f"This worker's settings differ from those the run began with: "
                f"{'; '.join(differing)}. Give every worker and the DAG processor the same "
                'environment, then clear the run (docs/operating.md, "Settings").'
            )

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt profile and project read (profiles.yml, dbt_project.yml)."""
        return {
            "SFPD_WAREHOUSE": self.warehouse,
            "SFPD_DUCKDB_PATH": str(self.duckdb_path),
            "SFPD_RAW_SCHEMA": self.raw_schema,
            "SFPD_GCP_PROJECT": self.gcp_project or "",
            "SFPD_BQ_LOCATION": self.bq_location,
            # sfpd.incidents' freshness warning: the staleness message's threshold, whole hours
            "SFPD_STALE_AFTER_HOURS": str(
                max(1, math.ceil(self.stale_after / dt.timedelta(hours=1)))
            ),
        }
