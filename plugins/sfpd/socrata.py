"""Read a Socrata dataset page by page, through SODA 2.1 (sodapy's session) or SODA3.

The pipeline asks the source SoQL questions (:class:`Query`); the API decides how they travel:

- ``soda2`` (the default): ``GET /resource/<id>.json`` with ``$select``, ``$where``, ``$group``,
  ``$order``, ``$limit``, ``$offset``, through sodapy's client session. Works against any server
  that speaks the SODA 2.x query parameters: DataSF itself, or the replay server.
- ``soda3``: ``POST /api/v3/views/<id>/query.json`` with one SoQL string and a page number and
  size, plain HTTP with requests; Socrata requires an app token for it.

Rows are paged by key, not by offset: ``row_id > <last> ORDER BY row_id``, always the first page
(:meth:`SocrataSource.pages`). A publisher's reload renumbers ``:id`` and rewrites
``:updated_at`` but keeps ``row_id``, so a reload during an extract can neither skip nor repeat
rows, and the last page costs the server what the first does (docs/benchmarks.md).

A redirect to another host (DataSF moved from data.sfgov.org to data.sf.gov) is followed, the
app token still sent, and logged once with the advice to update the connection.
Bodies are handed over raw: the pipeline parses them straight into Arrow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.util.retry import Retry

from sfpd.config import DEFAULT_DATASET_ID, MAX_PAGE_SIZE, ConfigError
from sfpd.schema import FIELD_NAMES
from sfpd.window import parse_fixed_timestamp

log = logging.getLogger(__name__)

DEFAULT_HOST = "data.sf.gov"  # DataSF's domain since September 2026 (data.sfgov.org redirects)
APIS = ("soda2", "soda3")
OFFLINE_HINT = "To run without network, use the bundled replay server: SFPD_SOURCE=replay make run"
TOKEN_HINT = (
    "Create an app token on the portal (profile → Developer settings) and put it in the "
    "Socrata connection's password (AIRFLOW_CONN_SOCRATA_DEFAULT, see the README)"
)
KEY = "row_id"  # unique per row and kept by a reload: the paging key
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


class SourceUnreachable(RuntimeError):
    """The Socrata server could not be reached (or kept timing out) after retries."""


class SourceError(RuntimeError):
    """The Socrata server kept answering with an error, or with something that is not rows."""


def redact(url: str) -> str:
    """A URL safe for logs: an app token passed as a parameter is masked."""
    return re.sub(r"(\$\$app_token=)[^&]*", r"\1***", url)


@dataclass(frozen=True)
class SocrataEndpoint:
    host: str = DEFAULT_HOST
    scheme: str = "https"
    port: int | None = None
    app_token: str | None = None
    dataset_id: str = DEFAULT_DATASET_ID
    api: str = "soda2"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 8
    backoff_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ConfigError(f"Socrata scheme must be http or https, not {self.scheme!r}")
        if self.api not in APIS:
            raise ConfigError(f"Socrata api must be one of {APIS}, not {self.api!r}")
        if self.api == "soda3" and not self.app_token:
            raise ConfigError(f"SODA3 needs an app token, and none is configured. {TOKEN_HINT}")

    @classmethod
    def from_connection_fields(
        cls,
        host: str | None,
        port: int | None,
        schema: str | None,
        password: str | None,
        dataset_id: str = DEFAULT_DATASET_ID,
        extra: Mapping | None = None,
    ) -> SocrataEndpoint:
        """From an Airflow connection's fields; empty fields mean the public DataSF API.
        The extra may choose the ``api`` (soda2, soda3) and tune read_timeout,
        connect_timeout, retries and backoff_factor."""
        extra = extra or {}
        options = {k: convert(extra[k]) for k, convert in _OPTIONS.items() if k in extra}
        return cls(
            host=host or DEFAULT_HOST,
            scheme=schema or "https",
            port=int(port) if port else None,
            app_token=password or None,
            dataset_id=dataset_id,
            **options,
        )

    @property
    def base_url(self) -> str:
        domain = f"{self.host}:{self.port}" if self.port else self.host
        return f"{self.scheme}://{domain}"

    @property
    def resource_url(self) -> str:
        return f"{self.base_url}/resource/{self.dataset_id}.json"


_OPTIONS: dict[str, Callable] = {
    "api": lambda value: str(value).strip().lower(),
    "read_timeout": float,
    "connect_timeout": float,
    "retries": int,
    "backoff_factor": float,
}
RETRY_STATUSES = (202, 429, 500, 502, 503, 504)


def _retrying_adapter(endpoint: SocrataEndpoint) -> HTTPAdapter:
    # 202 (still preparing the result), 429 (throttled) and server errors are retried with
    # exponential backoff and jitter, honouring Retry-After; so are read timeouts. Connection
    # errors get two quick retries so an unreachable host fails fast. SODA3's POST is a read.
    retry = Retry(
        total=endpoint.retries,
        connect=2,
        redirect=False,  # redirects are followed by SocrataSource._send, which logs them
        backoff_factor=endpoint.backoff_factor,
        backoff_max=60,
        backoff_jitter=endpoint.backoff_factor / 2,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=("GET", "POST"),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    return HTTPAdapter(max_retries=retry)


@dataclass(frozen=True)
class Query:
    """One SoQL question; each API renders it its own way."""

    select: str
    where: str | None = None
    group: str | None = None
    order: str | None = None
    limit: int | None = None
    offset: int = 0

    def soda2_params(self) -> dict[str, object]:
        clauses = {"$select": self.select, "$where": self.where, "$group": self.group}
        clauses |= {"$order": self.order, "$limit": self.limit}
        params = {name: value for name, value in clauses.items() if value is not None}
        return params | ({"$offset": self.offset} if self.offset else {})

    def soda3_body(self) -> dict[str, object]:
        clauses = (("SELECT", self.select), ("WHERE", self.where), ("GROUP BY", self.group))
        clauses += (("ORDER BY", self.order),)
        body: dict[str, object] = {
            "query": " ".join(f"{word} {text}" for word, text in clauses if text),
            "includeSynthetic": False,
        }
        if self.limit:
            if self.offset % self.limit:
                raise ValueError("SODA3 pages by number: offset must be a multiple of limit")
            body["page"] = {"pageNumber": self.offset // self.limit + 1, "pageSize": self.limit}
        return body


@dataclass(frozen=True)
class DatasetMetadata:
    """What the portal says about the dataset (``/api/views/<id>.json``)."""

    rows_updated_at: dt.datetime | None  # when its data last changed (UTC, naive)
    column_types: dict[str, str] = field(default_factory=dict)  # fieldName -> dataTypeName


_ARRAY = re.compile(rb"\s*\[")


def _rows_or_error(body: bytes, url: str) -> bytes:
    """The body if it is a JSON array; else a SourceError with the server's message (SODA3 can
    answer an error object with HTTP 200: it must never read as an empty window)."""
    if _ARRAY.match(body):
        return body
    try:
        answer = json.loads(body)
        message = answer.get("message") or answer.get("error") or answer
    except (ValueError, AttributeError):
        message = body[:300]
    raise SourceError(f"Socrata answered {url} with something that is not rows: {message}")


class SocrataSource:
    """Counts and pages the rows of one dataset matching a SoQL ``where``."""

    def __init__(self, endpoint: SocrataEndpoint, page_size: int = MAX_PAGE_SIZE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self.endpoint = endpoint
        self.page_size = page_size
        self.base_url = endpoint.base_url  # moves if the host redirects elsewhere
        self._key_type: str | None = None  # the paging key's SoQL type, from the metadata
        adapter = _retrying_adapter(endpoint)
        if endpoint.api == "soda2":
            client = Socrata(
                endpoint.base_url.split("://")[1],
                endpoint.app_token,
                session_adapter={"prefix": f"{endpoint.scheme}://", "adapter": adapter},
            )
            self.session = client.session  # its app token header and user agent
        else:
            self.session = requests.Session()
            self.session.mount(f"{endpoint.scheme}://", adapter)
            self.session.headers["X-App-Token"] = endpoint.app_token or ""
        # (connect, read): an unreachable host fails in seconds while a slow page has a minute
        self.timeout = (endpoint.connect_timeout, endpoint.read_timeout)
        log.info("Reading %s through %s at %s", endpoint.dataset_id, endpoint.api, self.base_url)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SocrataSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query_request(self, query: Query) -> tuple[str, str, dict]:
        """(method, path, requests keyword arguments) of a query in this endpoint's API."""
        dataset = self.endpoint.dataset_id
        if self.endpoint.api == "soda3":
            return "POST", f"/api/v3/views/{dataset}/query.json", {"json": query.soda3_body()}
        return "GET", f"/resource/{dataset}.json", {"params": query.soda2_params()}

    def _send(self, method: str, path: str, **kwargs) -> bytes:
        """One request (retried by the adapter), redirects to another host followed; the raw
        body of a 200 answer."""
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            try:
                # stream=True and one raw read: requests' .content reads in 10 kB chunks
                response = self.session.request(
                    method, url, timeout=self.timeout, stream=True, allow_redirects=False, **kwargs
                )
            except requests.ConnectionError as exc:
                raise SourceUnreachable(
                    f"Cannot reach the Socrata API at {url} ({exc}). {OFFLINE_HINT}"
                ) from exc
            if response.status_code not in REDIRECTS:
                break
            url = self._follow(url, response)
            kwargs.pop("params", None)  # the Location carries the query string
        else:
            raise SourceError(f"more than {MAX_REDIRECTS} redirects from {self.base_url + path}")
        if response.status_code == 202:  # still "processing" after the retries
            raise SourceError(
                f"Socrata did not return rows for {redact(response.url)} after "
                f"{self.endpoint.retries} retries: {response.text[:200]}"
            )
        if response.status_code != 200:
            raise SourceError(
                f"Socrata answered HTTP {response.status_code} for {redact(response.url)} "
                f"(429/5xx retried up to {self.endpoint.retries} times): {response.text[:500]}"
            )
        with response:
            return response.raw.read(decode_content=True)

    def _follow(self, url: str, response: requests.Response) -> str:
        """Where a redirect points; a move of the whole host is remembered (later requests go
        there directly) and logged once with the advice to update the connection."""
        response.close()
        target = urljoin(url, response.headers.get("Location", ""))
        old, new = urlsplit(url), urlsplit(target)
        if old.scheme == "https" and new.scheme != "https":
            raise SourceError(f"refusing a redirect from {url} to {redact(target)} (not https)")
        if new.netloc != old.netloc:
            moved = f"{new.scheme}://{new.netloc}"
            if moved != self.base_url:
                log.warning(
                    "The Socrata API at %s redirects to %s: reading from there (the app token "
                    "is still sent). Update the connection's host to %s to skip the redirect.",
                    self.base_url, moved, new.hostname,
                )  # fmt: skip
                self.base_url = moved
        return target

    def _request(self, query: Query) -> bytes:
        method, path, kwargs = self._query_request(query)
        return _rows_or_error(self._send(method, path, **kwargs), self.base_url + path)

    def query(self, query: Query) -> list[dict]:
        """The rows a query returns, decoded."""
        return json.loads(self._request(query))

    def metadata(self) -> DatasetMetadata | None:
        """The dataset's metadata, or None when the server has none (any SODA 2.x server need
        not serve ``/api/views``): callers then read as if everything may have changed."""
        try:
            view = json.loads(self._send("GET", f"/api/views/{self.endpoint.dataset_id}.json"))
            updated = view.get("rowsUpdatedAt")
            columns = {c["fieldName"]: c.get("dataTypeName", "") for c in view.get("columns", [])}
        except (SourceError, ValueError, AttributeError, KeyError, TypeError) as exc:
            log.warning("No dataset metadata (%s): cannot tell whether anything changed", exc)
            self._key_type = self._key_type or ""  # not asked for again by this source's reads
            return None
        self._key_type = columns.get(KEY, "")  # the paging key's type, for this source's reads
        return DatasetMetadata(
            dt.datetime.fromtimestamp(updated, dt.UTC).replace(tzinfo=None) if updated else None,
            columns,
        )

    def rows_updated_at(self) -> dt.datetime | None:
        """When the dataset's data last changed, per its metadata (None without metadata)."""
        metadata = self.metadata()
        return metadata.rows_updated_at if metadata else None

    def count(self, where: str) -> int:
        """Rows matching ``where``, as the server counts them."""
        return int(self.query(Query("count(*) AS n", where))[0]["n"])

    def updated_through(self) -> dt.datetime | None:
        """The latest ``:updated_at`` of the dataset (UTC, naive): the source's own clock for
        "changed since" (None for an empty dataset)."""
        result = self.query(Query("max(:updated_at) AS updated_through"))
        value = result[0].get("updated_through") if result else None
        return parse_fixed_timestamp(value) if value else None

    def daily_counts(self, column: str = "incident_datetime") -> dict[dt.date, int]:
        """Rows per calendar day of ``column``, over the whole dataset: one grouped request."""
        day = f"date_trunc_ymd({column})"
        result = self.query(Query(f"{day} AS day, count(*) AS n", group=day, limit=MAX_PAGE_SIZE))
        if len(result) >= MAX_PAGE_SIZE:
            raise SourceError(f"more than {MAX_PAGE_SIZE} days in one answer")
        return {
            dt.date.fromisoformat(row["day"][:10]): int(row["n"]) for row in result if "day" in row
        }

    def _key_literal(self) -> Callable[[str], str]:
        """How a row_id is written in SoQL: as a number or as text, by the column's type, so the
        server's comparison and its order agree (a number compared as text would not)."""
        if self._key_type is None:
            self.metadata()  # sets it, "" when the server has no metadata
        kind = self._key_type
        if kind == "number":
            return lambda value: str(float(value) if "." in value else int(value))
        if kind != "text":
            log.warning("%s has type %r here: comparing it as text", KEY, kind or "unknown")
        return lambda value: "'" + value.replace("'", "''") + "'"

    def pages(
        self,
        where: str,
        select: Sequence[str] = FIELD_NAMES,
        parse: Callable[[bytes], Sized] = json.loads,
    ) -> Iterator:
        """Yield the rows matching ``where`` in pages of ``row_id`` order, each body turned into
        a page by ``parse`` (by default the list of row dicts). Each page asks for the rows after
        the last one's row_id; a page shorter than page_size ends the read, and one more request
        reads the rows without a row_id (the quarantine's). One request at a time: the caller
        fetches ahead if it wants to (sfpd.pipeline does, a page ahead of its writes)."""
        literal = self._key_literal()
        columns = ",".join(select)

        def fetch(after: str | None) -> bytes:
            bound = f"{KEY} > {literal(after)}" if after is not None else f"{KEY} IS NOT NULL"
            return self._request(
                Query(columns, f"({where}) AND {bound}", None, KEY, self.page_size)
            )

        after = None
        while True:
            body = fetch(after)
            last = _last_key(body)
            if last is not None:
                _check_order(after, last, literal)
            page = parse(body)
            del body  # not held while the page is consumed
            log.info("Socrata page after %s %s: %d rows", KEY, after, len(page))
            if len(page):
                yield page
            if last is None or len(page) < self.page_size:
                break
            after = last
        keyless = Query(columns, f"({where}) AND {KEY} IS NULL", None, ":id", self.page_size)
        page = parse(self._request(keyless))
        if len(page) >= self.page_size:
            raise SourceError(f"{self.page_size} or more rows without a {KEY}: not paged")
        if len(page):
            log.warning("%d rows without a %s", len(page), KEY)
            yield page


_LAST_KEY = re.compile(rb'"' + KEY.encode() + rb'"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(-?[\d.eE+]+))')


def _last_key(body: bytes) -> str | None:
    """The row_id of the last row of a page, found from the end of the raw body (the key's
    name cannot occur unescaped inside a JSON string)."""
    at = body.rfind(b'"' + KEY.encode() + b'"')
    match = _LAST_KEY.match(body, at) if at >= 0 else None
    if not match:
        return None
    return json.loads(b'"' + match[1] + b'"') if match[1] is not None else match[2].decode()


def _check_order(after: str | None, last: str, literal: Callable[[str], str]) -> None:
    """A page must end after the previous one, in the order the comparison uses; a server
    whose order disagrees would make keyset paging skip rows."""
    if after is None:
        return
    numeric = not literal(last).startswith("'")
    ahead = float(last) > float(after) if numeric else last > after
    if not ahead:
        raise SourceError(
            f"the server's {KEY} order disagrees with its comparison: a page after {after!r} "
            f"ended at {last!r}"
        )
