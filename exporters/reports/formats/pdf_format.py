"""The PDF for one group: who, the headline figures, a table with a column per row (site × coin), and charts.

Unknown values print as "missing", never as 0. Sats print as exact integers next to the coin amount. A
"Findings" box at the top lists what a compliance officer must see (or "No findings"), and the table cells it
refers to are highlighted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from exporters.reports.compute import GroupCharts
from exporters.reports.formats.charts import hashrate_chart, hashrate_unit, production_chart, violation_chart
from exporters.reports.formats.fonts import report_fonts
from exporters.reports.period import utc_stamp
from exporters.reports.row import ReportRow

MISSING = "missing"
SATS_PER_COIN = 100_000_000
COMPLETENESS_FINDING = 0.95  # below this share of expected polls, the figures are lower bounds
HIGHLIGHT = colors.HexColor("#fbd5d5")
FINDINGS_BORDER = colors.HexColor("#c62828")


def _coin_amount(sats: int | None, coin: str) -> str:
    if sats is None:
        return MISSING
    whole, fraction = divmod(sats, SATS_PER_COIN)
    return f"{whole}.{fraction:08d} {coin} ({sats} sats)"


def _num(value: float | int | None, fmt: str = "{:,.2f}", unit: str = "") -> str:
    if value is None:
        return MISSING
    return fmt.format(value) + (f" {unit}" if unit else "")


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f} %"


def _hs(value: float | None) -> str:
    if value is None:
        return MISSING
    scale, unit = hashrate_unit(value)
    return f"{value / scale:,.3f} {unit}"


def _items(values: Sequence[object] | None) -> str:
    if values is None:
        return MISSING
    return ", ".join(str(v) for v in values) if values else "none"


def _rules(counts: dict[str, int] | None, minutes: dict[str, float] | None) -> str:
    if counts is None or minutes is None:
        return MISSING
    if not counts:
        return "none"
    return "; ".join(f"{rule}: {n} ({minutes[rule]:,.1f} min)" for rule, n in counts.items())


def _wrap_address_list(values: list[str] | None) -> str:
    return _items(values).replace(", ", ",\n")


# (label, how to show it) — the rows of the summary table, one column per report row.
_TABLE: list[tuple[str, Callable[[ReportRow], str]]] = [
    ("Site", lambda r: r.site_id or "(group-level)"),
    ("Region / zone", lambda r: f"{r.region or '-'} / {r.timezone}"),
    ("Coin", lambda r: r.coin),
    ("Mined", lambda r: _coin_amount(r.mined_sats, r.coin)),
    ("Credits", lambda r: _num(r.credit_count, "{:d}")),
    ("First / last credit", lambda r: f"{r.first_credit_date or MISSING} / {r.last_credit_date or MISSING}"),
    ("Payouts", lambda r: f"{_num(r.payout_count, '{:d}')} · {_coin_amount(r.payout_total_sats, r.coin)}"),
    ("Paid to undeclared", lambda r: _coin_amount(r.payout_undeclared_sats, r.coin)),
    ("Declared addresses", lambda r: _wrap_address_list(r.payout_addresses_declared)),
    ("UNDECLARED addresses", lambda r: _wrap_address_list(r.payout_addresses_undeclared)),
    ("Permitted pools", lambda r: _items(r.pools_permitted)),
    ("NOT permitted pools", lambda r: _items(r.pools_not_permitted)),
    ("Hashrate avg / peak", lambda r: f"{_hs(r.hashrate_avg_hs)} / {_hs(r.hashrate_peak_hs)}"),
    ("Quota(s)", lambda r: ", ".join(_hs(q) for q in r.hashrate_quotas_hs) or "none"),
    ("Time above quota", lambda r: _pct(r.hashrate_share_above_quota)),
    ("Energy", lambda r: f"{_num(r.energy_kwh, unit='kWh')} (coverage {_pct(r.energy_coverage)})"),
    (
        "Energy in blackout",
        lambda r: f"{_num(r.energy_blackout_kwh, unit='kWh')} ({_num(r.blackout_hours, '{:,.1f}', 'h')})",
    ),
    ("Peak power / capacity", lambda r: f"{_num(r.power_peak_w, unit='W')} / {_num(r.capacity_w, unit='W')}"),
    (
        "Devices active / registered",
        lambda r: f"{_num(r.devices_active, '{:d}')} / {_num(r.devices_registered, '{:d}')}",
    ),
    ("Alerts by rule", lambda r: _rules(r.violation_episodes, r.violation_minutes)),
    (
        "Data completeness",
        lambda r: (
            f"{_pct(r.data_completeness)} "
            f"({_num(r.polls_succeeded, '{:,d}')} of {_num(r.polls_expected, '{:,d}')} polls)"
        ),
    ),
]


@dataclass(frozen=True)
class Finding:
    """One thing to see, and the table cells it refers to: (table label, row index)."""

    text: str
    cells: tuple[tuple[str, int], ...]


def _where(row: ReportRow) -> str:
    return row.site_id or "group-level"


def findings(rows: Sequence[ReportRow]) -> list[Finding]:
    """What a compliance officer must see, in a fixed order; group-wide figures (repeated on every row) once."""
    found: list[Finding] = []
    everywhere = tuple(range(len(rows)))

    def per_row(label: str, hit: Callable[[ReportRow], str | None], also: tuple[str, ...] = ()) -> None:
        for index, row in enumerate(rows):
            text = hit(row)
            if text:
                found.append(
                    Finding(f"{_where(row)} ({row.coin}): {text}", tuple((lb, index) for lb in (label, *also)))
                )

    per_row(
        "Paid to undeclared",
        lambda r: (
            f"payouts to undeclared addresses: {r.payout_undeclared_sats:,} sats"
            + (f" ({', '.join(r.payout_addresses_undeclared)})" if r.payout_addresses_undeclared else "")
            if r.payout_undeclared_sats
            else None
        ),
        also=("UNDECLARED addresses",),
    )
    per_row(
        "NOT permitted pools",
        lambda r: f"pools not permitted: {', '.join(r.pools_not_permitted)}" if r.pools_not_permitted else None,
    )
    first = rows[0]
    if first.hashrate_share_above_quota:
        found.append(
            Finding(
                f"group: hashrate above the quota {_pct(first.hashrate_share_above_quota)} of the time",
                tuple(("Time above quota", i) for i in everywhere),
            )
        )
    per_row(
        "Peak power / capacity",
        lambda r: (
            f"peak power {_num(r.power_peak_w, unit='W')} over capacity {_num(r.capacity_w, unit='W')}"
            if r.power_peak_capacity_ratio is not None and r.power_peak_capacity_ratio > 1
            else None
        ),
    )
    per_row(
        "Energy in blackout",
        lambda r: (
            f"energy drawn in blackout: {_num(r.energy_blackout_kwh, unit='kWh')}"
            if r.energy_blackout_kwh is not None and r.energy_blackout_kwh > 0
            else None
        ),
    )
    per_row(
        "Data completeness",
        lambda r: (
            f"data completeness {_pct(r.data_completeness)} (below {COMPLETENESS_FINDING:.0%}): "
            "figures are lower bounds"
            if r.data_completeness is not None and r.data_completeness < COMPLETENESS_FINDING
            else None
        ),
    )
    if first.violation_episodes:
        found.append(
            Finding(
                f"group: alerts fired: {_rules(first.violation_episodes, first.violation_minutes)}",
                tuple(("Alerts by rule", i) for i in everywhere),
            )
        )
    return found


def _findings_box(found: Sequence[Finding], body: ParagraphStyle, bold: str) -> Table:
    heading = ParagraphStyle("findings", parent=body, fontName=bold, fontSize=10, leading=13)
    lines: list[Flowable] = [Paragraph("Findings", heading)]
    if not found:
        lines.append(Paragraph("No findings", body))
    lines += [Paragraph(f"• {_escape(f.text)}", body) for f in found]
    box = Table([[line] for line in lines], colWidths=[A4[0] - 30 * mm])
    colour = FINDINGS_BORDER if found else colors.HexColor("#2e7d32")
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.0, colour),
                ("BACKGROUND", (0, 0), (-1, -1), HIGHLIGHT if found else colors.HexColor("#e8f5e9")),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return box


def render_pdf(rows: Sequence[ReportRow], charts: GroupCharts, *, generated_at: datetime) -> bytes:
    """The group's PDF (rows: that group's rows, at least one)."""
    regular, bold = report_fonts()
    first = rows[0]
    title = ParagraphStyle("title", fontName=bold, fontSize=15, leading=19, spaceAfter=4)
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=12)
    small = ParagraphStyle("small", fontName=regular, fontSize=7.5, leading=9.5)
    cell = ParagraphStyle("cell", fontName=regular, fontSize=7.5, leading=9)
    story: list[Flowable] = [
        Paragraph(f"Monthly production report {first.period}", title),
        Paragraph(f"<b>{_escape(first.legal_name)}</b> — group <b>{first.group_id}</b>", body),
        Paragraph(
            f"INN {first.inn} · register record {_escape(first.register_record)} · status {first.register_status} · "
            f"permit version(s) {_items(first.permit_versions)} · filing due {first.filing_due}",
            body,
        ),
        Spacer(1, 3 * mm),
    ]
    found = findings(rows)
    story += [_findings_box(found, body, bold), Spacer(1, 3 * mm)]
    for row in rows:
        if row.mined_sats is not None:
            where = row.site_id or "group-level"
            story.append(Paragraph(f"Mined at {where}: <b>{_coin_amount(row.mined_sats, row.coin)}</b>", body))
    story.append(Spacer(1, 3 * mm))
    story.append(_table(rows, cell, bold, {c for f in found for c in f.cells}))
    story += [Spacer(1, 5 * mm), hashrate_chart(charts), Spacer(1, 4 * mm), production_chart(charts)]
    story += [Spacer(1, 4 * mm), violation_chart(charts), Spacer(1, 4 * mm)]
    story.append(
        Paragraph(
            f"Month bounds are local midnights ({charts.zone} for the charts; each column's own zone in the table). "
            f"'missing' means no data was stored, never zero; grey days in the production chart had no successful "
            f"pool poll. Generated {utc_stamp(generated_at)} by minewatch.",
            small,
        )
    )
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"minewatch {first.period} {first.group_id}",
        author="minewatch",
    )
    document.build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(rows: Sequence[ReportRow], cell: ParagraphStyle, bold: str, highlight: set[tuple[str, int]]) -> Table:
    data = [
        [Paragraph(f"<b>{label}</b>", cell), *(Paragraph(_escape(show(r)).replace("\n", "<br/>"), cell) for r in rows)]
        for label, show in _TABLE
    ]
    usable = A4[0] - 30 * mm
    label_width = 38 * mm
    widths = [label_width] + [(usable - label_width) / len(rows)] * len(rows)
    table = Table(data, colWidths=widths, repeatRows=0)
    labels = [label for label, _ in _TABLE]
    marks = [
        ("BACKGROUND", (1 + col, labels.index(label)), (1 + col, labels.index(label)), HIGHLIGHT)
        for label, col in sorted(highlight)
    ]
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0f0f0")),
                ("BACKGROUND", (1, 0), (-1, 0), colors.HexColor("#e3ecf7")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONTNAME", (0, 0), (-1, -1), bold),
                *marks,
            ]
        )
    )
    return table
