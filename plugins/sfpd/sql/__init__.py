"""SQL lives in the .sql files beside this module; column lists come from sfpd.schema."""

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
    """Render ``<dialect>/<file>.sql`` with identifiers and column lists."""
    return _ENV.get_template(name).render(**context)
