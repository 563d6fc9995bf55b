"""Read a Socrata (SODA 2.x) dataset page by page, with sodapy behind a small interface.

Works against any server that honours ``$select``, ``$where``, ``$group``, ``$order``,
``$limit``, ``$offset``, ``count(*)``, ``max(:updated_at)`` and ``date_trunc_ymd``: DataSF itself,
or the replay server in :mod:`sfpd.replay`.
Requests go through sodapy's client session (app token header, retrying adapter); bodies are
handed over raw, because decoding each page into Python dicts was most of an extract's time
(docs/benchmarks.md): the pipeline parses them straight into Arrow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.util.retry import Retry

from sfpd.config import DEFAULT_DATASET_ID, MAX_PAGE_SIZE
from sfpd.schema import FIELD_NAMES
from sfpd.window import parse_fixed_timestamp

log = logging.getLogger(__name__)

DEFAULT_HOST = "data.sfgov.org"
OFFLINE_HINT = "To run without network, use the bundled replay server: SFPD_SOURCE=replay make run"


class SourceUnreachable(RuntimeError):
    """The Socrata server could not be reached (or kept timing out) after retries."""


class SourceError(RuntimeError):
    """The Socrata server kept answering with an error after retries."""


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
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 8
    backoff_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ValueError(f"Socrata scheme must be http or https, not {self.scheme!r}")

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
        The extra may tune read_timeout, connect_timeout, retries and backoff_factor."""
        tuning = {k: (extra or {})[k] for k in _TUNING if k in (extra or {})}
        return cls(
            host=host or DEFAULT_HOST,
            scheme=schema or "https",
            port=int(port) if port else None,
            app_token=password or None,
            dataset_id=dataset_id,
            **{k: _TUNING[k](v) for k, v in tuning.items()},
        )

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def resource_url(self) -> str:
        return f"{self.scheme}://{self.domain}/resource/{self.dataset_id}.json"


_TUNING = {
    "read_timeout": float,
    "connect_timeout": float,
    "retries": int,
    "backoff_factor": float,
}
RETRY_STATUSES = (202, 429, 500, 502, 503, 504)


def _retrying_adapter(endpoint: SocrataEndpoint) -> HTTPAdapter:
    # 202 (still preparing the result), 429 (throttled) and server errors are retried with
    # exponential backoff and jitter, honouring Retry-After; so are read timeouts. Connection
    # errors get two quick retries so an unreachable host fails fast.
    retry = Retry(
        total=endpoint.retries,
        connect=2,
        backoff_factor=endpoint.backoff_factor,
        backoff_max=60,
        backoff_jitter=endpoint.backoff_factor / 2,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=("GET",),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    return HTTPAdapter(max_retries=retry)


class SocrataSource:
    """Counts and pages the rows of one dataset matching a SoQL ``$where``."""

    def __init__(self, endpoint: SocrataEndpoint, page_size: int = MAX_PAGE_SIZE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self.endpoint = endpoint
        self.page_size = page_size
        self._client = Socrata(
            endpoint.domain,
            endpoint.app_token,
            session_adapter={
                "prefix": f"{endpoint.scheme}://",
                "adapter": _retrying_adapter(endpoint),
            },
        )
        # sodapy only accepts one number; requests takes (connect, read), so an unreachable
        # host fails in seconds while a slow page still has a minute.
        self._client.timeout = (endpoint.connect_timeout, endpoint.read_timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SocrataSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, params: Mapping[str, object]) -> bytes:
        """One GET of the resource through sodapy's session (its app token header, our
        retrying adapter and timeouts); the raw JSON body of a 200 answer."""
        url = self.endpoint.resource_url
        try:
            # stream=True and one raw read: requests' .content reads in 10 kB chunks, which
            # showed up in the profile
            response = self._client.session.get(
                url, params=params, timeout=self._client.timeout, stream=True
            )
        except requests.ConnectionError as exc:
            raise SourceUnreachable(
                f"Cannot reach the Socrata API at {url} ({exc}). {OFFLINE_HINT}"
            ) from exc
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

    def count(self, where: str) -> int:
        """Rows matching ``where``, as the server counts them."""
        result = json.loads(self._request({"$select": "count(*) AS n", "$where": where}))
        return int(result[0]["n"])

    def updated_through(self) -> dt.datetime | None:
        """The latest ``:updated_at`` of the dataset (UTC, naive): the source's own clock for
        "changed since" (None for an empty dataset)."""
        result = json.loads(self._request({"$select": "max(:updated_at) AS updated_through"}))
        value = result[0].get("updated_through") if result else None
        return parse_fixed_timestamp(value) if value else None

    def daily_counts(self, column: str = "incident_datetime") -> dict[dt.date, int]:
        """Rows per calendar day of ``column``, over the whole dataset: one grouped request."""
        day = f"date_trunc_ymd({column})"
        result = json.loads(
            self._request(
                {
                    "$select": f"{day} AS day, count(*) AS n",
                    "$group": day,
                    "$limit": MAX_PAGE_SIZE,
                }
            )
        )
        if len(result) >= MAX_PAGE_SIZE:
            raise SourceError(f"more than {MAX_PAGE_SIZE} days in one answer")
        return {
            dt.date.fromisoformat(row["day"][:10]): int(row["n"]) for row in result if "day" in row
        }

    def pages(
        self,
        where: str,
        select: Sequence[str] = FIELD_NAMES,
        parse: Callable[[bytes], Sized] = json.loads,
    ) -> Iterator:
        """Yield pages in ``:id`` order, each body turned into a page by ``parse`` (by default
        the list of row dicts); a page shorter than page_size ends the read. The next page is
        fetched while this one is parsed (one request at a time on the session)."""

        def fetch(offset: int) -> bytes:
            return self._request(
                {
                    "$select": ",".join(select),
                    "$where": where,
                    "$order": ":id",
                    "$limit": self.page_size,
                    "$offset": offset,
                }
            )

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socrata-prefetch")
        try:
            offset, pending = 0, pool.submit(fetch, 0)
            while True:
                body = pending.result()
                pending = pool.submit(fetch, offset + self.page_size)
                page = parse(body)
                log.info("Socrata page at offset %d: %d rows", offset, len(page))
                if len(page):
                    yield page
                if len(page) < self.page_size:
                    return
                offset += self.page_size
        finally:
            # the page after a short one is not needed: drop it, whatever became of it
            pool.shutdown(wait=True, cancel_futures=True)
