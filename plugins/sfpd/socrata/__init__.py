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

``endpoint``: where the API is and how it is reached (an Airflow connection's fields, retries,
the errors); ``query``: a SoQL question as each API asks it; ``source``: the reads.
"""

from __future__ import annotations

from sfpd.socrata.endpoint import (
    DEFAULT_HOST,
    KEY,
    SocrataEndpoint,
    SourceError,
    SourceUnreachable,
    redact,
)
from sfpd.socrata.query import DatasetMetadata, Query
from sfpd.socrata.source import SocrataSource

__all__ = [
    "DEFAULT_HOST", "KEY", "DatasetMetadata", "Query", "SocrataEndpoint", "SocrataSource",
    "SourceError", "SourceUnreachable", "redact",
]  # fmt: skip
