"""Run the daily DAG once on this machine (`make run`): embedded warehouse, real Airflow.

    python -m sfpd_dev.local              # live DataSF API, window ending today
    SFPD_SOURCE=replay python -m sfpd_dev.local   # offline: bundled real rows on 127.0.0.1

Runs ``airflow dags test sfpd_incidents_daily <anchor>`` with a project-local Airflow home,
then prints where the DuckDB file is and reports per police district for the window.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import duckdb
import yaml

from sfpd.config import PROJECT_ROOT, Settings
from sfpd.lake import LocalLake
from sfpd.report import report_name
from sfpd.socrata import SocrataEndpoint, SocrataSource, SourceUnreachable
from sfpd.sql import render
from sfpd.window import SF_TZ, Window, rolling_window
from sfpd_dev.replay import BUNDLED_ROWS, ReplayServer

DAG_ID = "sfpd_incidents_daily"
# The bundled rows cover December 2018 completely (and parts of autumn 2019).
REPLAY_DEFAULT_DATE = "2019-01-01"


def airflow_env(project_root: Path = PROJECT_ROOT, airflow_home: Path | None = None) -> dict:
    """Environment for the Airflow CLI on this project (also used by the end-to-end tests)."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home or project_root / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project_root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project_root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }


def pools(project_root: Path = PROJECT_ROOT) -> dict[str, dict]:
    """The pools airflow_settings.yaml declares, in `airflow pools import` form."""
    settings = yaml.safe_load((project_root / "airflow_settings.yaml").read_text())
    return {
        pool["pool_name"]: {"slots": pool["pool_slot"], "description": pool["pool_description"]}
        for pool in settings["airflow"]["pools"]
    }


def connections(project_root: Path = PROJECT_ROOT) -> dict[str, dict]:
    """The connections airflow_settings.yaml declares, in `airflow connections import` form."""
    settings = yaml.safe_load((project_root / "airflow_settings.yaml").read_text())
    found = {}
    for conn in settings["airflow"]["connections"]:
        fields = {
            key if key == "conn_type" else key.removeprefix("conn_"): value
            for key, value in conn.items()
            if value not in (None, "")
        }
        found[fields.pop("id")] = fields
    return found


def create_pools(env: dict) -> None:
    """Create (or update) the declared pools in the Airflow home ``env`` points at."""
    path = Path(env["AIRFLOW_HOME"]) / "pools.json"
    path.write_text(json.dumps(pools()))
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "pools", "import", str(path)], env=env, check=True,
                   capture_output=True)  # fmt: skip


def anchor_for(run_date: str | None) -> dt.datetime:
    """06:00 in San Francisco on ``run_date`` (the schedule's time), or now."""
    if not run_date:
        return dt.datetime.now(dt.UTC)
    day = dt.date.fromisoformat(run_date)
    return dt.datetime.combine(day, dt.time(6), tzinfo=SF_TZ)


def endpoint_from_env(env: dict, dataset_id: str) -> SocrataEndpoint:
    """The endpoint AIRFLOW_CONN_SOCRATA_DEFAULT (JSON form) names, else the public API."""
    fields = json.loads(env.get("AIRFLOW_CONN_SOCRATA_DEFAULT") or "{}")
    extra = fields.get("extra") or {}
    return SocrataEndpoint.from_connection_fields(
        fields.get("host"),
        fields.get("port"),
        fields.get("schema"),
        fields.get("password"),
        dataset_id,
        json.loads(extra) if isinstance(extra, str) else extra,
    )


def dags_test(anchor: dt.datetime, env: dict) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow), "dags", "test", DAG_ID, anchor.isoformat()]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True)


def district_summary(duckdb_path: Path, window: Window) -> list[tuple]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.execute(
            render("duckdb/district_summary.sql"),
            {"window_start": window.start, "window_end": window.end},
        ).fetchall()


def print_summary(settings: Settings, window: Window) -> None:
    rows = district_summary(settings.duckdb_path, window)
    print(f"\nDuckDB warehouse: {settings.duckdb_path}")
    print(f"Reports by police district, incidents in [{window.start}, {window.end}):")
    print(f"  {'police_district':<16}{'reports':>9}{'offences':>10}")
    for district, reports, offences in rows:
        print(f"  {district or '(none)':<16}{reports:>9}{offences:>10}")
    print(f"  {'total':<16}{sum(r[1] for r in rows):>9}{sum(r[2] for r in rows):>10}")
    report = LocalLake.from_uri(settings.lake_uri).report_path(
        settings.dataset_id, report_name(window)
    )
    print(f"\nReport (open it in a browser): {report.as_uri()}")


def main() -> int:
    source = os.environ.get("SFPD_SOURCE", "live").strip().lower()
    if source not in ("live", "replay"):
        print(f"SFPD_SOURCE must be 'live' or 'replay', not {source!r}", file=sys.stderr)
        return 2
    run_date = os.environ.get("SFPD_RUN_DATE") or (
        REPLAY_DEFAULT_DATE if source == "replay" else None
    )
    anchor = anchor_for(run_date)
    window = rolling_window(anchor)
    settings = Settings.from_env()
    env = airflow_env()
    env.setdefault("SFPD_TASK_RETRIES", "0")  # a local run fails fast instead of retrying
    with ExitStack() as stack:
        if source == "replay":
            server = stack.enter_context(ReplayServer(BUNDLED_ROWS))
            env["AIRFLOW_CONN_SOCRATA_DEFAULT"] = server.connection_uri_json()
            print(f"Replay server: {len(server.corpus)} bundled rows on 127.0.0.1:{server.port}")
        else:
            # Fail within seconds, not after the task's retries, when the API is out of reach.
            endpoint = endpoint_from_env(env, settings.dataset_id)
            try:
                with SocrataSource(endpoint) as probe:
                    probe.count(window.soql_where())
            except SourceUnreachable as exc:
                print(f"\nERROR: {exc}", file=sys.stderr)
                return 1
        try:
            create_pools(env)
            dags_test(anchor, env)
        except subprocess.CalledProcessError as exc:
            print(f"\nERROR: the DAG run failed (exit {exc.returncode}); see the log above.")
            return 1
    print_summary(settings, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
