"""The reads of one dataset: counts, metadata, per-day counts, and the rows page by page by key
(``row_id > <last> ORDER BY row_id``), through the session of either API."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence, Sized
from urllib.parse import urljoin, urlsplit

import requests
from sodapy import Socrata

from sfpd.config import MAX_PAGE_SIZE
from sfpd.schema import FIELD_NAMES
from sfpd.socrata.endpoint import (
    KEY,
    MAX_REDIRECTS,
    OFFLINE_HINT,
    REDIRECTS,
    SocrataEndpoint,
    SourceError,
    SourceUnreachable,
    redact,
    retrying_adapter,
)
from sfpd.socrata.query import DatasetMetadata, Query, rows_or_error
from sfpd.window import parse_fixed_timestamp

log = logging.getLogger(__name__)


class SocrataSource:
    """Counts and pages the rows of one dataset matching a SoQL ``where``."""

    def __init__(self, endpoint: SocrataEndpoint, page_size: int = MAX_PAGE_SIZE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self.endpoint = endpoint
        self.page_size = page_size
        self.base_url = endpoint.base_url  # moves if the host redirects elsewhere
        self._key_type: str | None = None  # the paging key's SoQL type, from the metadata
        adapter = retrying_adapter(endpoint)
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
        self._announced = False  # which API and host: logged at the first request

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
        if not self._announced:
            self._announced = True
            log.info("Reading %s through %s at %s", self.endpoint.dataset_id, self.endpoint.api,
                     self.base_url)  # fmt: skip
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
                f"{self.endpoint.retries} retries: {_one_line(response.text, 200)}"
            )
        if response.status_code != 200:
            raise SourceError(
                f"Socrata answered HTTP {response.status_code} for {redact(response.url)} "
                f"(429/5xx retried up to {self.endpoint.retries} times): "
                f"{_one_line(response.text, 500)}"
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
        return rows_or_error(self._send(method, path, **kwargs), self.base_url + path)

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


def _one_line(text: str, limit: int) -> str:
    """An answer's text for a message: Socrata pretty-prints its error objects."""
    return " ".join(text.split())[:limit]


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
