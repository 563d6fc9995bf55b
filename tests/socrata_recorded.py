"""Socrata's real answers served as they were recorded (tests/fixtures/socrata-recorded), and a
scripted server for answers no recording has (a redirect loop, pages out of order): both on
127.0.0.1, port 0, over HTTP or, with a certificate made for the test, HTTPS."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.conftest import PROJECT_ROOT

RECORDED = PROJECT_ROOT / "tests" / "fixtures" / "socrata-recorded"
# Headers that describe how the recorded body travelled, not the body: the recordings keep the
# body decoded (vcrpy, httptest2) while still listing these.
TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length", "connection"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def recorded(name: str) -> Answer:
    """A recorded answer: the body file (``name``.json, or .txt: a body pasted into a code
    comment, its ``#`` markers stripped) with the status and headers of ``name``.headers.json
    where the source recorded them (else ``status`` from SOURCE.md: pass it with
    :func:`dataclasses.replace`)."""
    path = RECORDED / f"{name}.json"
    if path.exists():
        body = path.read_bytes()
    else:  # a curl session in a comment: the lines of the JSON body, '#' removed
        lines = (RECORDED / f"{name}.txt").read_text().splitlines()
        body = "\n".join(line.removeprefix("#") for line in lines if not line.startswith("#>"))
        body = (body + "\n").encode()
    meta = RECORDED / f"{name}.headers.json"
    if not meta.exists():
        return Answer(200, body)
    recording = json.loads(meta.read_text())
    headers = {
        key: value
        for key, value in recording["headers"].items()
        if key.lower() not in TRANSFER_HEADERS
    }
    return Answer(recording["status"], body, headers)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: bytes


# A route answers with the next Answer of its list (the last one again once they run out), or
# with what a function of the request returns.
Route = list[Answer] | Callable[[Request], Answer]


class ScriptedServer:
    """Answers requests by path from ``routes``; an unknown path gets a 404. Every request is
    kept in ``requests``."""

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.requests: list[Request] = []
        self._served: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                self._answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _answer(self, body: bytes) -> None:
                url = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                request = Request(self.command, url.path, params, body)
                answer = server.answer(request)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"

    def answer(self, request: Request) -> Answer:
        self.requests.append(request)
        route = self.routes.get(request.path)
        if route is None:
            return Answer(404, b'{"error": true, "message": "no route in the test"}')
        if callable(route):
            return route(request)
        served = self._served.get(request.path, 0)
        self._served[request.path] = served + 1
        return route[min(served, len(route) - 1)]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate a client must trust."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
