"""Ports on 127.0.0.1 without races, for the local Airflow and the tests' servers: a server in
this process binds port 0 and reads the port back; a child process that must be told its port
gets a free one, and is checked to listen there itself (:func:`listening_ports`) before anyone
talks to it; a port that must refuse connections stays bound, so nothing else can take it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import psutil


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections while the block runs: this socket holds it
    bound and never listens, so no other process can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process and its descendants listen on."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    ports = set()
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            ports |= {
                c.laddr.port
                for c in member.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
    return ports


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1 now, else a port the OS picks: for a child
    process that must be told its port. Another process may take it before the child binds
    it: check the child with :func:`listening_ports`."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
