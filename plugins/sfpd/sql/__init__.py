"""SQL lives in the .sql files beside this module; column lists come from sfpd.schema.

``load/`` holds the warehouse's statements, each written once (the algorithm runs them in
order: sfpd.warehouse); what the dialects write differently (function names, parameter markers,
``MERGE INTO ... RETURNING``) are the macros of ``_dialect/duckdb.sql`` and
``_dialect/bigquery.sql``, imported as ``d``. ``duckdb/`` and ``bigquery/`` hold only what an
engine does its own way or alone (making tables, loading files, repartitioning). ``_scope.sql``
(the window as literal dates) and ``_macros.sql`` (column lists) serve all; ``report/`` reads
the marts in SQL both engines take, naming each table through ``mart(name)``. Keywords and
functions are upper case, names lower case."""

from __future__ import annotations

from pathlib import Path

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # SQL, not HTML; only identifiers from our own code are rendered
)


def render(name: str, **context: object) -> str:
    """Render a template (``<dialect>/<file>.sql``, ``report/<file>.sql``)."""
    return _ENV.get_template(name).render(**context)
