"""The Google API calls a run makes, recorded on their way to the emulators, and the IAM
permission each needs by Google's documentation (the REST reference's "IAM Permissions" of each
method, the DDL reference's "Required permissions", Cloud Storage's "IAM permissions for JSON
methods"; the pages: tests/fixtures/gcp-iam/SOURCE.md).

:class:`RecordingProxy` sits between the clients (ours, dbt's) and an emulator: it forwards each
request as it came and keeps its method, path and, for a BigQuery job, what the job runs.
:func:`permissions_of` maps a call to the permissions it needs, and refuses a call it does not
know: a new kind of call must be added here, and its permission to the contract
(``sfpd.gcp_access.PERMISSIONS``, docs/deploy.md's "Permissions")."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

_JOBS = r"(/upload)?/bigquery/v2/projects/[^/]+/(jobs|queries)"  # jobs.insert, jobs.query
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    job: str = ""  # a BigQuery job's kind and SQL ("query: <sql>", "load: <destination>")


class RecordingProxy:
    """An HTTP server on 127.0.0.1 (port 0) forwarding every request to ``upstream``; the
    calls it forwarded are in :attr:`calls`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[Call] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                proxy.calls.append(Call(self.command, path, _job(self.command, path, body)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers.pop("Host", None)
                headers["Accept-Encoding"] = "identity"
                reply = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers,
                    allow_redirects=False, timeout=120,
                )  # fmt: skip
                self.send_response(reply.status_code)
                for name, value in reply.headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value.replace(proxy.upstream, proxy.url))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _job(method: str, path: str, body: bytes) -> str:
    """What a BigQuery jobs.insert / jobs.query runs ("" for any other call)."""
    if method != "POST" or not re.fullmatch(
        r"(/upload)?/bigquery/v2/projects/[^/]+/(jobs|queries)", path
    ):
        return ""
    if b"\r\n--" in body[:200] or body.startswith(b"--"):  # a load job with its file (multipart)
        body = body.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
    request = json.loads(body)
    if "query" in request and "configuration" not in request:  # jobs.query
        return "query: " + request["query"]
    configuration = request["configuration"]
    if "query" in configuration:
        return "query: " + configuration["query"]["query"]
    kind = next(k for k in configuration if k not in ("labels", "dryRun", "jobTimeoutMs"))
    return f"{kind}: " + json.dumps(configuration[kind], sort_keys=True)


# (method, path) -> the permissions the call needs on its own
_ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", r"/storage/v1/b/[^/]+", ("storage.buckets.get",)),
    ("GET", r"/storage/v1/b/[^/]+/o", ("storage.objects.list",)),
    ("GET", r"/(download/)?storage/v1/b/[^/]+/o/.+", ("storage.objects.get",)),
    # an upload (in one request, or resumable: its start, then its bytes) may overwrite an
    # object of the same name: that takes storage.objects.delete
    ("POST", r"/upload/storage/v1/b/[^/]+/o", ("storage.objects.create", "storage.objects.delete")),
    ("PUT", r"/upload/storage/v1/b/[^/]+/o", ("storage.objects.create", "storage.objects.delete")),
    ("DELETE", r"/storage/v1/b/[^/]+/o/.+", ("storage.objects.delete",)),
    # datasets.list needs none: it lists the datasets the caller may get
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets", ()),
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+", ("bigquery.datasets.get",)),
    ("POST", r"/bigquery/v2/projects/[^/]+/datasets", ("bigquery.datasets.create",)),
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables", ("bigquery.tables.list",)),
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/routines", ("bigquery.routines.list",)),
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+", ("bigquery.tables.get",)),
    ("PATCH", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+",
     ("bigquery.tables.get", "bigquery.tables.update")),
    ("PUT", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+",
     ("bigquery.tables.update",)),
    ("DELETE", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+",
     ("bigquery.tables.delete",)),
    ("GET", r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+/data",
     ("bigquery.tables.getData",)),
    # a job: jobs.create on the project, and what the job does (:func:`_job_permissions`)
    ("POST", r"/bigquery/v2/projects/[^/]+/(jobs|queries)", ("bigquery.jobs.create",)),
    # a load job with its file (dbt's seeds): the job, then (resumable) the file
    ("POST", r"/upload/bigquery/v2/projects/[^/]+/jobs", ("bigquery.jobs.create",)),
    ("PUT", r"/upload/bigquery/v2/projects/[^/]+/jobs", ("bigquery.jobs.create",)),
    # the caller's own jobs and their results: jobs.create stands for jobs.get and jobs.update
    ("GET", r"/bigquery/v2/projects/[^/]+/(jobs|queries)/[^/]+", ("bigquery.jobs.create",)),
    ("POST", r"/bigquery/v2/projects/[^/]+/jobs/[^/]+/cancel", ("bigquery.jobs.create",)),
]  # fmt: skip

# A statement's first words -> what it needs on the tables it names (the DDL reference's
# "Required permissions"; reading a table takes getData, changing its rows updateData)
_STATEMENTS: list[tuple[str, tuple[str, ...]]] = [
    (r"(SELECT|WITH)\b", ("bigquery.tables.getData",)),
    (r"(INSERT|MERGE|DELETE|UPDATE|TRUNCATE)\b",
     ("bigquery.tables.getData", "bigquery.tables.updateData")),
    (r"CREATE OR REPLACE (TABLE|VIEW)\b",
     ("bigquery.tables.create", "bigquery.tables.update", "bigquery.tables.updateData",
      "bigquery.tables.getData")),
    (r"CREATE (TEMP |TEMPORARY )?(TABLE|VIEW)\b",
     ("bigquery.tables.create", "bigquery.tables.getData")),
    (r"CREATE SCHEMA\b", ("bigquery.datasets.create",)),
    (r"ALTER (TABLE|VIEW)\b", ("bigquery.tables.get", "bigquery.tables.update")),
    (r"DROP (TABLE|VIEW)\b", ("bigquery.tables.get", "bigquery.tables.delete")),
    # a session's own statements, and a script's variables: jobs.create only
    (r"(BEGIN|COMMIT|ROLLBACK|CALL BQ\.ABORT_SESSION|DECLARE|SET)\b", ()),
]  # fmt: skip
# a load job (BigQuery's "Loading data from Cloud Storage", required permissions; from a file
# sent with the job, the Cloud Storage ones are not needed)
_LOAD = ("bigquery.tables.create", "bigquery.tables.update", "bigquery.tables.updateData")
_LOAD_FROM_GCS = ("storage.buckets.get", "storage.objects.get")


class UnknownCall(AssertionError):
    """A call (or statement) this map does not know: add it, with its documented permission."""


def statements(sql: str) -> list[str]:
    """A script's statements, comments removed."""
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return [" ".join(s.split()) for s in re.split(r";\s*(?:\n|$)", sql) if s.strip()]


def _job_permissions(job: str) -> set[str]:
    kind, _, what = job.partition(": ")
    if kind == "load":
        return set(_LOAD) | (set(_LOAD_FROM_GCS) if "gs://" in what else set())
    if kind != "query":
        raise UnknownCall(f"a {kind} job: {what}")
    needed: set[str] = set()
    for statement in statements(what):
        for pattern, permissions in _STATEMENTS:
            if re.match(pattern, statement, re.I):
                needed |= set(permissions)
                break
        else:
            raise UnknownCall(f"a statement: {statement[:200]}")
    return needed


def permissions_of(call: Call) -> set[str]:
    """The IAM permissions a recorded call needs (:class:`UnknownCall` for one not mapped)."""
    for method, pattern, permissions in _ROUTES:
        if call.method == method and re.fullmatch(pattern, call.path):
            return set(permissions) | (_job_permissions(call.job) if call.job else set())
    raise UnknownCall(f"{call.method} {call.path}")
