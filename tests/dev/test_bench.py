"""The benchmark's own parts work (its figures are printed by `make bench`, never asserted)."""

from __future__ import annotations

import collections

import requests

from sfpd.normalise import normalise_page
from sfpd_dev.bench import SPAN, bench_extract, replace_targets, synthetic_rows
from sfpd_dev.replay import ReplayServer, rows_in
from tests.conftest import FIXTURES


def test_synthetic_rows_are_shaped_like_real_ones():
    rows = synthetic_rows(5000)
    assert len(rows) == 5000
    assert len({row[":id"] for row in rows}) == len({row["row_id"] for row in rows}) == 5000
    result = normalise_page([{k: v for k, v in row.items() if k != ":id"} for row in rows])
    assert result.rejects == [] and result.table.num_rows == 5000
    # several offences per report, omitted nulls (rows without coordinates), all inside SPAN
    per_report = collections.Counter(row["incident_id"] for row in rows)
    assert 0.1 < sum(1 for n in per_report.values() if n > 1) / len(per_report) < 0.3
    assert any("latitude" not in row for row in rows)
    assert len(rows_in(rows, SPAN.soql_where())) == 5000


def test_cached_replies_serve_the_same_bytes_again():
    with ReplayServer(FIXTURES, cache_replies=True) as server:
        server.replace_corpus(synthetic_rows(1000))
        url = f"http://127.0.0.1:{server.port}/resource/wg3w-h783.json?$limit=10&$order=:id"
        first, second = requests.get(url, timeout=10), requests.get(url, timeout=10)
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and len(first.json()) == 10
        assert len(server.requests) == 2


def test_both_extract_methods_read_every_row(tmp_path):
    figures = bench_extract([3000], tmp_path)
    assert {(f["method"], f["rows"]) for f in figures} == {("ours", 3000), ("pandas", 3000)}
    assert all(f["seconds"] > 0 and f["rss_mb"] > 50 for f in figures)
    assert (tmp_path / "pandas-3000" / "incidents.parquet").is_file()


def test_the_extract_run_rewrites_its_own_targets_and_keeps_the_others():
    text = "\n".join(
        ["## Targets", "", "| target | measured | met |", "|---|---:|:---:|",
         "| extract peak RSS ≤ 450 MB | 461 MB | **no** |", "| DAG parses < 1 s | 0.3 s | yes |",
         "", "## What was profiled and changed"]
    )  # fmt: skip
    updated = replace_targets(text, [("extract peak RSS ≤ 450 MB", "403 MB", True)])
    assert "| extract peak RSS ≤ 450 MB | 403 MB | yes |" in updated
    assert "461 MB" not in updated
    assert "| DAG parses < 1 s | 0.3 s | yes |" in updated
    assert updated.endswith("\n\n## What was profiled and changed")
