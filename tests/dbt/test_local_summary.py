"""`make run`'s closing summary (sfpd_dev.local.print_summary) on the dbt build of every bundled
row: the DuckDB file, the window's reports and offences per police district as the bundled rows
count them, their total, and the report's address. Here, not in tests/dev, because it reads the
build the dbt tests share."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from sfpd.config import Settings
from sfpd.window import Window
from sfpd_dev.local import print_summary
from tests.conftest import rows_of

WINDOW = Window(dt.date(2018, 11, 1), dt.date(2019, 1, 1))  # `SFPD_SOURCE=replay make run`'s


def test_the_summary_counts_the_windows_reports_and_offences_per_district(built, capsys):
    settings = Settings.from_env({**built, "SFPD_LAKE_URI": "file:///srv/lake"})
    print_summary(settings, WINDOW)
    printed = capsys.readouterr().out.splitlines()

    reports, offences = defaultdict(set), defaultdict(int)
    for row in rows_of(WINDOW):
        reports[row.get("police_district")].add(row["incident_id"])
        offences[row.get("police_district")] += 1
    expected = sorted(
        ((len(reports[d]), offences[d], d) for d in reports), key=lambda r: (-r[0], r[2])
    )
    table = printed[printed.index("  police_district   reports  offences") + 1 :]
    lines = [line.split() for line in table[: len(expected) + 1]]
    assert [(" ".join(w[:-2]), int(w[-2]), int(w[-1])) for w in lines[:-1]] == [
        (district, n, o) for n, o, district in expected
    ]
    assert lines[-1] == ["total", str(sum(map(len, reports.values()))), str(sum(offences.values()))]
    assert printed[1] == f"DuckDB warehouse: {Path(built['SFPD_DUCKDB_PATH'])}"
    assert printed[2] == "Reports by police district, incidents in [2018-11-01, 2019-01-01):"
    assert printed[-1] == (
        "Report (open it in a browser): "
        "file:///srv/lake/wg3w-h783/reports/sfpd_report_2018-11-01_2019-01-01.html"
    )
