"""The PDF's three pictures, as reportlab drawings: hashrate against the quota, daily production, alerts.

Gaps stay gaps: the hashrate line is drawn in separate pieces wherever an hour has no data, so a week without
data reads as a hole, not as a straight line across it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors

from exporters.reports.compute import GroupCharts
from exporters.reports.formats.fonts import regular

WIDTH, HEIGHT = 480, 170
HASH_COLOUR = colors.HexColor("#1f77b4")
QUOTA_COLOUR = colors.HexColor("#d62728")
BAR_COLOUR = colors.HexColor("#2ca02c")
ALERT_COLOUR = colors.HexColor("#ff7f0e")
GRID = colors.HexColor("#dddddd")
_UNITS = ((1e18, "EH/s"), (1e15, "PH/s"), (1e12, "TH/s"), (1e9, "GH/s"), (1e6, "MH/s"), (1e3, "kH/s"), (1.0, "H/s"))


def _box(x: float, y: float, width: float, height: float, colour: colors.Color) -> Rect:
    box = Rect(x, y, width, height)
    box.fillColor = colour
    box.strokeColor = None
    return box


def hashrate_unit(peak: float) -> tuple[float, str]:
    """The largest unit in which the peak is at least 1 (PH/s for a petahash farm)."""
    for scale, name in _UNITS:
        if peak >= scale:
            return scale, name
    return 1.0, "H/s"


def _title(drawing: Drawing, text: str) -> None:
    drawing.add(String(0, HEIGHT - 10, text, fontName=regular(), fontSize=10))


def _day_of_month(moment: datetime, charts: GroupCharts) -> float:
    """Position on the x axis: days since the local start of the month (1.0 = one day in)."""
    return (moment - charts.window.start).total_seconds() / 86_400


def _pieces(charts: GroupCharts, pick: int, scale: float) -> list[list[tuple[float, float]]]:
    """Contiguous runs of hourly values (a missing hour starts a new run)."""
    runs: list[list[tuple[float, float]]] = []
    previous: datetime | None = None
    for hour, hs, quota in charts.hourly:
        value = (hs, quota)[pick]
        if value is None:
            previous = None
            continue
        if previous is None or hour - previous > timedelta(hours=1):
            runs.append([])
        runs[-1].append((_day_of_month(hour, charts), value / scale))
        previous = hour
    return runs


def hashrate_chart(charts: GroupCharts) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    values = [v for _, hs, q in charts.hourly for v in (hs, q) if v is not None]
    scale, unit = hashrate_unit(max(values) if values else 1.0)
    _title(drawing, f"Hashrate (hourly mean, {unit}) against the quota")
    days = charts.window.seconds / 86_400
    hash_runs, quota_runs = _pieces(charts, 0, scale), _pieces(charts, 1, scale)
    lines = hash_runs + quota_runs
    if not lines:
        drawing.add(
            String(WIDTH / 2, HEIGHT / 2, "no hashrate data this month", fontName=regular(), textAnchor="middle")
        )
        return drawing
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 40, 25, WIDTH - 60, HEIGHT - 50
    plot.data = lines
    for i in range(len(lines)):
        plot.lines[i].strokeColor = HASH_COLOUR if i < len(hash_runs) else QUOTA_COLOUR
        plot.lines[i].strokeWidth = 1.0 if i < len(hash_runs) else 1.5
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, days
    plot.xValueAxis.valueSteps = list(range(0, int(days) + 1, 5))
    plot.xValueAxis.labelTextFormat = lambda d: str(int(d) + 1)
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = max(values) / scale * 1.15
    plot.yValueAxis.visibleGrid = True
    plot.yValueAxis.gridStrokeColor = GRID
    drawing.add(plot)
    _legend(drawing, [(HASH_COLOUR, "pool hashrate"), (QUOTA_COLOUR, "quota")])
    drawing.add(String(WIDTH - 20, 5, "day of month", fontName=regular(), fontSize=7, textAnchor="end"))
    return drawing


def _legend(drawing: Drawing, items: list[tuple[colors.Color, str]]) -> None:
    x = WIDTH - 200
    for colour, label in items:
        drawing.add(_box(x, HEIGHT - 12, 10, 6, colour))
        drawing.add(String(x + 14, HEIGHT - 12, label, fontName=regular(), fontSize=8))
        x += 90


def production_chart(charts: GroupCharts, coin_scale: float = 1e8) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    _title(drawing, "Daily production (coins credited per local day)")
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 25, WIDTH - 60, HEIGHT - 50
    chart.data = [[sats / coin_scale for _, sats in charts.daily_sats]]
    chart.bars[0].fillColor = BAR_COLOUR
    chart.bars[0].strokeColor = None
    chart.categoryAxis.categoryNames = [str(d.day) if d.day % 5 == 1 else "" for d, _ in charts.daily_sats]
    chart.valueAxis.valueMin = 0
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = GRID
    drawing.add(chart)
    return drawing


def violation_chart(charts: GroupCharts) -> Drawing:
    """One lane per rule, a bar per firing episode across the month."""
    rules = sorted({e.rule for e in charts.episodes})
    lane = 16
    height = max(60, 40 + lane * len(rules))
    drawing = Drawing(WIDTH, height)
    drawing.add(String(0, height - 10, "Alerts firing (by rule)", fontName=regular(), fontSize=10))
    left, right = 110, WIDTH - 10
    span_ns = charts.window.end_ns() - charts.window.start_ns()
    days = int(charts.window.seconds // 86_400)
    for day in range(0, days + 1, 5):
        x = left + (right - left) * day / (charts.window.seconds / 86_400)
        drawing.add(Line(x, 15, x, height - 18, strokeColor=GRID))
        drawing.add(String(x, 4, str(day + 1), fontName=regular(), fontSize=7, textAnchor="middle"))
    if not rules:
        drawing.add(String(left, 28, "no alert fired this month", fontName=regular(), fontSize=9))
        return drawing
    for index, rule in enumerate(rules):
        y = height - 30 - index * lane
        drawing.add(String(left - 4, y + 2, rule, fontName=regular(), fontSize=8, textAnchor="end"))
        for episode in (e for e in charts.episodes if e.rule == rule):
            x0 = left + (right - left) * (episode.start_ns - charts.window.start_ns()) / span_ns
            x1 = left + (right - left) * (episode.end_ns - charts.window.start_ns()) / span_ns
            # At least a point's width, so a one-minute alert is still visible.
            drawing.add(_box(x0, y, max(1.5, x1 - x0), lane - 6, ALERT_COLOUR))
    return drawing
