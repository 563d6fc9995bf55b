"""A SoQL question as each API asks it, and what the answers are checked for."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field

from sfpd.socrata.endpoint import SourceError

log = logging.getLogger(__name__)


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


def rows_or_error(body: bytes, url: str) -> bytes:
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
