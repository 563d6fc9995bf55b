"""Benchmarks (`make bench`): figures printed and written to docs/benchmarks.md, never asserted.

    python -m sfpd_dev.bench [--rows 1000000] [--sizes 100000,300000] [--out docs/benchmarks.md]

1. Extract: our path (sodapy pages -> normalise -> Parquet per page in the lake) against the
   reference pipelines' method (sodapy ``get_all`` into one pandas DataFrame, ``to_parquet``),
   on the same synthetic rows served by the replay server on 127.0.0.1; each run in its own
   subprocess (wall time, rows/s, peak RSS), at each size.
2. The MERGE of a ~25k-row window into a 1M-row raw table on DuckDB.
3. DAG parse time of each DAG file against a bare one-task DAG.
4. The daily DAG end to end on the embedded default (the bundled rows' ~12k-row window):
   `airflow dags test`, and under a real scheduler (REST API) with each dbt execution mode.
5. The backfill of the whole history in month chunks under a real scheduler, from the 1M
   synthetic rows: wall time and the peak RSS of each task process.
6. The catch-up (rows changed upstream outside the window, day counts) against those 1M rows:
   nothing changed, a day's worth of edits and removals, and a burst of 100k changed rows.
7. Paging over those 1M rows: by key (``row_id > last``, what the pipeline does) against by
   offset (``$order=:id`` with ``$offset``), at the first and the last page and for a whole read
   (``--only paging`` measures this section alone and rewrites it in place; ``--only extract``
   sections 1 and 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sfpd.config import PROJECT_ROOT
from sfpd.window import SF_TZ, Window
from sfpd_dev.replay import BUNDLED_ROWS, ReplayServer

DATASET = "wg3w-h783"
# The synthetic rows spread over eight years (~340 a day, close to the real ~230 + offences).
SPAN = Window(dt.date(2018, 1, 1), dt.date(2026, 1, 1))
PAGE_SIZE = 50_000


# --------------------------------------------------------------------------- synthetic rows


def synthetic_rows(n: int, span: Window = SPAN, seed: int = 7) -> list[dict]:
    """``n`` rows shaped like the real ones: each a real bundled row (so the same fields, value
    mixes and omitted nulls) moved to a new report and a date spread over ``span``; about one
    report in five has a second offence, as in the real data."""
    templates = [{k: v for k, v in row.items() if k != ":id"} for row in _real_rows()]
    rng = random.Random(seed)
    days = (span.end - span.start).days
    rows, incident_id = [], 10_000_000
    while len(rows) < n:
        template = rng.choice(templates)
        day = span.start + dt.timedelta(days=rng.randrange(days))
        hh_mm = template["incident_time"]
        stamp = f"{day.isoformat()}T{hh_mm}:00.000"
        offences = 2 if rng.random() < 0.2 else 1
        for offence in range(min(offences, n - len(rows))):
            code = f"{int(template['incident_code']) + offence:05d}"
            row = {
                **template,
                "incident_id": str(incident_id),
                "incident_code": code,
                "row_id": f"{incident_id}{code}",
                "incident_datetime": stamp,
                "incident_date": f"{day.isoformat()}T00:00:00.000",
                "incident_year": str(day.year),
                "incident_day_of_week": day.strftime("%A"),
                ":id": f"row-{incident_id:09d}-{offence}",
            }
            if "report_datetime" in row:
                row["report_datetime"] = stamp
            rows.append(row)
        incident_id += 1
    return rows


def _real_rows() -> list[dict]:
    from sfpd_dev.replay import load_corpus

    return load_corpus(BUNDLED_ROWS)


# --------------------------------------------------------------------------- workers


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: that survives
    exec, so a worker forked from the server's process would report the server's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker_ours(port: int, out: Path) -> dict:
    from sfpd.extract import extract_to_lake
    from sfpd.lake import open_lake
    from sfpd.socrata import SocrataEndpoint, SocrataSource

    endpoint = SocrataEndpoint(host="127.0.0.1", port=port, scheme="http", dataset_id=DATASET)
    started = time.perf_counter()
    with SocrataSource(endpoint, PAGE_SIZE) as source:
        extract = extract_to_lake(SPAN, source, open_lake(out.as_uri()), DATASET)
    return {"seconds": time.perf_counter() - started, "rows": extract.rows}


def worker_pandas(port: int, out: Path) -> dict:
    """What the reference pipelines do: every row into one DataFrame, then one Parquet file
    (given the same page size and ``$order``, to be fair to it)."""
    import pandas as pd
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    started = time.perf_counter()
    client = Socrata(
        f"127.0.0.1:{port}", None, session_adapter={"prefix": "http://", "adapter": HTTPAdapter()}
    )
    client.uri_prefix = "http://"
    rows = client.get_all(DATASET, where=SPAN.soql_where(), order=":id", limit=PAGE_SIZE)
    frame = pd.DataFrame.from_records(list(rows))
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "incidents.parquet")
    client.close()
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


WORKERS = {"ours": worker_ours, "pandas": worker_pandas}


def run_worker(method: str, port: int, out: Path) -> dict:
    """One method in a fresh interpreter: its own peak RSS, nothing shared."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfpd_dev.bench",
            "--worker",
            method,
            "--port",
            str(port),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": _pythonpath()},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pythonpath() -> str:
    # the project root for tests.dags.dagbag (parse timings)
    paths = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "dev"), str(PROJECT_ROOT)]
    return os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])


# --------------------------------------------------------------------------- benchmarks


def bench_extract(sizes: list[int], workdir: Path) -> list[dict]:
    figures = []
    with ReplayServer(BUNDLED_ROWS, cache_replies=True) as server:
        for n in sizes:
            server.replace_corpus(synthetic_rows(n))
            for method in ("ours", "pandas"):
                run_worker(method, server.port, workdir / f"warm-{method}-{n}")  # fills the cache
                # the faster of two runs: the server shares the two cores with the client
                result = min(
                    (run_worker(method, server.port, workdir / f"{method}-{n}") for _ in range(2)),
                    key=lambda figures: figures["seconds"],
                )
                assert result["rows"] == n, result
                figures.append({"method": method, "n": n, **result})
                print(
                    f"extract {method:>6} {n:>9,} rows: {result['seconds']:6.1f} s "
                    f"{n / result['seconds']:>9,.0f} rows/s  peak RSS {result['rss_mb']:,.0f} MB",
                    flush=True,
                )
    return figures


def bench_merge(lake_dir: Path, workdir: Path) -> dict:
    """Load the 1M rows our extract wrote, then MERGE a two-month window of ~25k rows (10%
    changed, 1% gone, 5% new) into them."""
    import duckdb

    from sfpd.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(workdir / "merge.duckdb")
    files = sorted(lake_dir.glob(f"{DATASET}/windows/{SPAN.label}/part-*.parquet"))
    parts = [str(p) for p in files]
    rejects = (lake_dir / DATASET / "windows" / SPAN.label / "rejects.parquet").as_uri()
    total = duckdb.sql(f"SELECT count(*) FROM read_parquet({parts})").fetchall()[0][0]
    started = time.perf_counter()
    warehouse.merge_window(
        SPAN,
        [p.as_uri() for p in files],
        rejects_uri=rejects,
        expected_rows=total,
        rows_read=total,
        run_id="bench-initial",
    )
    initial = time.perf_counter() - started

    window = Window(dt.date(2025, 11, 1), dt.date(2026, 1, 1))
    changed = workdir / "window.parquet"
    duckdb.sql(
        f"""
        COPY (
            SELECT * REPLACE (CASE WHEN hash(row_id) % 10 = 0 THEN 'Unfounded'
                                   ELSE resolution END AS resolution)
            FROM read_parquet({parts})
            WHERE incident_date >= DATE '{window.start}' AND incident_date < DATE '{window.end}'
              AND hash(row_id) % 100 != 1
            UNION ALL
            SELECT * REPLACE (row_id || 'N' AS row_id)
            FROM read_parquet({parts})
            WHERE incident_date >= DATE '{window.start}' AND incident_date < DATE '{window.end}'
              AND hash(row_id) % 20 = 3
        ) TO '{changed}' (FORMAT parquet)
        """
    )
    rows = duckdb.sql(f"SELECT count(*) FROM '{changed}'").fetchall()[0][0]
    started = time.perf_counter()
    result = warehouse.merge_window(
        window,
        [changed.as_uri()],
        rejects_uri=rejects,
        expected_rows=rows,
        rows_read=rows,
        run_id="bench-window",
    )
    seconds = time.perf_counter() - started
    figure = {
        "raw_rows": total,
        "initial_seconds": initial,
        "window_rows": rows,
        "seconds": seconds,
        "inserted": result.rows_inserted,
        "updated": result.rows_updated,
        "deleted": result.rows_deleted,
    }
    print(
        f"merge {rows:,} rows into {total:,}: {seconds:.2f} s "
        f"(inserted {result.rows_inserted:,}, updated {result.rows_updated:,}, "
        f"deleted {result.rows_deleted:,}); initial load of {total:,}: {initial:.1f} s"
    )
    return figure


def bench_catch_up(lake_dir: Path, workdir: Path, rows: list[dict]) -> list[dict]:
    """The catch-up over a 1M-row raw table (the rows our extract wrote, loaded as one window)
    against a replay server holding the same rows: with nothing changed upstream, after a
    day's edits (1,000 rows, 100 of them moved to another date) and 10 removals, and after a
    burst of 100,000 changed rows (what a partial reload would give). The time the client
    waited for the server's answers is measured apart: the replay server filters its rows in
    Python for each new ``$where``, which Socrata answers from an index."""
    from sfpd.lake import open_lake
    from sfpd.pipeline import Loader
    from sfpd.socrata import SocrataEndpoint, SocrataSource
    from sfpd.warehouse import DuckDBWarehouse
    from sfpd.window import parse_fixed_timestamp
    from sfpd_dev.replay import CORPUS_UPDATED_AT

    files = sorted(lake_dir.glob(f"{DATASET}/windows/{SPAN.label}/part-*.parquet"))
    rejects = (lake_dir / DATASET / "windows" / SPAN.label / "rejects.parquet").as_uri()
    warehouse = DuckDBWarehouse(workdir / "catch-up.duckdb")
    warehouse.merge_window(
        SPAN, [p.as_uri() for p in files], rejects_uri=rejects, expected_rows=len(rows),
        rows_read=len(rows), run_id="bench-initial",
        source_updated_through=parse_fixed_timestamp(CORPUS_UPDATED_AT),
    )  # fmt: skip
    lake = open_lake((workdir / "catch-up-lake").as_uri())
    picked = random.Random(11).sample(rows, 101_010)
    edits = [{**row, "resolution": "Unfounded"} for row in picked[:900]]
    leap_day = {
        "incident_datetime": "2024-02-29T12:00:00.000",
        "incident_date": "2024-02-29T00:00:00.000",
    }
    moved = [{**row, **leap_day} for row in picked[900:1000]]
    burst = [{**row, "resolution": "Exceptional Adult"} for row in picked[1010:]]
    figures = []
    with ReplayServer(BUNDLED_ROWS) as server:
        server.replace_corpus(rows)
        endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
        with SocrataSource(endpoint, PAGE_SIZE) as source:
            waited = [0.0]
            request = source._request

            def timed(params):  # the client's wait for each answer
                started = time.perf_counter()
                try:
                    return request(params)
                finally:
                    waited[0] += time.perf_counter() - started

            source._request = timed
            for case, change in [
                ("nothing changed", lambda: None),
                ("1,000 edited (100 moved), 10 removed", lambda: (
                    server.upsert(edits + moved),
                    server.delete(row["row_id"] for row in picked[1000:1010]),
                )),
                ("100,000 edited", lambda: server.upsert(burst)),
            ]:  # fmt: skip
                change()
                requests, waited[0] = len(server.requests), 0.0
                started = time.perf_counter()
                result = Loader(source, lake, warehouse, DATASET, "bench").catch_up()
                seconds = time.perf_counter() - started
                with warehouse.connect() as con:
                    loaded = con.execute("SELECT count(*) FROM sfpd_raw.incidents").fetchone()[0]
                assert loaded == len(server.corpus), (loaded, len(server.corpus))
                figure = {
                    "case": case,
                    "seconds": seconds,
                    "server_seconds": waited[0],
                    "requests": len(server.requests) - requests,
                    "changed_rows": result.changed.rows_read if result.changed else 0,
                    "days_differing": result.days_differing,
                    "reloaded_rows": sum(r.rows_read for r in result.reloaded),
                }
                figures.append(figure)
                print(f"catch-up, {case}: {figure}", flush=True)
    return figures


def bench_paging(rows: list[dict], repeats: int = 3) -> dict:
    """The first and the last 50,000-row page of the whole span, paged by offset in ``:id``
    order and by key in ``row_id`` order, through SODA 2.1 and SODA3 (median seconds of
    ``repeats`` requests, each way warmed up first: the replay server keeps one filtered and
    ordered copy of the rows); then a whole read each way."""
    from sfpd.schema import FIELD_NAMES
    from sfpd.socrata import KEY, Query, SocrataEndpoint, SocrataSource

    where, columns = SPAN.soql_where(), ",".join(FIELD_NAMES)
    figures: dict = {"rows": len(rows), "pages": {}, "whole": {}}
    with ReplayServer(None) as server:
        server.replace_corpus(rows)
        for api in ("soda2", "soda3"):
            endpoint = SocrataEndpoint(
                host="127.0.0.1", port=server.port, scheme="http", api=api, app_token="bench"
            )
            with SocrataSource(endpoint, PAGE_SIZE) as source:
                total = source.count(where)
                last = (total - 1) // PAGE_SIZE * PAGE_SIZE
                (before,) = source.query(Query(KEY, where, order=KEY, limit=1, offset=last - 1))
                ways = {
                    "offset": (
                        Query(columns, where, order=":id", limit=PAGE_SIZE),
                        Query(columns, where, order=":id", limit=PAGE_SIZE, offset=last),
                    ),
                    "key": (
                        Query(columns, f"({where}) AND {KEY} IS NOT NULL", None, KEY, PAGE_SIZE),
                        Query(
                            columns, f"({where}) AND {KEY} > {before[KEY]}", None, KEY, PAGE_SIZE
                        ),
                    ),
                }
                for way, (first_page, last_page) in ways.items():
                    source.query(first_page)  # warm: the server filters and orders once
                    for page, query in (("first", first_page), ("last", last_page)):
                        times, n = [], 0
                        for _ in range(repeats):
                            started = time.perf_counter()
                            n = len(source.query(query))
                            times.append(time.perf_counter() - started)
                        seconds = statistics.median(times)
                        figures["pages"][(api, way, page)] = {"rows": n, "seconds": seconds}
                        print(f"paging {api} {way} {page}: {n} rows, {seconds:.3f} s", flush=True)
                started = time.perf_counter()
                read = sum(len(page) for page in source.pages(where))
                figures["whole"][(api, "key")] = {
                    "rows": read,
                    "seconds": time.perf_counter() - started,
                }
                started, read = time.perf_counter(), 0
                for offset in range(0, total, PAGE_SIZE):
                    page = Query(columns, where, order=":id", limit=PAGE_SIZE, offset=offset)
                    read += len(source.query(page))
                figures["whole"][(api, "offset")] = {
                    "rows": read,
                    "seconds": time.perf_counter() - started,
                }
    return figures


def extract_section(extract: list[dict]) -> list[str]:
    """Section 1 of docs/benchmarks.md."""
    by = {(f["method"], f["n"]): f for f in extract}
    sizes = sorted({f["n"] for f in extract})
    largest, smallest = sizes[-1], by[("ours", sizes[0])]
    ours, pandas_ = by[("ours", largest)], by[("pandas", largest)]
    lines = [
        "## 1. Extract: ours vs sodapy `get_all` → pandas → `to_parquet`",
        "",
        f"Measured {dt.date.today()}.",
        "",
        "| rows | ours s | ours rows/s | ours peak RSS MB | pandas s | pandas rows/s "
        "| pandas peak RSS MB | speed ratio | RSS ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        o, p = by[("ours", n)], by[("pandas", n)]
        lines.append(
            f"| {n:,} | {o['seconds']:.1f} | {n / o['seconds']:,.0f} | {o['rss_mb']:,.0f} "
            f"| {p['seconds']:.1f} | {n / p['seconds']:,.0f} | {p['rss_mb']:,.0f} "
            f"| {p['seconds'] / o['seconds']:.2f}x | {o['rss_mb'] / p['rss_mb']:.2f} |"
        )
    return [
        *lines,
        "",
        f"At {largest:,} rows ours is {pandas_['seconds'] / ours['seconds']:.2f}x the pandas "
        f"method's rows/s with {ours['rss_mb'] / pandas_['rss_mb']:.2f} of its peak RSS; our "
        f"peak RSS grows {100 * (ours['rss_mb'] / smallest['rss_mb'] - 1):+.0f}% from "
        f"{sizes[0]:,} to {largest:,} rows (pandas: "
        f"{100 * (pandas_['rss_mb'] / by[('pandas', sizes[0])]['rss_mb'] - 1):+.0f}%).",
        "",
    ]


def merge_section(merge: dict) -> list[str]:
    """Section 2 of docs/benchmarks.md."""
    return [
        "## 2. MERGE on DuckDB",
        "",
        f"A window of {merge['window_rows']:,} rows (two months; {merge['updated']:,} updated, "
        f"{merge['inserted']:,} inserted, {merge['deleted']:,} deleted) merged into "
        f"{merge['raw_rows']:,} raw rows: **{merge['seconds']:.2f} s** (staging, checks, DELETE, "
        f"MERGE, audit, one transaction). The initial load of the {merge['raw_rows']:,} rows "
        f"took {merge['initial_seconds']:.1f} s.",
        "",
    ]


def paging_section(paging: dict) -> list[str]:
    """Section 7 of docs/benchmarks.md."""

    def rate(figure: dict) -> str:
        return f"{figure['rows'] / figure['seconds']:,.0f}"

    pages, whole = paging["pages"], paging["whole"]
    return [
        "## 7. Paging: by key against by offset (replay server)",
        "",
        f"{paging['rows']:,} rows on the replay server, pages of {PAGE_SIZE:,}; rows/s of one "
        "request (median of 3, the server's filtered and ordered rows warm), and of a whole "
        "read. *Offset*: `$order=:id` with `$offset` (SODA3: page number), what the extract "
        "did before. *Key*: `row_id > <last> ORDER BY row_id`, always the first page, what it "
        "does now. The replay server answers a key from a sorted list (an index) and an offset "
        "by slicing, so the deep-offset cost of a database (it reads and drops every row "
        "before the offset) does not show here: on Socrata the last offset page is the slow "
        "one. What this measures is that paging by key costs the client nothing.",
        "",
        "| API | paging | first page rows/s | last page rows/s | whole read rows/s |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {api} | {way} | {rate(pages[(api, way, 'first')])} "
            f"| {rate(pages[(api, way, 'last')])} | {rate(whole[(api, way)])} |"
            for api in ("soda2", "soda3")
            for way in ("offset", "key")
        ),
        "",
    ]


HISTORY = "## What was profiled and changed"  # hand-written, last in the file: kept


def with_history(old: str, new: str) -> str:
    """The new figures followed by the old file's hand-written history."""
    return new.rstrip() + "\n\n" + old[old.index(HISTORY) :] if HISTORY in old else new


def replace_section(text: str, section: list[str]) -> str:
    """``text`` with the section of the same heading replaced (or added before Targets)."""
    heading = section[0]
    lines = text.split("\n")
    if heading in lines:
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
    else:
        start = end = lines.index("## Targets")
    return "\n".join([*lines[:start], *section, *lines[end:]])


PARSE = """
import sys, time
from tests.dags.dagbag import dagbag_class
DagBag = dagbag_class()
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(seconds)
"""

BARE_DAG = """
import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["bench"])
def bare():
    @task
    def one():
        return 1
    one()

bare()
"""


def bench_parse(workdir: Path, repeats: int = 3) -> dict[str, float]:
    """Median seconds to fill a DagBag from each file, in a fresh interpreter (Airflow imported
    before the clock starts)."""
    from sfpd_dev.local import airflow_env

    bare = workdir / "bare_dag.py"
    bare.write_text(BARE_DAG)
    files = {"bare one-task DAG": bare} | {
        path.name: path for path in sorted((PROJECT_ROOT / "dags").glob("*.py"))
    }
    env = {**airflow_env(), "PYTHONPATH": _pythonpath()}
    figures = {}
    for name, path in files.items():
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", PARSE, str(path)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()[-1]
            )
            for _ in range(repeats)
        ]
        figures[name] = statistics.median(times)
        print(f"parse {name}: {figures[name]:.2f} s", flush=True)
    return figures


class TaskMemory(threading.Thread):
    """Peak RSS (VmHWM) of every Airflow task process, sampled from /proc: a task process is
    titled ``airflow worker -- <task instance id>``. VmHWM only grows, so a sample late in a
    task's life holds its peak so far (a peak in its last 50 ms may be missed)."""

    TITLE = b"airflow worker -- "

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks_mb: dict[str, float] = {}  # task instance id -> MB
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            for proc in Path("/proc").iterdir():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    if not cmdline.startswith(self.TITLE):
                        continue
                    ti_id = cmdline[len(self.TITLE) :].split(b"\0")[0].decode().strip()
                    status = (proc / "status").read_text()
                except OSError:
                    continue  # gone meanwhile
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        mb = int(line.split()[1]) / 1024
                        self.peaks_mb[ti_id] = max(self.peaks_mb.get(ti_id, 0), mb)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _airflow_env(home: Path, server: ReplayServer, **settings: str) -> dict:
    from sfpd_dev.local import airflow_env

    return {
        **airflow_env(PROJECT_ROOT, home),
        "SFPD_DUCKDB_PATH": str(home / "state" / "sfpd.duckdb"),
        "SFPD_LAKE_URI": (home / "state" / "lake").as_uri(),
        "AIRFLOW_CONN_SOCRATA_DEFAULT": server.connection_uri_json(),
        "SFPD_TASK_RETRIES": "0",  # a failure shows at once; none is expected
        **settings,
    }


DAILY_LABELS = {
    "dags test": "`airflow dags test`",
    "watcher": "scheduler, watcher (one `dbt build`; the DuckDB default)",
    "local": "scheduler, a task per dbt node, one at a time (`SFPD_DBT_EXECUTION_MODE=local`)",
}


def history_span() -> Window:
    """2018-01-01 to today (San Francisco), what a whole-history backfill reads."""
    return Window(SPAN.start, dt.datetime.now(SF_TZ).date() + dt.timedelta(days=1))


def _run_seconds(run: dict) -> float:
    start, end = (dt.datetime.fromisoformat(run[key]) for key in ("start_date", "end_date"))
    return (end - start).total_seconds()


def bench_daily_dag(workdir: Path) -> dict:
    """The daily DAG for 2019-01-01 (the bundled rows: 11,887 in its window) three ways:
    `airflow dags test` (one process, tasks in turn), and under a real scheduler, triggered
    through the REST API twice (the second run finds dbt's parse cache warm), with the watcher
    (the DuckDB default) and with a task per dbt node (SFPD_DBT_EXECUTION_MODE=local)."""
    from sfpd_dev.airflow_local import LocalAirflow
    from sfpd_dev.local import DAG_ID, anchor_for, create_pools

    run_dates = ("2019-01-01", "2019-01-02")
    figures: dict = {}
    airflow = str(Path(sys.executable).with_name("airflow"))
    with ReplayServer(BUNDLED_ROWS) as server:
        home = workdir / "dags-test"
        env = _airflow_env(home, server)
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        create_pools(env)
        figures["dags test"] = []
        for day in run_dates:
            started = time.perf_counter()
            subprocess.run(
                [airflow, "dags", "test", DAG_ID, anchor_for(day).isoformat()],
                env=env,
                check=True,
                capture_output=True,
            )
            figures["dags test"].append(time.perf_counter() - started)
        print(f"daily DAG, airflow dags test: {figures['dags test']} s", flush=True)
        for mode in ("watcher", "local"):
            home = workdir / f"scheduler-{mode}"
            env = _airflow_env(home, server, SFPD_DBT_EXECUTION_MODE=mode)
            with LocalAirflow(home, env) as running:
                running.wait_for_dags((DAG_ID,))
                runs = [
                    running.api.trigger(DAG_ID, anchor_for(day).isoformat()) for day in run_dates
                ]
                running.api.unpause(DAG_ID)
                finished = [running.api.wait_for_run(DAG_ID, run, 900) for run in runs]
            assert all(run["state"] == "success" for run in finished), finished
            figures[mode] = [_run_seconds(run) for run in finished]
            print(f"daily DAG under the scheduler, {mode}: {figures[mode]} s", flush=True)
    return {"rows": 11_887, "seconds": figures}


def bench_history_backfill(rows: list[dict], workdir: Path) -> dict:
    """The backfill DAG over the whole history (2018-01-01 to today) in month chunks, under a
    real scheduler, from a replay server holding ``rows`` (its replies fetched once before, so
    the figures are the pipeline's work): wall time, and the peak RSS of every task process."""
    import duckdb

    from sfpd.backfill import plan_backfill
    from sfpd.socrata import SocrataEndpoint, SocrataSource
    from sfpd_dev.airflow_local import LocalAirflow

    dag_id = "sfpd_incidents_backfill"
    today = dt.datetime.now(SF_TZ).date()
    chunks = plan_backfill("2018-01-01", None, "month", today)
    with ReplayServer(BUNDLED_ROWS, cache_replies=True) as server:
        server.replace_corpus(rows)
        endpoint = SocrataEndpoint(host="127.0.0.1", port=server.port, scheme="http")
        with SocrataSource(endpoint, PAGE_SIZE) as source:  # the extracts' very requests
            for window in chunks:
                source.count(window.soql_where())
                for _ in source.pages(window.soql_where()):
                    pass
        print(f"backfill: {len(rows):,} rows served, {len(chunks)} month chunks", flush=True)
        home = workdir / "scheduler-backfill"
        with LocalAirflow(home, _airflow_env(home, server)) as running:
            running.wait_for_dags((dag_id,))
            memory = TaskMemory()
            memory.start()
            began = time.perf_counter()
            run_id = running.api.trigger(
                dag_id, None, {"start_date": "2018-01-01", "end_date": None, "chunk": "month"}
            )
            running.api.unpause(dag_id)
            run = running.api.wait_for_run(dag_id, run_id, 3600)
            wall = time.perf_counter() - began
            memory.stop()
            tis = running.api.task_instances(dag_id, run_id)
            task_ids = {ti["id"]: ti["task_id"] for ti in tis}
        with duckdb.connect(str(home / "state" / "sfpd.duckdb"), read_only=True) as con:
            loaded = con.execute("SELECT count(*) FROM sfpd_raw.incidents").fetchone()[0]
    assert run["state"] == "success", run
    by_task: dict[str, float] = {}
    for ti_id, mb in memory.peaks_mb.items():
        if ti_id in task_ids:  # a process of this run's tasks
            by_task[task_ids[ti_id]] = max(by_task.get(task_ids[ti_id], 0), mb)
    top = max(by_task.items(), key=lambda item: item[1])
    print(f"backfill: {wall:.0f} s, {loaded:,} rows loaded; largest task RSS {top}", flush=True)
    return {
        "rows": len(rows),
        "loaded": loaded,
        "chunks": len(chunks),
        "wall": wall,
        "run_seconds": _run_seconds(run),
        "rss_mb": by_task,
    }


# --------------------------------------------------------------------------- report


def machine() -> str:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    memory = int(meminfo[1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB memory, {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )


def catch_up_section(catch_ups: list[dict], raw_rows: int) -> list[str]:
    """Section 6 of docs/benchmarks.md."""
    return [
        "## 6. Catch-up outside the window (DuckDB)",
        "",
        f"`sfpd.pipeline.catch_up` on a raw table of {raw_rows:,} rows (one loaded "
        "window, all its days counted) against a replay server holding the same rows, replies "
        "not cached: the source's latest `:updated_at`, the changed rows paged into the lake "
        "and merged, one grouped day-count request against the table's, and the differing days "
        "loaded again. Every case ends with the table holding exactly the server's rows.",
        "",
        "| upstream since the last catch-up | seconds | of which waiting for the server "
        "| requests | changed rows read | days differing | rows re-read for them |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {c['case']} | {c['seconds']:.1f} | {c['server_seconds']:.1f} | {c['requests']} "
            f"| {c['changed_rows']:,} | {c['days_differing']} | {c['reloaded_rows']:,} |"
            for c in catch_ups
        ),
        "",
    ]


def extract_targets(extract: list[dict], merge: dict) -> list[tuple[str, str, bool]]:
    """The targets sections 1 and 2 measure: (target, measured, met)."""
    by = {(f["method"], f["n"]): f for f in extract}
    sizes = sorted({f["n"] for f in extract})
    largest, smallest = sizes[-1], by[("ours", sizes[0])]
    ours, pandas_ = by[("ours", largest)], by[("pandas", largest)]
    speed = pandas_["seconds"] / ours["seconds"]
    rss_share = ours["rss_mb"] / pandas_["rss_mb"]
    growth = ours["rss_mb"] / smallest["rss_mb"] - 1
    return [
        (f"extract ≥ 3.5x pandas rows/s at {largest:,}", f"{speed:.2f}x", speed >= 3.5),
        ("extract peak RSS ≤ 450 MB", f"{ours['rss_mb']:,.0f} MB", ours["rss_mb"] <= 450),
        ("extract peak RSS ≤ 1/5 of pandas", f"{rss_share:.2f}", rss_share <= 0.2),
        (
            f"extract peak RSS within +20% from {sizes[0]:,} to {largest:,}",
            f"{growth:+.0%}",
            growth <= 0.2,
        ),
        ("MERGE of ~25k into 1M < 2 s", f"{merge['seconds']:.2f} s", merge["seconds"] < 2),
    ]


def target_row(target: str, measured: str, met: bool) -> str:
    return f"| {target} | {measured} | {'yes' if met else '**no**'} |"


def replace_targets(text: str, targets: list[tuple[str, str, bool]]) -> str:
    """``text`` with these targets' rows of the Targets table replaced (or added first), the
    other rows kept."""
    lines = text.split("\n")
    header = lines.index("|---|---:|:---:|", lines.index("## Targets"))
    end = next(i for i in range(header + 1, len(lines)) if not lines[i].startswith("|"))
    names = {f"| {target} |" for target, _, _ in targets}
    kept = [line for line in lines[header + 1 : end] if not any(map(line.startswith, names))]
    rows = [target_row(*target) for target in targets]
    return "\n".join([*lines[: header + 1], *rows, *kept, *lines[end:]])


def benchmarks_markdown(
    extract: list[dict],
    merge: dict,
    parse: dict,
    daily: dict,
    history: dict,
    catch_ups: list[dict],
    paging: dict,
    command: str,
) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.date.today()} on {machine()}, with:",
        "",
        "```bash",
        command,
        "```",
        "",
        "Synthetic rows: real bundled rows moved to new reports and dates (same fields, value "
        "mixes, omitted nulls; ~20% of reports with two offences), served by the replay "
        "server on 127.0.0.1 with its replies cached (each method's pages fetched once "
        "before the measured runs), so the figures are the clients' work. Each method runs in "
        "its own subprocess, twice, the faster run reported; peak RSS is that process's.",
        "",
    ]
    lines += extract_section(extract)
    lines += merge_section(merge)
    lines += [
        "## 3. DAG parse time (DagBag of one file, median of 3, Airflow imported first)",
        "",
        "| file | seconds | ratio to bare |",
        "|---|---:|---:|",
    ]
    bare = parse["bare one-task DAG"]
    lines += [
        f"| {name} | {seconds:.2f} | {seconds / bare:.1f}x |" for name, seconds in parse.items()
    ]
    lines += [
        "",
        "## 4. Daily DAG end to end",
        "",
        f"The run for 2019-01-01 on the embedded default (local lake, DuckDB, dbt-duckdb via "
        f"Cosmos): window [2018-11-01, 2019-01-01) of the bundled rows, {daily['rows']:,} rows. "
        "`airflow dags test`: wall time of the command (one process, tasks in turn), twice. Under "
        "the scheduler (`make airflow`'s four components, LocalExecutor, parallelism 4): two "
        "runs triggered through the REST API, each from its start to its end as Airflow "
        "records them; the second finds dbt's partial-parse cache warm.",
        "",
        "| how | run 1 s | run 2 s |",
        "|---|---:|---:|",
        *(
            f"| {label} | " + " | ".join(f"{x:.1f}" for x in daily["seconds"][key]) + " |"
            for key, label in DAILY_LABELS.items()
        ),
        "",
        "## 5. The whole history under the scheduler",
        "",
        f"`sfpd_incidents_backfill` from 2018-01-01 to today in month chunks "
        f"({history['chunks']} chunks, {history['rows']:,} synthetic rows served, "
        f"{history['loaded']:,} loaded), dbt built once after them, then the report: "
        f"**{history['wall']:.0f} s** from the trigger to the run's success "
        f"(the run itself {history['run_seconds']:.0f} s). Peak RSS (VmHWM, sampled every 50 ms) "
        "of each task's process, the largest per task:",
        "",
        "| task | peak RSS MB |",
        "|---|---:|",
        *(
            f"| {task} | {mb:,.0f} |"
            for task, mb in sorted(history["rss_mb"].items(), key=lambda item: -item[1])[:8]
        ),
        "",
        *catch_up_section(catch_ups, merge["raw_rows"]),
        *paging_section(paging),
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
    ]
    slowest_parse = max(v for k, v in parse.items() if k != "bare one-task DAG")
    scheduled = max(daily["seconds"]["watcher"])
    peak_task, peak_mb = max(history["rss_mb"].items(), key=lambda item: item[1])
    for target, measured, met in [
        *extract_targets(extract, merge),
        ("each DAG file parses in < 1 s", f"{slowest_parse:.2f} s", slowest_parse < 1),
        ("daily DAG under the scheduler ≤ 60 s", f"{scheduled:.1f} s", scheduled <= 60),
        ("whole-history backfill ≤ 5 min", f"{history['wall']:.0f} s", history["wall"] <= 300),
        ("peak RSS of any task ≤ 1 GB", f"{peak_mb:,.0f} MB ({peak_task})", peak_mb <= 1024),
    ]:
        lines.append(target_row(target, measured, met))
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="100000,300000", help="smaller sizes, comma-separated")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--only", choices=["paging", "extract"], help="measure sections alone, rewrite them"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](args.port, args.out)
        print(json.dumps({**result, "rss_mb": _peak_rss_mb()}))
        return 0

    if args.only == "paging":
        section = paging_section(bench_paging(synthetic_rows(args.rows)))
        args.out.write_text(replace_section(args.out.read_text(), section))
        print(f"\nsection 7 written to {args.out}")
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.rows})
    if args.only == "extract":  # sections 1 and 2 (the MERGE loads the extract's 1M rows)
        with tempfile.TemporaryDirectory(prefix="sfpd-bench-") as tmp:
            extract = bench_extract(sizes, Path(tmp))
            merge = bench_merge(Path(tmp) / f"ours-{args.rows}", Path(tmp))
        text = args.out.read_text()
        for section in (extract_section(extract), merge_section(merge)):
            text = replace_section(text, section)
        args.out.write_text(replace_targets(text, extract_targets(extract, merge)))
        print(f"\nsections 1 and 2 and their targets written to {args.out}")
        return 0
    command = f"make bench  # python -m sfpd_dev.bench --rows {args.rows} --sizes {args.sizes}"
    with tempfile.TemporaryDirectory(prefix="sfpd-bench-") as tmp:
        workdir = Path(tmp)
        extract = bench_extract(sizes, workdir)
        merge = bench_merge(workdir / f"ours-{args.rows}", workdir)
        parse = bench_parse(workdir)
        daily = bench_daily_dag(workdir)
        rows = synthetic_rows(args.rows)
        catch_ups = bench_catch_up(workdir / f"ours-{args.rows}", workdir, rows)
        paging = bench_paging(rows)
        history = bench_history_backfill(synthetic_rows(args.rows, span=history_span()), workdir)
    text = benchmarks_markdown(extract, merge, parse, daily, history, catch_ups, paging, command)
    args.out.write_text(with_history(args.out.read_text() if args.out.exists() else "", text))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
