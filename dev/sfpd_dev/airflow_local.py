"""A local Airflow for this project without Docker (`make airflow`), and the scheduler the
end-to-end tests and benchmarks trigger through the REST API.

    python -m sfpd_dev.airflow_local                       # live DataSF API
    SFPD_SOURCE=replay python -m sfpd_dev.airflow_local    # bundled rows on 127.0.0.1

Starts `airflow api-server`, `scheduler` (LocalExecutor), `dag-processor` and `triggerer`, each in
its own process group, bound to 127.0.0.1 on free ports, with the project's DAGs and plugins and
the pools and connections of airflow_settings.yaml; prints the UI address and login; Ctrl-C (or
SIGTERM) stops every process it started, by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from sfpd.config import PROJECT_ROOT, Settings
from sfpd_dev.local import airflow_env, connections, create_pools
from sfpd_dev.ports import free_port, listening_ports

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USER = "admin"
DEFAULT_PORT = 8080
DOCS_SLUG = "sfpd"  # the docs page: /cosmos/sfpd/dbt_docs_index.html


def dbt_docs_projects(env: dict[str, str]) -> str:
    """Cosmos's dbt docs page (Browse menu) for the docs each build writes to the lake."""
    from sfpd.lake import DOCS, file_uri_to_path, folder_uri

    settings = Settings.from_env(env)
    docs = folder_uri(settings.lake_uri, settings.dataset_id, DOCS)
    project = {"name": "dbt docs (sfpd-incidents)", "dir": docs}
    if docs.startswith("file:"):
        project["dir"] = str(file_uri_to_path(docs))
    else:
        project["conn_id"] = settings.gcp_conn_id
    return json.dumps({DOCS_SLUG: project})


class AirflowNotReady(RuntimeError):
    """A component did not come up in time (its log's tail is in the message)."""


class PortTaken(AirflowNotReady):
    """A component could not bind the port it was given: another process took it first."""


def _secret(path: Path) -> str:
    """A random secret kept in the Airflow home, so every component (and a restart) agrees."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _tail(path: Path, lines: int = 30) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


@dataclass
class RestClient:
    """The Airflow 3 REST API (`/api/v2`) as the UI's user."""

    url: str
    password: str
    timeout: float = 30

    def __post_init__(self) -> None:
        self.session = requests.Session()

    def login(self) -> None:
        reply = self.session.post(
            f"{self.url}/auth/token",
            json={"username": USER, "password": self.password},
            timeout=self.timeout,
        )
        reply.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs) -> dict:
        reply = self.session.request(
            method, f"{self.url}/api/v2{path}", timeout=self.timeout, **kwargs
        )
        if reply.status_code == 401:  # token expired
            self.login()
            reply = self.session.request(
                method, f"{self.url}/api/v2{path}", timeout=self.timeout, **kwargs
            )
        if not reply.ok:
            raise requests.HTTPError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else {}

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        logical_date: str | None,
        conf: dict | None = None,
        run_id: str | None = None,
    ) -> str:
        """A manual run; ``logical_date=None`` is what the UI's Trigger with no date sends."""
        body: dict = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of a run, mapped ones included."""
        found, offset = [], 0
        while True:
            page = self.request(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": offset},
            )
            found += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return found

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> object:
        """A task's XCom value, as the task returned it."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        params = {"deserialize": "true", "map_index": map_index}
        return self.request("GET", path, params=params)["value"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        """The run once it has finished (success or failed); TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(1)


class LocalAirflow:
    """The four Airflow components on 127.0.0.1 for an Airflow home, as a context manager."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        parallelism: int = 4,
        project_root: Path = PROJECT_ROOT,
    ) -> None:
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        self.password = _secret(home / "admin-password")
        (home / "passwords.json").write_text(json.dumps({USER: self.password}))
        base = env if env is not None else airflow_env(project_root, home)
        self.env = {
            **base,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home / "jwt-secret"),
            "AIRFLOW__API__SECRET_KEY": _secret(home / "api-secret"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": base.get("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS")
            or dbt_docs_projects(base),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self._use_ports(port)

    def _use_ports(self, preferred: int | None) -> None:
        """The api-server's port (``preferred`` if free) and the log servers' (not 8793/8794:
        a second local Airflow, or a test's, must not collide), in the components' settings."""
        self.port = free_port(preferred)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env |= {
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        self.api = RestClient(self.url, self.password)

    def log_path(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def _airflow(self, *args: str) -> None:
        airflow = Path(sys.executable).with_name("airflow")
        done = subprocess.run(
            [str(airflow), *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def prepare(self) -> None:
        """Migrate the metadata DB; create the pools and connections of airflow_settings.yaml."""
        self._airflow("db", "migrate")
        create_pools(self.env)
        path = self.home / "connections.json"
        path.write_text(json.dumps(connections()))
        self._airflow("connections", "import", "--overwrite", str(path))

    def start(self, timeout: float = 180, attempts: int = 3) -> LocalAirflow:
        """Start the components and wait until they are healthy. The api-server is told its
        port: if another process took it meanwhile, everything starts again on new ports."""
        self.prepare()
        (self.home / "logs").mkdir(exist_ok=True)
        for attempt in range(1, attempts + 1):
            self._spawn()
            try:
                self.wait_until_healthy(timeout)
                self.api.login()
                return self
            except PortTaken:
                self.stop()
                if attempt == attempts:
                    raise
                self._use_ports(None)
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        for component in COMPONENTS:
            with self.log_path(component).open("ab") as log:
                self.processes[component] = subprocess.Popen(
                    [airflow, component],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group: stopped with its children
                )

    def health(self) -> dict:
        return requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()

    def wait_until_healthy(self, timeout: float) -> None:
        """Until the api-server listens on its port itself (not another process that took it)
        and reports the other components healthy."""
        deadline = time.monotonic() + timeout
        while True:
            for component, process in self.processes.items():
                if process.poll() is not None:
                    tail = _tail(self.log_path(component))
                    error = PortTaken if "address already in use" in tail else AirflowNotReady
                    raise error(f"airflow {component} exited ({process.returncode}):\n{tail}")
            api_server = self.processes["api-server"].pid
            with contextlib.suppress(requests.RequestException, ValueError):
                if self.port not in listening_ports(api_server):
                    raise requests.RequestException("not listening yet")
                health = self.health()
                if (
                    all(
                        part.get("status") == "healthy"
                        for name, part in health.items()
                        if name in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    )
                    and len(health) >= 4
                ):
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {c}\n{_tail(self.log_path(c), 10)}" for c in COMPONENTS)
                raise AirflowNotReady(f"Airflow not healthy after {timeout:.0f} s:\n{logs}")
            time.sleep(0.5)

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 120) -> None:
        """Until the DAG processor has parsed ``dag_ids``; fails at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.api.request("GET", "/importErrors")["import_errors"]
            if errors:
                raise AirflowNotReady(
                    "DAG import errors:\n" + "\n".join(e["stack_trace"] for e in errors)
                )
            known = {d["dag_id"] for d in self.api.request("GET", "/dags")["dags"]}
            if set(dag_ids) <= known:
                return
            if time.monotonic() > deadline:
                raise AirflowNotReady(f"DAGs {set(dag_ids) - known} not parsed in {timeout:.0f} s")
            time.sleep(1)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to each component's process group, SIGKILL to what is left after ``grace``."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: task processes included
            process.wait()
        self.processes.clear()

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _pid_file(path: Path) -> Iterator[None]:
    """This process's pid in ``path`` while it runs (`make airflow-stop` signals it), and
    SIGTERM handled like Ctrl-C."""

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    path.write_text(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    from sfpd_dev.replay import BUNDLED_ROWS, ReplayServer

    source = os.environ.get("SFPD_SOURCE", "live").strip().lower()
    if source not in ("live", "replay"):
        print(f"SFPD_SOURCE must be 'live' or 'replay', not {source!r}", file=sys.stderr)
        return 2
    home = Path(os.environ.get("AIRFLOW_HOME", PROJECT_ROOT / ".airflow"))
    port = int(os.environ.get("SFPD_AIRFLOW_PORT", DEFAULT_PORT))
    env = airflow_env(PROJECT_ROOT, home)
    home.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack, _pid_file(home / "airflow-local.pid"):
        try:
            if source == "replay":
                server = stack.enter_context(ReplayServer(BUNDLED_ROWS))
                env["AIRFLOW_CONN_SOCRATA_DEFAULT"] = server.connection_uri_json()
                rows, port_ = len(server.corpus), server.port
                print(f"Replay server: {rows} bundled rows on 127.0.0.1:{port_}")
            airflow = LocalAirflow(home, env, port=port)
            print(f"Starting Airflow in {home} (logs: {home / 'logs'}) ...", flush=True)
            stack.enter_context(airflow)
            print(
                f"\nAirflow UI: {airflow.url}  (user {USER}, password {airflow.password})\n"
                f"dbt docs (after a run's dbt build): {airflow.url}/cosmos/{DOCS_SLUG}/dbt_docs\n"
                f"DAGs from {PROJECT_ROOT / 'dags'}; pools and connections from "
                "airflow_settings.yaml.\nCtrl-C (or `make airflow-stop`) stops every Airflow "
                "process started here.",
                flush=True,
            )
            while all(p.poll() is None for p in airflow.processes.values()):
                time.sleep(1)
            down = [c for c, p in airflow.processes.items() if p.poll() is not None]
            print(f"ERROR: airflow {', '.join(down)} exited; see {home / 'logs'}", file=sys.stderr)
            return 1
        except AirflowNotReady as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nStopping Airflow ...", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
