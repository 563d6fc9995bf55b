"""`make airflow` (sfpd_dev.airflow_local) and `make airflow-stop`, without starting Airflow: the
UI's port falls back to a free one when 8080 (or SFPD_AIRFLOW_PORT) is taken, and
`make airflow-stop` signals the process `make airflow` recorded. Airflow itself started this
way: tests/e2e (every scheduler test runs on a LocalAirflow)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from sfpd_dev.airflow_local import AirflowNotReady, LocalAirflow, PortTaken
from sfpd_dev.ports import free_port
from tests.conftest import PROJECT_ROOT


def test_a_taken_port_falls_back_to_a_free_one_and_a_free_one_is_kept(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        airflow = LocalAirflow(tmp_path / "home", env={}, port=port)
        assert airflow.port != port
        assert airflow.url == f"http://127.0.0.1:{airflow.port}"
        assert airflow.env["AIRFLOW__API__PORT"] == str(airflow.port)
        assert airflow.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{airflow.url}/execution/"
        # the log servers are off 8793/8794 and off each other
        logs = {
            airflow.env[f"AIRFLOW__LOGGING__{k}_LOG_SERVER_PORT"] for k in ("WORKER", "TRIGGER")
        }
        assert len(logs | {str(airflow.port)}) == 3
    free = free_port()
    assert LocalAirflow(tmp_path / "other", env={}, port=free).port == free


def make_stop(home) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "airflow-stop", f"AIRFLOW_HOME={home}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_make_airflow_stop_signals_the_recorded_process_and_says_when_there_is_none(tmp_path):
    assert make_stop(tmp_path).stdout.strip() == "no local Airflow running"
    # a process that, like `make airflow`, records its pid and stops on SIGTERM
    waiting = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(signal.SIGTERM))\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", waiting, str(tmp_path / "airflow-local.pid")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "ready"
        began = time.monotonic()
        assert make_stop(tmp_path).returncode == 0
        assert process.wait(timeout=60) == signal.SIGTERM  # its handler's exit status
        assert time.monotonic() - began < 60
    finally:
        process.kill()
        process.wait()


def test_a_component_that_cannot_bind_its_port_is_told_apart_from_other_failures(tmp_path):
    """`LocalAirflow.start` starts again on other ports when a component exits because its
    port was taken (PortTaken), and gives up on any other exit (AirflowNotReady)."""
    airflow = LocalAirflow(tmp_path / "home", env={})
    (tmp_path / "home" / "logs").mkdir()
    for said, error in [
        ("ERROR: [Errno 98] error while attempting to bind on address: address already in use",
         PortTaken),
        ("ModuleNotFoundError: No module named 'cosmos'", AirflowNotReady),
    ]:  # fmt: skip
        with airflow.log_path("api-server").open("w") as log:
            exits = subprocess.Popen(
                [sys.executable, "-c", f"print({said!r}); raise SystemExit(1)"], stdout=log
            )
        exits.wait(timeout=60)
        airflow.processes = {"api-server": exits}
        with pytest.raises(error, match="airflow api-server exited") as caught:
            airflow.wait_until_healthy(timeout=60)
        assert type(caught.value) is error and said in str(caught.value)
