"""One self-contained HTML report of the marts: heatmaps, hotspots, trends, resolution rates.

Plotly figures with plotly.js embedded once in the file (no CDN, no map tiles), so it opens
offline. The data comes from the marts through ``sql/report/*.sql``; :func:`report_data` is what
the charts plot (and what the tests check), :func:`render_report` only draws it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from sfpd.warehouse import Warehouse
from sfpd.window import Window

QUERIES = (
    "neighborhood_by_day",
    "day_by_hour",
    "top_hotspots",
    "emerging_hotspots",
    "daily_trend",
    "monthly_trend",
    "resolution_rates",
    "freshness",
    "load_bytes",
)
TOP = 15
GROUP_COLOURS = {"violent": "#c0392b", "property": "#2874a6", "drug": "#7d3c98", "other": "#7f8c8d"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class ReportData:
    frames: dict[str, pd.DataFrame]

    def __getattr__(self, name: str) -> pd.DataFrame:
        try:
            return self.frames[name]
        except KeyError:
            raise AttributeError(name) from None


def report_data(warehouse: Warehouse) -> ReportData:
    """The marts' figures the report plots, one DataFrame per query."""
    return ReportData(
        {name: warehouse.query(f"report/{name}.sql", limit=TOP).to_pandas() for name in QUERIES}
    )


def _heatmap(frame: pd.DataFrame, x: str, y: str, title: str) -> go.Figure:
    grid = frame.pivot_table(index=y, columns=x, values="reports", aggfunc="sum", fill_value=0)
    if x == "day_of_week":
        grid = grid.reindex(columns=DAYS, fill_value=0)
    if y == "day_of_week":
        grid = grid.reindex(index=DAYS, fill_value=0)
    figure = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=list(grid.columns),
            y=list(grid.index),
            colorscale="Reds",
            colorbar={"title": "reports"},
        )
    )
    figure.update_layout(
        title=title, height=max(360, 18 * len(grid.index) + 120), yaxis={"autorange": "reversed"}
    )  # first row on top
    return figure


def daily_series(trend: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each category group's daily rows on every day from the first to the last date, days
    without data left empty (NaN), so a line breaks over a gap instead of bridging it."""
    if trend.empty:
        return {}
    dates = pd.to_datetime(trend["incident_date"])
    days = pd.date_range(dates.min(), dates.max(), freq="D", name="incident_date")
    return {
        group: rows.drop(columns="incident_date").set_index(dates[rows.index]).reindex(days)
        for group, rows in trend.groupby("category_group")
    }


def _daily_figure(daily_trend: pd.DataFrame) -> go.Figure:
    daily = go.Figure()
    for group, rows in daily_series(daily_trend).items():
        colour = GROUP_COLOURS.get(group)
        for column, label, style in (
            ("reports", "daily", {"line": {"width": 1, "color": colour}, "opacity": 0.35}),
            ("rolling_28d_reports", "rolling 28 days",
             {"line": {"width": 2.5, "color": colour}, "yaxis": "y2"}),
        ):  # fmt: skip
            daily.add_scatter(
                x=rows.index, y=rows[column], name=f"{group} ({label})", mode="lines", **style
            )
    daily.update_layout(
        title="Reports per day by category group, and the rolling 28-day count",
        yaxis={"title": "reports per day"},
        yaxis2={"title": "reports in 28 days", "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": -0.15},  # below: the right axis needs the margin
        height=520,
    )
    return daily


def _monthly_figure(monthly_trend: pd.DataFrame) -> go.Figure:
    monthly = go.Figure()
    for group, rows in monthly_trend.groupby("category_group"):
        monthly.add_bar(
            x=rows["month_start_date"],
            y=rows["reports"],
            name=group,
            marker_color=GROUP_COLOURS.get(group),
        )
    monthly.update_layout(title="Reports per month by category group", barmode="stack")
    return monthly


def _resolution_figure(resolution_rates: pd.DataFrame) -> go.Figure:
    rates = resolution_rates.iloc[::-1]
    resolution = go.Figure()
    for column, name in (("cited_or_arrested_rate", "cited or arrested"),
                         ("cleared_rate", "cleared (incl. exceptional)")):  # fmt: skip
        resolution.add_bar(y=rates["category"], x=rates[column], orientation="h", name=name)
    resolution.update_layout(
        title=f"Resolution rates of the {TOP} largest categories",
        xaxis={"tickformat": ".0%"},
        height=560,
    )
    return resolution


def _figures(data: ReportData) -> dict[str, go.Figure]:
    return {
        "neighborhood_by_day": _heatmap(
            data.neighborhood_by_day,
            "day_of_week",
            "analysis_neighborhood",
            "Reports by neighborhood and day of week",
        ),
        "day_by_hour": _heatmap(
            data.day_by_hour,
            "incident_hour",
            "day_of_week",
            "Reports by day of week and hour (precise times)",
        ),
        "daily_trend": _daily_figure(data.daily_trend),
        "monthly_trend": _monthly_figure(data.monthly_trend),
        "resolution_rates": _resolution_figure(data.resolution_rates),
    }


def render_report(
    data: ReportData,
    window: Window,
    generated_at: dt.datetime,
    stale_since: dt.datetime | None = None,
) -> str:
    """The report as one HTML document; ``stale_since``: when the source last published, if
    that is longer ago than the staleness threshold (a banner at the top says so)."""
    freshness = data.freshness.iloc[0].to_dict()
    billed = data.load_bytes.iloc[0]
    loads = None if pd.isna(billed["bytes_billed"]) else billed.to_dict()
    charts = {
        name: figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}")
        for name, figure in _figures(data).items()
    }
    return _TEMPLATES.get_template("report.html.j2").render(
        window=window,
        freshness=freshness,
        loads=loads,
        generated_at=generated_at,
        stale_since=stale_since,
        hotspots=data.top_hotspots.to_dict("records"),
        emerging=data.emerging_hotspots.to_dict("records"),
        charts=charts,
        plotlyjs=get_plotlyjs(),
    )


def report_name(window: Window) -> str:
    return f"sfpd_report_{window.label}.html"
