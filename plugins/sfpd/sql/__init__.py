"""SQL lives in the .sql files beside this module; column lists come from sfpd.schema.

``duckdb/`` and ``bigquery/`` hold the same statements under the same names (the warehouse's
algorithm runs them in order: sfpd.warehouse), so ``diff -r`` shows only dialect differences;
DuckDB has one more, ``load.sql`` (BigQuery loads files with a load job). ``_scope.sql`` (the
window as literal dates) and ``_macros.sql`` (column lists) serve both; ``report/`` reads the
marts in SQL both engines take, naming each table through ``mart(name)``."""

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
