"""Run the daily DAG once on this machine (`make run`): embedded warehouse, real Airflow.

    python -m sfpd_dev.local              # live DataSF API, window ending today
    SFPD_SOURCE=replay python -m sfpd_dev.local   # offline: bundled real rows on 127.0.0.1

Runs ``airflow dags test sfpd_incidents_daily <anchor>`` with a project-local Airflow home,
then prints where the DuckDB file is and reports per police district for the window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import duckdb
import yaml

from sfpd.config import PROJECT_ROOT, Settings
from sfpd.lake import LocalLake
from sfpd.report import report_name
from sfpd.socrata import SocrataEndpoint, SocrataSource, SourceUnreachable
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
                   capture_output=True, timeout=300)  # fmt: skip


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


# our own log lines that tell how far the extract is (sfpd.extract, sfpd.socrata)
_COUNTED = re.compile(r"Socrata counts (\d+) rows for window (\S+)")
_PAGE = re.compile(r"Socrata page after row_id \S+: (\d+) rows")
_ERROR = re.compile(r"\[error|Error:|Exception:|Traceback|ERROR", re.IGNORECASE)


def _xcom_summary(task_id: str, value: object) -> str:
    """What a finished task did, from its XCom (rows read, merged, caught up)."""
    if task_id == "source_changed":
        return "source changed" if value else "nothing changed upstream: no read"
    if task_id == "prune_lake":
        return f"{value} lake entries past the retention removed"
    if task_id == "check_upstream":
        return f"DataSF last published {value[:16].replace('T', ' ')} UTC"
    if not isinstance(value, dict):
        return ""
    if task_id == "extract":
        return f"{value['rows_read']:,} rows read, {value['rejected']:,} quarantined"
    if task_id == "merge":
        return (
            f"{value['rows_inserted']:,} inserted, {value['rows_updated']:,} updated, "
            f"{value['rows_deleted']:,} deleted"
        )
    if task_id == "catch_up":
        changed = value.get("changed")
        return f"{changed['rows_read'] if changed else 0:,} changed rows, " + (
            f"{value['days_differing']} days reloaded"
        )
    return ""


class RunWatch:
    """Follows a `dags test` run: its task instances in the Airflow database (sqlite, read
    only) and the extract's page lines in its log; prints a line per finished task (the dbt
    nodes as one line) and the extract's progress."""

    def __init__(self, dag_id: str, airflow_home: Path, log_path: Path, out) -> None:
        self.dag_id = dag_id
        self.db = airflow_home / "airflow.db"
        self.log_path, self.out = log_path, out
        self.run_id: str | None = None
        # `dags test` replaces an earlier run of the same date (and may reuse its id): the run
        # is the one whose tasks started after this
        self.since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.printed: set[tuple[str, int]] = set()
        self.dbt: list[tuple] = []
        self.offset, self.expected, self.read = 0, 0, 0

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as con:
                return con.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError:  # locked by the run for a moment, or not there yet
            return []

    def poll(self) -> None:
        self._follow_log()
        if self.run_id is None:
            runs = self._query(
                "SELECT run_id FROM task_instance WHERE dag_id = ? AND start_date >= ? LIMIT 1",
                (self.dag_id, self.since),
            )
            self.run_id = runs[0][0] if runs else None
            if self.run_id is None:
                return
        finished = self._query(
            "SELECT ti.task_id, ti.map_index, ti.state, ti.duration, x.value "
            "FROM task_instance ti LEFT JOIN xcom x ON x.run_id = ti.run_id "
            "AND x.task_id = ti.task_id AND x.map_index = ti.map_index "
            "AND x.key = 'return_value' AND x.dag_id = ti.dag_id "
            "WHERE ti.dag_id = ? AND ti.run_id = ? AND ti.end_date IS NOT NULL "
            "AND ti.state IN ('success', 'failed', 'skipped', 'upstream_failed') "
            "ORDER BY ti.end_date",
            (self.dag_id, self.run_id),
        )
        for task_id, map_index, state, seconds, value in finished:
            if (task_id, map_index) in self.printed:
                continue
            self.printed.add((task_id, map_index))
            if task_id.startswith("dbt.") and state == "success":
                self.dbt.append((task_id, seconds or 0.0))
                continue
            self._dbt_line()
            if isinstance(value, str):  # JSON text; SQLite hands a bare number over as one
                value = json.loads(value)
            detail = _xcom_summary(task_id, value) if value is not None else ""
            name = task_id if map_index < 0 else f"{task_id}[{map_index}]"
            self._line(f"{name:<21}{state:<10}{_seconds(seconds)}  {detail}".rstrip())

    def done(self) -> None:
        self.poll()
        self._dbt_line()

    def _dbt_line(self) -> None:
        """The dbt nodes that succeeded, as one line (the build's time), once they are done."""
        if self.dbt:
            seconds = max(s for _, s in self.dbt)
            built = f"{len(self.dbt)} nodes built and tested"
            self._line(f"{'dbt':<21}{'success':<10}{_seconds(seconds)}  {built}")
            self.dbt = []

    def _follow_log(self) -> None:
        with self.log_path.open(errors="replace") as handle:
            handle.seek(self.offset)
            text = handle.read()
        complete = text.rfind("\n") + 1
        self.offset += len(text[:complete].encode(errors="replace"))
        for line in text[:complete].splitlines():
            if counted := _COUNTED.search(line):
                self.expected, self.read = int(counted[1]), 0
            elif (page := _PAGE.search(line)) and self.expected:
                self.read += int(page[1])
                self._line(f"{'  extract':<16}{self.read:,} of {self.expected:,} rows")

    def _line(self, text: str) -> None:
        print(f"  {text}", file=self.out, flush=True)


def _seconds(value: float | None) -> str:
    return f"{value:6.1f} s" if value is not None else " " * 8


def run_dag(
    anchor: dt.datetime,
    env: dict,
    log_path: Path,
    out=sys.stdout,
    dag_id: str = DAG_ID,
    conf: dict | None = None,
    timeout: float | None = None,
) -> bool:
    """``airflow dags test`` of a DAG (the daily one by default), its whole log written to
    ``log_path``; prints a line per finished task while it runs. A run still going after
    ``timeout`` seconds is stopped (its whole process group) and counts as failed. On failure,
    the log's last error lines and its path. True if the run succeeded."""
    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow), "dags", "test", dag_id, anchor.isoformat()]
    if conf is not None:
        command += ["--conf", json.dumps(conf)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Running {dag_id} for {anchor:%Y-%m-%d %H:%M %Z} (log: {log_path})", file=out)
    deadline = time.monotonic() + timeout if timeout else None
    with log_path.open("w") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            watch = RunWatch(dag_id, Path(env["AIRFLOW_HOME"]), log_path, out)
            while process.poll() is None:
                if deadline and time.monotonic() > deadline:
                    print(f"\nThe run did not end within {timeout:.0f} s: stopped.", file=out)
                    break
                watch.poll()
                time.sleep(0.5)
            watch.done()
        finally:
            if process.poll() is None:  # stopped, or this process interrupted
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if process.returncode == 0:
        return True
    text = log_path.read_text(errors="replace")
    errors = [line for line in text.splitlines() if _ERROR.search(line)]
    print("\nThe run failed. Its last error lines:", file=out)
    for line in errors[-12:]:
        print(f"  {line[:300]}", file=out)
    print(f"Full log: {log_path}", file=out)
    return False


def print_summary(settings: Settings, window: Window) -> None:
    sql = (Path(__file__).parent / "district_summary.sql").read_text()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.execute(sql, [window.start, window.end]).fetchall()
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
        create_pools(env)
        log_path = (
            Path(env["AIRFLOW_HOME"]) / "logs" / f"make-run-{dt.datetime.now():%Y%m%dT%H%M%S}.log"
        )
        if not run_dag(anchor, env, log_path):
            return 1
    print_summary(settings, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
