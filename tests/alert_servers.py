"""Where the alert tests' notifications arrive: a real SMTP server (aiosmtpd) and an HTTP server
for webhooks (Slack, apprise's json://), both on 127.0.0.1, each on the port the OS gave its
own socket (bound to port 0 and read back: no port is picked first and bound later)."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


class _PortZeroController(Controller):
    """aiosmtpd's controller on port 0: the port the OS gave the listening socket is read
    back before the controller's first connection to it."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """An SMTP server keeping every message it accepts (``messages``: parsed e-mails)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd
                sink.messages.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)
                )
                return "250 OK"

        self._controller = _PortZeroController(Handler(), hostname="127.0.0.1", port=0)
        self._running = False

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        return self._controller.port

    def connection(self, from_email: str = "airflow@example.org") -> str:
        """The Airflow connection (JSON) of an SMTP connection to this server."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": from_email,
                    "retry_limit": 0,
                    "timeout": 5,
                },
            }
        )

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]

    def stop(self) -> None:
        """Stops listening: later connections are refused."""
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        self._running = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WebhookSink:
    """An HTTP server keeping every POST body (``posts``), answering ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.posts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(sink.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._running = False

    def stop(self) -> None:
        """Stops listening: later connections are refused."""
        if self._running:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._running = False

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._running = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
