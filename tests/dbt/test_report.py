"""The HTML report from the marts built on the bundled real rows: the data it plots adds up,
and headless Chromium opens the file offline with no console errors and every chart drawn."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from sfpd.report import DAYS, TOP, ReportData, daily_series, render_report, report_data
from sfpd.warehouse import DuckDBWarehouse
from sfpd.window import Window
from tests.browser import dump_dom, screenshot
from tests.conftest import NEIGHBORHOODS, bundled_rows, query, reports_of

REPORTS, OFFENCES = reports_of(bundled_rows()), len(bundled_rows())  # every bundled row
WINDOW = Window(dt.date(2019, 9, 1), dt.date(2019, 11, 1))
CHARTS = ("neighborhood_by_day", "day_by_hour", "daily_trend", "monthly_trend", "resolution_rates")


@pytest.fixture(scope="module")
def data(built):
    return report_data(DuckDBWarehouse(Path(built["SFPD_DUCKDB_PATH"])))


@pytest.fixture(scope="module")
def report_file(data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(data, WINDOW, dt.datetime(2026, 11, 23, 12, 0)))
    return path


def test_heatmaps_cover_every_neighborhood_day_and_hour(data, built):
    by_day = data.neighborhood_by_day
    assert len(by_day) == NEIGHBORHOODS * 7 and set(by_day["day_of_week"]) == set(DAYS)
    assert len(data.day_by_hour) == 7 * 24
    assert set(data.day_by_hour["incident_hour"]) == set(range(24))
    # every report with a neighborhood and no sensitive offence is in the first heatmap once
    located = query(
        built,
        "SELECT count(*) FROM sfpd_marts.fct_incident_reports "
        "WHERE analysis_neighborhood IS NOT NULL AND NOT has_sensitive_offence",
    )
    assert by_day["reports"].sum() == located[0][0]


def test_trends_and_resolution_add_up(data):
    freshness = data.freshness.to_dict("records")[0]
    assert (freshness["reports"], freshness["offences"]) == (REPORTS, OFFENCES)
    assert str(freshness["first_incident_date"]) == "2018-01-01"
    assert freshness["last_loaded_at"] is not None
    assert data.daily_trend["reports"].sum() == REPORTS
    assert data.monthly_trend["reports"].sum() == REPORTS
    rates = data.resolution_rates
    assert len(rates) == TOP and rates["reports"].is_monotonic_decreasing
    assert ((rates["cited_or_arrested_rate"] >= 0) & (rates["cleared_rate"] <= 1)).all()
    assert (rates["cleared_rate"] >= rates["cited_or_arrested_rate"]).all()


def test_daily_lines_cover_every_day_and_break_where_a_group_has_none(data):
    trend = data.daily_trend
    series = daily_series(trend)
    assert set(series) == set(trend["category_group"])
    for group, rows in series.items():
        assert (rows.index.to_series().diff().dropna() == pd.Timedelta(days=1)).all()
        present = set(pd.to_datetime(trend.loc[trend["category_group"] == group, "incident_date"]))
        assert set(rows.index[rows["reports"].notna()]) == present
        assert rows["reports"].sum() == trend.loc[trend["category_group"] == group, "reports"].sum()
    # the bundled rows leave months almost empty (2019-02 to 2019-06): there are gaps to break
    assert series["property"]["reports"].isna().sum() > 60


def test_top_hotspots_have_the_minimum_count_and_the_highest_scores(data, built):
    hotspots = data.top_hotspots
    assert len(hotspots) == TOP and hotspots["hotspot_score"].is_monotonic_decreasing
    assert (hotspots["report_count"] >= 10).all()  # no quiet cell of 2-7 reports
    best = query(
        built,
        "SELECT max(hotspot_score) FROM sfpd_marts.rpt_hotspots_by_neighborhood "
        "WHERE report_count >= 10",
    )
    assert hotspots["hotspot_score"][0] == pytest.approx(best[0][0])
    assert not hotspots["includes_sensitive_categories"].any()


def test_emerging_hotspots_are_rising_cells_with_the_minimum_count(data):
    emerging = data.emerging_hotspots
    assert len(emerging) > 0 and emerging["hotspot_score"].is_monotonic_decreasing
    assert (emerging["recent_report_count"] >= 10).all()
    assert (emerging["recent_report_count"] > emerging["expected_report_count"]).all()


def test_the_report_says_how_to_read_the_hotspots_and_what_it_leaves_out(report_file):
    html = report_file.read_text()
    assert 'id="how-to-read-hotspots"' in html and 'id="how-to-read-emerging"' in html
    assert "are left out of both tables" in html and "include_sensitive_categories" in html


class _References(HTMLParser):
    """Every attribute of a page that makes a browser load something, and every CSS url()."""

    ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "action", "background"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found += [f"<{tag} {name}={value}>" for name, value in attrs
                       if name in self.ATTRIBUTES and value]  # fmt: skip
        self.found += re.findall(r"url\([^)]*\)", dict(attrs).get("style") or "")

    def handle_data(self, data):
        if self.lasttag == "style":
            self.found += re.findall(r"url\([^)]*\)", data)


def loaded_from_elsewhere(html: str) -> list[str]:
    """What a page would load from the network or another file (not an anchor of its own,
    not a data: URI)."""
    parser = _References()
    parser.feed(html)
    inline = re.compile(r"""^(<[^=]+=|url\(['"]?)(#|data:)""")
    return [found for found in parser.found if not inline.match(found)]


def test_report_is_one_offline_file(report_file):
    html = report_file.read_text()
    assert "2019-09-01" in html and "2019-11-01" in html and f"{REPORTS:,} reports" in html
    assert loaded_from_elsewhere(html) == []  # no CDN, no stylesheet, no image: plotly.js inline
    assert "plotly.js v" in html
    for chart in CHARTS:
        assert f'id="chart-{chart}"' in html
    # what the check finds in a page that is not one file
    elsewhere = ('<script src="https://cdn.plot.ly/plotly.min.js"></script><link rel=stylesheet '
                 'href="report.css"><div style="background: url(map.png)"></div><img src=x.png>'
                 '<a href="#top"></a><img src="data:image/png;base64,AA==">')  # fmt: skip
    assert len(loaded_from_elsewhere(elsewhere)) == 4


@pytest.mark.slow
def test_chromium_opens_the_report_without_errors(report_file, tmp_path):
    dom = dump_dom(report_file.as_uri(), tmp_path / "profile")
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, "\n".join(console)
    # plotly drew each chart: its container and an SVG inside every chart div
    assert dom.stdout.count('class="plot-container plotly"') == len(CHARTS), dom.stderr[-2000:]
    assert dom.stdout.count('class="main-svg"') >= len(CHARTS)
    path = screenshot(report_file.as_uri(), tmp_path / "report.png", tmp_path / "profile")
    assert path.stat().st_size > 50_000
    print(f"screenshot: {path}")


def test_a_report_of_empty_marts_says_so(built, tmp_path):
    # a first run whose window has no rows yet (e.g. a fresh deployment on the replay data)
    path = tmp_path / "empty.duckdb"
    shutil.copy(built["SFPD_DUCKDB_PATH"], path)
    warehouse = DuckDBWarehouse(path)
    with warehouse.connect() as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'sfpd_marts' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            con.execute(f"DELETE FROM sfpd_marts.{table}")
    html = render_report(report_data(warehouse), WINDOW, dt.datetime(2026, 11, 23, 12, 0))
    assert "The marts hold 0 reports (0 offences)" in html
    assert "No reports in the marts yet" in html
    for chart in CHARTS:
        assert f'id="chart-{chart}"' in html


def test_a_stale_source_is_said_at_the_top_and_only_then(data):
    quiet = render_report(data, WINDOW, dt.datetime(2026, 11, 23, 12, 0))
    assert 'id="stale"' not in quiet
    stale = render_report(
        data, WINDOW, dt.datetime(2026, 11, 23, 12, 0), stale_since=dt.datetime(2026, 11, 18, 9, 5)
    )
    banner = stale.index('id="stale"')
    assert banner < stale.index("<h1>")
    assert "DataSF has not published since 2026-11-18 09:05 UTC" in stale[banner:]


def test_what_bigquery_billed_the_runs_loads_is_said_and_only_there(data):
    assert 'id="bytes-billed"' not in render_report(data, WINDOW, dt.datetime(2026, 11, 23))
    billed = pd.DataFrame({"bytes_billed": [151_234_567], "bytes_processed": [212_000_000],
                           "loads": [2]})  # fmt: skip  # load_audit's sums on BigQuery
    on_bigquery = ReportData({**data.frames, "load_bytes": billed})
    html = render_report(on_bigquery, WINDOW, dt.datetime(2026, 11, 23))
    assert "BigQuery billed this run's 2 load(s) 151.2 MB (212.0 MB read)." in html
