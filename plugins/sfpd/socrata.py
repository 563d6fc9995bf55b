"""Read a Socrata (SODA 2.x) dataset page by page, with sodapy behind a small interface.

Works against any server that honours ``$select``, ``$where``, ``$order``, ``$limit``,
``$offset`` and ``count(*)``: DataSF itself, or the replay server in :mod:`sfpd.replay`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.util.retry import Retry

from sfpd.schema import FIELD_NAMES

log = logging.getLogger(__name__)

DEFAULT_HOST = "data.sfgov.org"
DEFAULT_DATASET_ID = "wg3w-h783"
MAX_PAGE_SIZE = 50_000
OFFLINE_HINT = "To run without network, use the bundled replay server: SFPD_SOURCE=replay make run"


class SourceUnreachable(RuntimeError):
    """The Socrata server could not be reached at all."""


@dataclass(frozen=True)
class SocrataEndpoint:
    host: str = DEFAULT_HOST
    scheme: str = "https"
    port: int | None = None
    app_token: str | None = None
    dataset_id: str = DEFAULT_DATASET_ID
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

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
    ) -> SocrataEndpoint:
        """From an Airflow connection's fields; empty fields mean the public DataSF API."""
        return cls(
            host=host or DEFAULT_HOST,
            scheme=schema or "https",
            port=int(port) if port else None,
            app_token=password or None,
            dataset_id=dataset_id,
        )

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def resource_url(self) -> str:
        return f"{self.scheme}://{self.domain}/resource/{self.dataset_id}.json"


def _retrying_adapter() -> HTTPAdapter:
    # Throttling (429) and server errors are retried with exponential backoff, honouring
    # Retry-After. Connection errors get two quick retries so an unreachable host fails fast.
    retry = Retry(
        total=6,
        connect=2,
        backoff_factor=1.0,
        backoff_max=60,
        status_forcelist=(429, 500, 502, 503, 504),
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
            session_adapter={"prefix": f"{endpoint.scheme}://", "adapter": _retrying_adapter()},
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

    def _get(self, **params: object) -> list[dict]:
        try:
            return self._client.get(self.endpoint.dataset_id, **params)
        except requests.ConnectionError as exc:
            raise SourceUnreachable(
                f"Cannot reach the Socrata API at {self.endpoint.resource_url} ({exc}). "
                f"{OFFLINE_HINT}"
            ) from exc

    def count(self, where: str) -> int:
        """Rows matching ``where``, as the server counts them."""
        result = self._get(select="count(*) AS n", where=where)
        return int(result[0]["n"])

    def pages(self, where: str, select: Sequence[str] = FIELD_NAMES) -> Iterator[list[dict]]:
        """Yield pages of rows in ``:id`` order; a page shorter than page_size ends the read."""
        offset = 0
        while True:
            page = self._get(
                select=",".join(select),
                where=where,
                order=":id",
                limit=self.page_size,
                offset=offset,
            )
            log.info("Socrata page at offset %d: %d rows", offset, len(page))
            if page:
                yield page
            if len(page) < self.page_size:
                return
            offset += self.page_size
