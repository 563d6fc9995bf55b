"""A Socrata-compatible replay server over bundled real rows, for offline runs and tests.

Serves the dataset the two ways Socrata does: ``GET /resource/<dataset_id>.json`` (SODA 2.1)
and ``POST /api/v3/views/<dataset_id>/query.json`` (SODA3: a JSON body with one SoQL string,
``SELECT … WHERE … GROUP BY … ORDER BY …``, and ``page`` number and size; an app token in
``X-App-Token`` is required), plus the dataset's metadata at ``/api/views/<dataset_id>.json``
(``rowsUpdatedAt``, the columns and their types). With ``redirect_to`` it answers every request
with a 301 to that server instead, as an old domain does. The query parameters are those the
pipeline (or any client) uses: ``$select`` (columns, ``*``, the system fields ``:id``,
``:created_at`` and ``:updated_at`` by name or as ``:*``, ``count``/``min``/``max`` and
``date_trunc_ymd``/``_ym``/``_y`` of a column, each ``[AS alias]``), ``$where`` (comparisons and
``IS [NOT] NULL`` joined by AND/OR, parentheses; a literal must have its column's type, as
SoQL's type checker wants), ``$group`` (expressions or aliases of ``$select``), ``$order``
(columns or output names, ASC/DESC), ``$limit`` (default 1,000 like Socrata) and
``$offset``. Like Socrata, null values are left out of JSON rows, system fields only come when
selected, and an unknown column or bad query is answered with HTTP 400 and a JSON error. Rows
changed through :meth:`ReplayServer.upsert` get a new ``:updated_at`` (a fixed timestamp, UTC,
like Socrata's); :meth:`ReplayServer.reload` replaces the dataset as a publisher's reload does.

Rows come from a folder of SODA JSON arrays (``*.json``) and DataSF CSV exports (``*.csv``,
display-name headers, converted to API form on load): by default the bundled real rows.
Development tooling (tests, ``make run``, ``make airflow``, benchmarks): no DAG imports it.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import csv
import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from sfpd.config import DEFAULT_DATASET_ID, PROJECT_ROOT

BUNDLED_ROWS = PROJECT_ROOT / "tests" / "fixtures" / "socrata"  # real rows, with their sources

# The dataset's columns as the live API publishes them (system field :id is always there).
DATASET_COLUMNS = frozenset(
    """incident_datetime incident_date incident_time incident_year incident_day_of_week
    report_datetime row_id incident_id incident_number cad_number report_type_code
    report_type_description filed_online incident_code incident_category incident_subcategory
    incident_description resolution intersection cnn police_district analysis_neighborhood
    supervisor_district supervisor_district_2012 latitude longitude point data_as_of
    data_loaded_at""".split()
)
SYSTEM_FIELDS = (":id", ":created_at", ":updated_at")
# The columns' SoQL types (dataTypeName in the metadata); the rest are text.
COLUMN_TYPES = {
    **dict.fromkeys(
        "incident_datetime incident_date report_datetime data_as_of data_loaded_at".split(),
        "calendar_date",
    ),
    **dict.fromkeys(":created_at :updated_at".split(), "fixed_timestamp"),
    **dict.fromkeys(
        """row_id incident_id incident_number cad_number cnn supervisor_district
        supervisor_district_2012 latitude longitude""".split(),
        "number",
    ),
    "filed_online": "checkbox",
    "point": "point",
}
NUMBER, TEXT, TIMESTAMPS = "number", "text", ("calendar_date", "fixed_timestamp")
# when the bundled rows were published, as far as this server is concerned
CORPUS_UPDATED_AT = "2026-01-01T00:00:00.000Z"
DEFAULT_LIMIT = 1000
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$")


class SoQLError(ValueError):
    """A query the server refuses (Socrata answers these with HTTP 400)."""


# --------------------------------------------------------------------------- corpus loading


def _csv_timestamp(value: str) -> str:
    if " " in value:  # "2018/12/01 12:25:00 AM"
        parsed = dt.datetime.strptime(value, "%Y/%m/%d %I:%M:%S %p")
    else:  # "2018/12/01"
        parsed = dt.datetime.strptime(value, "%Y/%m/%d")
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000")


def _csv_point(value: str) -> dict:
    lat, lon = (float(part) for part in value.strip("()").split(","))
    return {"type": "Point", "coordinates": [lon, lat]}


def rows_from_csv_export(path: Path) -> list[dict]:
    """Convert a DataSF "Export → CSV" file (display-name headers) into API-shaped rows."""
    converters: dict[str, Callable[[str], object]] = {
        "incident_datetime": _csv_timestamp,
        "incident_date": _csv_timestamp,
        "report_datetime": _csv_timestamp,
        "filed_online": lambda v: v.lower() == "true",
        "point": _csv_point,
    }
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            row = {}
            for header, value in record.items():
                name = header.strip().lower().replace(" ", "_")
                if value == "":
                    continue  # the API omits nulls
                row[name] = converters.get(name, str)(value)
            rows.append(row)
    return rows


def _row_sid(row: dict) -> str:
    key = row.get("row_id") or json.dumps(row, sort_keys=True)  # a malformed row may lack it
    return f"row-{hashlib.sha1(str(key).encode()).hexdigest()[:12]}"


def with_system_fields(row: dict, updated_at: str = CORPUS_UPDATED_AT) -> dict:
    """The row with Socrata's system fields, keeping those it has (a stable ``:id`` from its
    row_id)."""
    return {
        ":id": _row_sid(row),
        ":created_at": updated_at,
        ":updated_at": updated_at,
        **row,
    }


def load_corpus(data_dir: Path) -> list[dict]:
    """All rows of the folder, one per row_id, each with its system fields, in ``:id`` order."""
    by_row_id: dict[str, dict] = {}
    for path in sorted(data_dir.iterdir()):
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".csv":
            rows = rows_from_csv_export(path)
        else:
            continue
        for row in rows:
            by_row_id[row["row_id"]] = row
    return sorted(map(with_system_fields, by_row_id.values()), key=lambda row: row[":id"])


# --------------------------------------------------------------------------- SoQL subset

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<paren>[()])|(?P<word>[:@A-Za-z_][\w:@]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    position, tokens = 0, []
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise SoQLError(f"could not parse $where near {text[position : position + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def _comparable(value: object, kind: str | None = None) -> object:
    """A value as its column's type compares it (``kind``); without a type, as it looks."""
    if kind == NUMBER:
        return float(value)
    if kind == TEXT:
        return str(value)
    if isinstance(value, str) and _TIMESTAMP.match(value):
        try:  # a fixed timestamp (Z) compares as UTC, a floating one as it is
            return dt.datetime.fromisoformat(value.removesuffix("Z"))
        except ValueError:
            return value  # not a real date: compared as text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


_OPS: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

Predicate = Callable[[dict], bool]


class _WhereParser:
    """expr := term (OR term)*; term := factor (AND factor)*;
    factor := (expr) | col op literal | col IS [NOT] NULL"""

    def __init__(self, text: str, types: dict[str, str]) -> None:
        self.tokens = _tokens(text)
        self.types = types
        self.pos = 0

    def parse(self) -> Predicate:
        predicate = self._expr()
        if self.pos != len(self.tokens):
            raise SoQLError(f"unexpected {self.tokens[self.pos][1]!r} in $where")
        return predicate

    def _peek_word(self, word: str) -> bool:
        if self.pos >= len(self.tokens):
            return False
        kind, text = self.tokens[self.pos]
        return kind == "word" and text.upper() == word

    def _take(self, kind: str) -> str:
        if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != kind:
            raise SoQLError(f"expected {kind} in $where")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def _expr(self) -> Predicate:
        terms = [self._term()]
        while self._peek_word("OR"):
            self.pos += 1
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else lambda row: any(t(row) for t in terms)

    def _term(self) -> Predicate:
        factors = [self._factor()]
        while self._peek_word("AND"):
            self.pos += 1
            factors.append(self._factor())
        return factors[0] if len(factors) == 1 else lambda row: all(f(row) for f in factors)

    def _factor(self) -> Predicate:
        if self.pos < len(self.tokens) and self.tokens[self.pos] == ("paren", "("):
            self.pos += 1
            inner = self._expr()
            if self._take("paren") != ")":
                raise SoQLError("unbalanced parentheses in $where")
            return inner
        column = _check_column(self._take("word"))
        if self._peek_word("IS"):
            self.pos += 1
            negated = self._peek_word("NOT")
            self.pos += negated
            if not self._peek_word("NULL"):
                raise SoQLError("expected NULL after IS in $where")
            self.pos += 1
            return lambda row: (row.get(column) is None) != negated
        op = _OPS[self._take("op")]
        kind = self.types.get(column, TEXT)
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "string":
            if kind == NUMBER:
                raise SoQLError(f"Type mismatch: {column} is a number, compared with text")
            literal: object = self._take("string")[1:-1].replace("''", "'")
        else:
            if kind == TEXT or kind in TIMESTAMPS:
                raise SoQLError(f"Type mismatch: {column} is {kind}, compared with a number")
            literal = self._take("number")
        kind = kind if kind in (NUMBER, TEXT) else None
        right = _comparable(literal, kind)

        def predicate(row: dict) -> bool:
            value = row.get(column)
            if value is None:
                return False
            left = _comparable(value, kind)
            try:
                return op(left, right)
            except TypeError:
                return op(str(value), str(literal))

        return predicate


def _check_column(name: str) -> str:
    if name not in SYSTEM_FIELDS and name not in DATASET_COLUMNS:
        raise SoQLError(f"No such column: {name}")
    return name


def parse_where(text: str | None, types: dict[str, str] = COLUMN_TYPES) -> Predicate:
    return _WhereParser(text, types).parse() if text else (lambda row: True)


_COUNT = re.compile(r"^count\(\s*\*\s*\)(?:\s+as\s+(?P<alias>\w+))?$", re.IGNORECASE)
_ITEM = re.compile(
    r"^(?:(?P<fn>\w+)\(\s*(?P<arg>\*|[:\w]+)\s*\)|(?P<column>[:\w]+|\*|:\*))"
    r"(?:\s+as\s+(?P<alias>\w+))?$",
    re.IGNORECASE,
)
_AGGREGATES: dict[str, Callable[[list], object]] = {
    "count": len,
    "min": lambda values: min(values, key=_comparable) if values else None,
    "max": lambda values: max(values, key=_comparable) if values else None,
}
# floating timestamps truncated like Socrata's date_trunc_* (the first n characters kept)
_TRUNCATE = {"date_trunc_ymd": 10, "date_trunc_ym": 7, "date_trunc_y": 4}
_TRUNCATED_TAIL = "0000-01-01T00:00:00.000"


@dataclass(frozen=True)
class _Item:
    """One expression of ``$select`` (or ``$group``) and the name of its output field."""

    name: str
    column: str  # the column it reads ("*" for count(*))
    function: str | None = None

    @property
    def aggregate(self) -> bool:
        return self.function in _AGGREGATES

    def value(self, row: dict) -> object:
        value = row.get(self.column)
        if self.function in _TRUNCATE and value is not None:
            kept = _TRUNCATE[self.function]
            return value[:kept] + _TRUNCATED_TAIL[kept:]
        return value


def _items(text: str) -> list[_Item]:
    """The expressions of a ``$select`` or ``$group`` list, ``*`` and ``:*`` expanded."""
    items: list[_Item] = []
    for part in (part.strip() for part in text.split(",")):
        match = _ITEM.match(part)
        if not match:
            raise SoQLError(f"could not parse {part!r}")
        column, function, alias = match["column"], match["fn"], match["alias"]
        if column in ("*", ":*"):
            names = sorted(DATASET_COLUMNS) if column == "*" else SYSTEM_FIELDS
            items.extend(_Item(name, name) for name in names)
        elif column:
            items.append(_Item(alias or column, _check_column(column)))
        else:
            function = function.lower()
            if function not in _AGGREGATES and function not in _TRUNCATE:
                raise SoQLError(f"function {function}() is not supported")
            argument = match["arg"] if match["arg"] == "*" else _check_column(match["arg"])
            if argument == "*" and function != "count":
                raise SoQLError(f"{function}(*) is not a function")
            name = alias or ("count" if argument == "*" else f"{function}_{argument.lstrip(':')}")
            items.append(_Item(name, argument, function))
    return items


def _grouped(rows: list[dict], select: list[_Item], group: str, order: str) -> list[dict]:
    """One output row per group (one for all rows without ``$group``), ordered."""
    keys = []
    for part in (part.strip() for part in group.split(",") if part.strip()):
        by_name = [item for item in select if item.name == part]  # an alias of $select
        keys.append(by_name[0] if by_name else _items(part)[0])
    grouped_by = {(key.column, key.function) for key in keys}
    for item in select:
        if not item.aggregate and (item.column, item.function) not in grouped_by:
            raise SoQLError(f"{item.name} must be in $group or inside an aggregate")
    groups: dict[tuple, list[dict]] = collections.defaultdict(list)
    for row in rows:
        groups[tuple(key.value(row) for key in keys)].append(row)
    if not keys:
        groups.setdefault((), [])
    output = []
    for members in groups.values():
        record = {}
        for item in select:
            if item.aggregate:
                values = (
                    members
                    if item.column == "*"
                    else [m[item.column] for m in members if m.get(item.column) is not None]
                )
                value = _AGGREGATES[item.function](values)
                value = str(value) if item.function == "count" else value
            else:
                value = item.value(members[0])
            if value is not None:
                record[item.name] = value
        output.append(record)
    for key in reversed([part.strip() for part in order.split(",") if part.strip()]):
        name, _, direction = key.partition(" ")
        if name not in {item.name for item in select}:
            raise SoQLError(f"cannot order grouped rows by {name}")
        output.sort(
            key=lambda record: (name not in record, _comparable(record.get(name, ""))),
            reverse=direction.strip().upper() == "DESC",
        )
    return output


def _filter_and_order(
    corpus: list[dict], where: str, order: str, types: dict[str, str], cache: dict | None = None
) -> list[dict]:
    """The rows ``where`` selects, ordered. ``cache`` (kept by the caller) remembers the last
    filter and the last ordering, so paging through a large corpus, and counting it first,
    filter it once."""
    cache = {} if cache is None else cache
    keyset = _KEYSET.fullmatch(where) if order.strip() == "row_id" else None
    if keyset:  # a keyset page: the base query's rows once, then a binary search (an index)
        ordered = _filter_and_order(corpus, keyset["base"], "row_id", types, cache)
        kind = types.get("row_id", TEXT)
        if "keys" not in cache:
            present = [row["row_id"] for row in ordered if row.get("row_id") is not None]
            cache["keys"] = [_comparable(value, kind) for value in present]
        keys, bound = cache["keys"], keyset["bound"]
        if bound.upper() == "IS NOT NULL":
            return ordered[: len(keys)]
        parse_where(f"row_id {bound}", types)  # the literal's type checked
        literal = _tokens(bound)[1][1]
        value = literal[1:-1].replace("''", "'") if literal.startswith("'") else literal
        return ordered[bisect.bisect_right(keys, _comparable(value, kind)) : len(keys)]
    if cache.get("where") != where:
        predicate = parse_where(where, types)
        cache.clear()
        cache.update(where=where, rows=[row for row in corpus if predicate(row)])
    if cache.get("order") != order:
        cache.pop("keys", None)
        cache.update(order=order, ordered=_ordered(cache["rows"], order, types))
    return cache["ordered"]


# "(<where>) AND row_id > <literal>" or "... IS NOT NULL": what a keyset-paging client asks
_KEYSET = re.compile(r"\((?P<base>.*)\) AND row_id (?P<bound>> .+|IS NOT NULL)", re.DOTALL)


def _ordered(matching: list[dict], order: str, types: dict[str, str]) -> list[dict]:
    for key in reversed([part.strip() for part in order.split(",") if part.strip()]):
        column, _, direction = key.partition(" ")
        _check_column(column)
        kind = types.get(column, TEXT)
        kind = kind if kind in (NUMBER, TEXT) else None
        descending = direction.strip().upper() == "DESC"
        present = [row for row in matching if row.get(column) is not None]
        absent = [row for row in matching if row.get(column) is None]
        present.sort(key=lambda row: _comparable(row[column], kind), reverse=descending)
        matching = present + absent
    return matching


def run_query(
    corpus: list[dict],
    params: dict[str, str],
    cache: dict | None = None,
    types: dict[str, str] = COLUMN_TYPES,
) -> list[dict]:
    """Answer one SODA 2.x query over the corpus, like Socrata would.

    ``cache``: see :func:`_filter_and_order`; ``types``: the columns' SoQL types.
    """
    select_text = params.get("$select", "").strip() or "*"
    select = _items(select_text)
    group, order = params.get("$group", "").strip(), params.get("$order", "")
    grouped = bool(group) or any(item.aggregate for item in select)
    where = params.get("$where", "")
    matching = _filter_and_order(corpus, where, "" if grouped else order, types, cache)
    if _COUNT.match(select_text):  # the count before paging: no grouping pass
        return [{select[0].name: str(len(matching))}]
    try:
        offset = int(params.get("$offset", 0))
        limit = int(params.get("$limit", DEFAULT_LIMIT))
    except ValueError as exc:
        raise SoQLError(f"$limit and $offset must be integers: {exc}") from exc
    if offset < 0 or limit < 0:
        raise SoQLError("$limit and $offset must not be negative")
    if grouped:
        return _grouped(matching, select, group, order)[offset : offset + limit]
    return [
        {item.name: row[item.column] for item in select if row.get(item.column) is not None}
        for row in matching[offset : offset + limit]
    ]


_CLAUSE = re.compile(r"\b(SELECT|WHERE|GROUP\s+BY|ORDER\s+BY|LIMIT|OFFSET)\b", re.IGNORECASE)
_SOQL_STRING = re.compile(r"'(?:[^']|'')*'")
_PARAMS = {"SELECT": "$select", "WHERE": "$where", "GROUPBY": "$group", "ORDERBY": "$order"}
_PARAMS |= {"LIMIT": "$limit", "OFFSET": "$offset"}


def soql_params(query: str) -> dict[str, str]:
    """A SODA3 SoQL string as the SODA 2.x parameters it stands for (clause keywords inside
    quoted literals are not clauses)."""
    blanked = _SOQL_STRING.sub(lambda m: " " * len(m[0]), query)
    marks = list(_CLAUSE.finditer(blanked))
    if not marks or marks[0].start() != len(query) - len(query.lstrip()):
        raise SoQLError(f"could not parse the query {query[:60]!r}")
    params = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(query)
        name = _PARAMS[re.sub(r"\s+", "", mark[1].upper())]
        if name in params:
            raise SoQLError(f"{mark[1]} twice in the query")
        params[name] = query[mark.end() : end].strip()
    return params


def soda3_params(body: dict) -> dict[str, str]:
    """A SODA3 query body (``query`` and ``page``) as SODA 2.x parameters."""
    params = soql_params(body["query"])
    page = body.get("page")
    if page:
        size, number = int(page["pageSize"]), int(page["pageNumber"])
        if size < 1 or number < 1:
            raise SoQLError("pageNumber and pageSize start at 1")
        params |= {"$limit": str(size), "$offset": str((number - 1) * size)}
    return params


# --------------------------------------------------------------------------- HTTP server

FAULT_KINDS = ("429", "500", "503", "202", "slow")


@dataclass
class Faults:
    """Failures the server injects, like the live API's: throttling (429 with Retry-After),
    server errors (500, 503), "still processing" (202) and slow answers, on a share of data-page
    requests (deterministic for a seed; one request is never failed more than ``max_in_a_row``
    times in a row, so a client that retries gets through). Also a page cut short once, a
    ``count(*)`` that disagrees with the rows, an error object answered with HTTP 200 (SODA3
    does that), one answer held back for a while, and a publisher's reload after some data
    pages (:meth:`ReplayServer.reload`)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    slow_seconds: float = 1.5
    max_in_a_row: int = 2
    cut_next_page: int = 0  # rows to drop from the next full page, once
    count_offset: int = 0
    error_object_next: bool = False  # the next data request gets {"message": ...} with 200
    delay_next: float = 0.0  # the next data request is answered after this many seconds
    reload_after_pages: int = 0  # the dataset is reloaded after this many data pages, once
    pages_served: int = 0
    injected: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._in_a_row: collections.Counter = collections.Counter()

    def draw(self, key: str) -> str | None:
        """The fault for this attempt at the request ``key``, if any."""
        if self.rate and self._in_a_row[key] < self.max_in_a_row:
            if self._random.random() < self.rate:
                self._in_a_row[key] += 1
                kind = self.kinds[sum(self.injected.values()) % len(self.kinds)]  # in turn
                self.injected[kind] += 1
                return kind
        self._in_a_row[key] = 0
        return None


def socrata_json(body: object, soda3: bool = False) -> bytes:
    """A reply's bytes as Socrata lays them out (tests/fixtures/socrata-recorded shows each,
    byte for byte): an array of rows, each compact, ``[{...}\n,{...}]\n`` from SODA 2.x and
    ``[\n{...},\n{...}\n]\n`` from SODA3; an object (an error, the metadata) pretty-printed
    with ``" : "``."""
    if isinstance(body, list) and all(isinstance(row, dict) for row in body):
        rows = [json.dumps(row, separators=(",", ":")) for row in body]
        if soda3:
            return ("[\n" + ",\n".join(rows) + ("\n" if rows else "") + "]\n").encode()
        return ("[" + "\n,".join(rows) + "]\n").encode()
    return (json.dumps(body, indent=2, separators=(",", " : ")) + "\n").encode()


def error_body(code: str | None, message: str, **data: object) -> dict:
    """An error object as Socrata answers one: ``code`` (``dataset.missing``, ``not_found``,
    ``query.compiler.malformed``), ``error``, ``message`` and what it refers to in ``data``."""
    return {"code": code, "error": True, "message": message, "data": data}


class ReplayServer:
    """A threaded HTTP server on 127.0.0.1; ``port=0`` picks a free port."""

    def __init__(
        self,
        data_dir: Path | None,
        dataset_id: str = DEFAULT_DATASET_ID,
        port: int = 0,
        cache_replies: bool = False,
        column_types: dict[str, str] | None = None,
        redirect_to: str | None = None,
    ) -> None:
        """``cache_replies`` keeps each fault-free reply's encoded body by its query, so a
        repeated request costs the server almost nothing (benchmarks of clients).
        ``column_types`` overrides :data:`COLUMN_TYPES` (e.g. row_id as text); ``redirect_to``
        (``http://host:port``) makes every answer a 301 there."""
        self.corpus = load_corpus(data_dir) if data_dir else []
        self.cache_replies = cache_replies
        self.types = {**COLUMN_TYPES, **(column_types or {})}
        self.redirect_to = redirect_to
        self.redirected = 0  # requests answered with the redirect
        self.serve_metadata = True  # False: /api/views answers 404, as a plain SODA server may
        self.deleted_at: str | None = None  # when rows were last removed (a fixed timestamp)
        self._replies: dict[str, bytes] = {}
        self.dataset_id = dataset_id
        self.requests: list[dict[str, str]] = []
        self.faults = Faults()
        self._cache: dict = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if server.redirect_to:
                    self._redirect()
                elif url.path == f"/resource/{server.dataset_id}.json":
                    params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    self._answer(url.query, params)
                elif url.path == f"/api/views/{server.dataset_id}.json" and server.serve_metadata:
                    self._reply(200, server.metadata())
                else:
                    self._not_found(url.path)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if server.redirect_to:
                    self._redirect()
                elif self.path != f"/api/v3/views/{server.dataset_id}/query.json":
                    self._not_found(self.path)
                elif not self.headers.get("X-App-Token"):
                    self._reply(
                        403,
                        {
                            "errorCode": "authentication_required",
                            "message": "SODA3 requires an app token (X-App-Token)",
                        },
                    )
                else:
                    try:
                        params = soda3_params(json.loads(body))
                    except (SoQLError, ValueError, TypeError, AttributeError) as exc:
                        self._reply(400, {"errorCode": "query.soql.invalid", "message": str(exc)})
                        return
                    self._answer(body.decode(), params, soda3=True)

            def _not_found(self, path: str) -> None:
                """As Socrata: ``dataset.missing`` for rows of another dataset, ``not_found``
                for another view's metadata (the last part of the path is the id)."""
                name = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
                code = "dataset.missing" if path.startswith("/resource/") else "not_found"
                self._reply(404, error_body(code, "Not found", id=name))

            def _redirect(self) -> None:
                server.redirected += 1
                self._reply(301, {}, {"Location": server.redirect_to + self.path})

            def _answer(self, key: str, params: dict[str, str], soda3: bool = False) -> None:
                server.requests.append(params)
                cached = server._replies.get(key)
                if cached is not None:
                    self._reply(200, cached)
                    return
                try:
                    with server._lock:
                        rows = run_query(server.corpus, params, server._cache, server.types)
                        reply = server._inject(key, params, rows)
                except SoQLError as exc:
                    query = " ".join(f"{k} {v}" for k, v in params.items())
                    reply = (400, error_body("query.compiler.malformed", str(exc), query=query),
                             {}, 0.0)  # fmt: skip
                status, body, headers, delay = reply
                payload = socrata_json(body, soda3=soda3)
                if server.cache_replies and status == 200 and not delay:
                    server._replies[key] = payload
                time.sleep(delay)
                self._reply(status, payload, headers)

            def _reply(self, status: int, body: object, headers: dict | None = None) -> None:
                payload = body if isinstance(body, bytes) else socrata_json(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a slow answer)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    def metadata(self) -> dict:
        """The dataset's metadata as ``/api/views/<id>.json`` has it (the fields clients use)."""
        latest = self._last_change()
        updated = dt.datetime.fromisoformat(latest.removesuffix("Z")).replace(tzinfo=dt.UTC)
        columns = sorted(DATASET_COLUMNS)
        return {
            "id": self.dataset_id,
            "rowsUpdatedAt": int(updated.timestamp()),
            "columns": [{"fieldName": c, "dataTypeName": self.types.get(c, TEXT)} for c in columns],
        }

    def _inject(self, key: str, params: dict, rows: list[dict]) -> tuple:
        """(status, body, headers, delay) for this request, faults applied."""
        faults = self.faults
        if _COUNT.match(params.get("$select", "").strip()):
            if faults.count_offset:
                alias = next(iter(rows[0]))
                rows = [{alias: str(int(rows[0][alias]) + faults.count_offset)}]
            return 200, rows, {}, 0.0
        if faults.delay_next:
            delay, faults.delay_next = faults.delay_next, 0.0
            faults.injected["delay"] += 1
            return 200, rows, {}, delay
        kind = faults.draw(key)
        if kind == "429":
            return 429, {"message": "Too many requests"}, {"Retry-After": "1"}, 0.0
        if kind in ("500", "503"):
            return (
                int(kind),
                {"error": True, "message": "Internal error", "status": int(kind)},
                {},
                0.0,
            )
        if kind == "202":
            return 202, {"message": "Processing, try again"}, {}, 0.0
        if kind == "slow":
            return 200, rows, {}, faults.slow_seconds
        if faults.error_object_next:
            faults.error_object_next = False
            faults.injected["error object"] += 1
            return (
                200,
                {"errorCode": "query.execution.timeout", "message": "Query timed out"},
                {},
                0.0,
            )
        limit = int(params.get("$limit", DEFAULT_LIMIT))
        if faults.cut_next_page and len(rows) == limit:
            rows, faults.cut_next_page = rows[: -faults.cut_next_page], 0
            faults.injected["cut"] += 1
        faults.pages_served += 1
        if faults.reload_after_pages and faults.pages_served == faults.reload_after_pages:
            self.reload(locked=True)
            faults.injected["reload"] += 1
        return 200, rows, {}, 0.0

    def replace_corpus(self, rows: list[dict], locked: bool = False) -> None:
        """Serve these rows from now on, as they are (system fields added where missing).
        ``locked``: the caller holds the server's lock (a fault injected while answering)."""
        with contextlib.nullcontext() if locked else self._lock:
            self.corpus = sorted(map(with_system_fields, rows), key=lambda row: row[":id"])
            self._cache.clear()
            self._replies.clear()

    def reload(self, locked: bool = False) -> str:
        """A publisher's full replace: the same rows, each with a new ``:id`` (so the ``:id``
        order is shuffled) and new ``:created_at``/``:updated_at``, returned."""
        stamp = self._stamp()
        salt = stamp.encode()
        rows = [
            {**row, ":id": f"row-{hashlib.sha1(salt + row[':id'].encode()).hexdigest()[:12]}",
             ":created_at": stamp, ":updated_at": stamp}
            for row in self.corpus
        ]  # fmt: skip
        self.replace_corpus(rows, locked)
        return stamp

    def _last_change(self) -> str:
        """When the data last changed (a fixed timestamp): the latest ``:updated_at`` served,
        or the last removal, if later."""
        latest = max((row[":updated_at"] for row in self.corpus), default=CORPUS_UPDATED_AT)
        return max(latest, self.deleted_at or latest)

    def _stamp(self) -> str:
        """A fixed timestamp (UTC) in a later second than every ``:updated_at`` served so far,
        so the metadata's ``rowsUpdatedAt`` (whole seconds) moves with every change."""
        latest = self._last_change()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        later = dt.datetime.fromisoformat(latest.removesuffix("Z")).replace(microsecond=0)
        stamp = max(now, later + dt.timedelta(seconds=1))
        return stamp.isoformat(timespec="milliseconds") + "Z"

    def upsert(self, rows: list[dict]) -> str:
        """Publish rows, new or changed (matched on row_id), as Socrata's upsert does: each gets
        a new ``:updated_at`` (new rows also ``:created_at``), returned."""
        stamp = self._stamp()
        by_row_id = {row["row_id"]: row for row in self.corpus}
        for row in rows:
            old = by_row_id.get(row["row_id"])
            fields = {key: value for key, value in row.items() if not key.startswith(":")}
            created = old[":created_at"] if old else stamp
            by_row_id[row["row_id"]] = {**with_system_fields(fields, stamp), ":created_at": created}
        self.replace_corpus(list(by_row_id.values()))
        return stamp

    def delete(self, row_ids: Iterable[str]) -> None:
        """Remove rows (sealed upstream): they simply stop being served, and the metadata's
        ``rowsUpdatedAt`` (when the data last changed) moves, as Socrata's does."""
        gone = set(row_ids)
        deleted_at = self._stamp()
        self.replace_corpus([row for row in self.corpus if row["row_id"] not in gone])
        self.deleted_at = deleted_at

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection_uri_json(self, api: str = "soda2", app_token: str | None = None) -> str:
        """The ``socrata_default`` connection pointing at this server, as Airflow JSON."""
        connection = {"conn_type": "http", "host": "127.0.0.1", "port": self.port}
        connection |= {"schema": "http", "extra": {"api": api}}
        return json.dumps(connection | ({"password": app_token} if app_token else {}))


def rows_in(corpus: Iterable[dict], where: str) -> list[dict]:
    """The corpus rows a ``$where`` selects (tests compare warehouse tables with this)."""
    predicate = parse_where(where)
    return [row for row in corpus if predicate(row)]
