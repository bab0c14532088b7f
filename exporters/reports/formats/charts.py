"""The PDF's three pictures, as reportlab drawings: hashrate against the quota, daily production, alerts.

Gaps stay gaps: the hashrate line is drawn in separate pieces wherever an hour has no data, so a week without
data reads as a hole, not as a straight line across it; a day without any successful pool poll is shaded grey
as "no data" in the production chart, never drawn as 0. The quota is the permit's, from the config, as a step
line over the whole month (also across missing data). All three charts share one x axis layout (`PLOT_LEFT`,
`PLOT_WIDTH`, time from the month's local start), so the days line up down the page.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
NO_DATA_COLOUR = colors.HexColor("#d9d9d9")
AXIS = colors.HexColor("#555555")
# The one x axis layout of every chart: same left edge and width, the month's local start at PLOT_LEFT.
PLOT_LEFT = 110
PLOT_WIDTH = WIDTH - PLOT_LEFT - 10
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


def x_of(moment: datetime, charts: GroupCharts) -> float:
    """Where `moment` sits on the shared x axis."""
    return PLOT_LEFT + PLOT_WIDTH * _day_of_month(moment, charts) / (charts.window.seconds / 86_400)


def _day_ticks(drawing: Drawing, charts: GroupCharts, bottom: float, top: float) -> None:
    """Grid lines and labels at local midnights of days 1, 6, 11, ... (the same on every chart)."""
    for index, (start, _) in enumerate(charts.day_bounds):
        if index % 5:
            continue
        x = x_of(start, charts)
        drawing.add(Line(x, bottom, x, top, strokeColor=GRID))
        drawing.add(String(x, bottom - 10, str(index + 1), fontName=regular(), fontSize=7, textAnchor="middle"))


def quota_line(charts: GroupCharts, scale: float) -> list[list[tuple[float, float]]]:
    """The quota as step-line pieces in (day of month, value / scale); no line where no quota is in force."""
    runs: list[list[tuple[float, float]]] = []
    previous: float | None = None
    for start, end, quota in charts.quota_steps:
        if quota is None:
            previous = None
            continue
        a, b = _day_of_month(start, charts), _day_of_month(end, charts)
        if previous is None:
            runs.append([])
        runs[-1] += [(a, quota / scale), (b, quota / scale)]
        previous = quota
    return runs


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
    quotas = [q for _, _, q in charts.quota_steps if q is not None]
    values = [hs for _, hs, _ in charts.hourly if hs is not None] + quotas
    scale, unit = hashrate_unit(max(values) if values else 1.0)
    _title(drawing, f"Hashrate (hourly mean, {unit}) against the quota")
    days = charts.window.seconds / 86_400
    hash_runs, quota_runs = _pieces(charts, 0, scale), quota_line(charts, scale)
    lines = hash_runs + quota_runs
    if not hash_runs:
        drawing.add(
            String(WIDTH / 2, HEIGHT / 2, "no hashrate data this month", fontName=regular(), textAnchor="middle")
        )
    if not lines:
        return drawing
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = PLOT_LEFT, 25, PLOT_WIDTH, HEIGHT - 50
    plot.data = lines
    for i in range(len(lines)):
        plot.lines[i].strokeColor = HASH_COLOUR if i < len(hash_runs) else QUOTA_COLOUR
        plot.lines[i].strokeWidth = 1.0 if i < len(hash_runs) else 1.5
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, days
    plot.xValueAxis.visibleLabels = False  # the shared day ticks below label the axis
    plot.xValueAxis.visibleTicks = False
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = max(values) / scale * 1.15
    plot.yValueAxis.visibleGrid = True
    plot.yValueAxis.gridStrokeColor = GRID
    drawing.add(plot)
    _day_ticks(drawing, charts, 25, HEIGHT - 25)
    _legend(drawing, [(HASH_COLOUR, "pool hashrate"), (QUOTA_COLOUR, "quota (permit)")])
    drawing.add(String(WIDTH - 20, 5, "day of month", fontName=regular(), fontSize=7, textAnchor="end"))
    return drawing


def _legend(drawing: Drawing, items: list[tuple[colors.Color, str]]) -> None:
    x = WIDTH - 200
    for colour, label in items:
        drawing.add(_box(x, HEIGHT - 12, 10, 6, colour))
        drawing.add(String(x + 14, HEIGHT - 12, label, fontName=regular(), fontSize=8))
        x += 90


def production_chart(charts: GroupCharts, coin_scale: float = 1e8) -> Drawing:
    """A bar per local day, placed by time on the shared axis; days without data shaded grey ("no data")."""
    drawing = Drawing(WIDTH, HEIGHT)
    _title(drawing, "Daily production (coins credited per local day)")
    bottom, height = 25, HEIGHT - 50
    known = [sats / coin_scale for _, sats in charts.daily_sats if sats is not None]
    top = max(known) * 1.15 if known and max(known) > 0 else 1.0
    drawing.add(Line(PLOT_LEFT, bottom, PLOT_LEFT + PLOT_WIDTH, bottom, strokeColor=AXIS))
    drawing.add(Line(PLOT_LEFT, bottom, PLOT_LEFT, bottom + height, strokeColor=AXIS))
    for fraction in (0.0, 0.5, 1.0):
        y = bottom + height * fraction
        drawing.add(Line(PLOT_LEFT, y, PLOT_LEFT + PLOT_WIDTH, y, strokeColor=GRID))
        label = f"{top * fraction:.4g}"
        drawing.add(String(PLOT_LEFT - 4, y - 3, label, fontName=regular(), fontSize=7, textAnchor="end"))
    for (_, sats), (start, end) in zip(charts.daily_sats, charts.day_bounds, strict=True):
        x0, x1 = x_of(start, charts), x_of(end, charts)
        if sats is None:
            drawing.add(_box(x0, bottom, x1 - x0, height, NO_DATA_COLOUR))
        elif sats > 0:
            width = (x1 - x0) * 0.8
            drawing.add(_box(x0 + (x1 - x0 - width) / 2, bottom, width, height * (sats / coin_scale) / top, BAR_COLOUR))
    _day_ticks(drawing, charts, bottom, bottom + height)
    _legend(drawing, [(BAR_COLOUR, "credited"), (NO_DATA_COLOUR, "no data")])
    return drawing


def violation_chart(charts: GroupCharts) -> Drawing:
    """One lane per rule, a bar per firing episode across the month."""
    rules = sorted({e.rule for e in charts.episodes})
    lane = 16
    height = max(60, 40 + lane * len(rules))
    drawing = Drawing(WIDTH, height)
    drawing.add(String(0, height - 10, "Alerts firing (by rule)", fontName=regular(), fontSize=10))
    left, right = PLOT_LEFT, PLOT_LEFT + PLOT_WIDTH
    span_ns = charts.window.end_ns() - charts.window.start_ns()
    _day_ticks(drawing, charts, 15, height - 18)
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
