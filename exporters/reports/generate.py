"""`generate_monthly`: read the month from InfluxDB, compute the rows, write CSV, JSON and a PDF per group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from collector.atomic import write_atomically
from collector.config import AppConfig, Group
from exporters.reports.blackout import restricted_intervals
from exporters.reports.compute import RowContext, compute_row, group_charts, unknown_series
from exporters.reports.formats.csv_format import render_csv
from exporters.reports.formats.json_format import render_json
from exporters.reports.period import Month, MonthWindow, parse_month
from exporters.reports.plan import RowPlan, plan_group
from exporters.reports.progress import Progress
from exporters.reports.queries import (
    QueryTransport,
    RestrictedSpan,
    batch_count,
    fetch_restricted_power,
    fetch_unconfigured_groups,
    fetch_window,
)
from exporters.reports.row import ReportRow
from exporters.reports.settings import ALL_FORMATS, ReportFormat

# Below this share of expected polls a row is named in the warnings: its figures are lower bounds.
COMPLETENESS_WARNING = 0.95


@dataclass
class ReportResult:
    """What a run produced: the month, the files written (in order), the rows and what to look at."""

    month: str
    paths: list[Path] = field(default_factory=list)
    rows: list[ReportRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def file_stem(month: Month, group_id: str | None) -> str:
    return f"minewatch-report-{month}" + (f"-{group_id}" if group_id else "")


def generate_monthly(
    config: AppConfig,
    month: str,
    *,
    transport: QueryTransport,
    formats: Sequence[ReportFormat] = ALL_FORMATS,
    out_dir: Path,
    group_id: str | None = None,
    now: datetime,
    progress: Progress | None = None,
) -> ReportResult:
    """Generate the report of `month` ("YYYY-MM") for every group (or `group_id`) into `out_dir`.

    `now` (aware) bounds a month still in progress and stamps the files. Raises MonthError for a bad month and
    KeyError for an unknown group; storage errors propagate (a report from half the data must not be written).
    """
    period = parse_month(month, now=now)
    groups = [config.group(group_id)] if group_id else list(config.groups)
    interval_s = config.main.schedule.interval_s
    want_pdf = "pdf" in formats

    plans = {group.id: plan_group(group, period) for group in groups}
    members = _window_members(period, groups, plans, charts=want_pdf)
    # Progress counts steps: every query batch (per month window), the blackout sums, then every group.
    if progress:
        progress.start(str(period), sum(batch_count(len(ids)) for ids in members.values()) + 1 + len(groups))
    step = progress.step_done if progress else None
    pool_kinds = sorted({a.kind for group in groups for a in group.accounts})
    single_site = {group.id: group.spec.sites[0].id for group in groups if len(group.spec.sites) == 1}
    facts = {
        window: fetch_window(
            transport,
            window,
            sorted(ids),
            charts=want_pdf,
            interval_s=interval_s,
            pool_kinds=pool_kinds,
            single_site=single_site,
            on_batch=step,
        )
        for window, ids in sorted(members.items())
    }
    restricted, spans = _restrictions(config, plans)
    restricted_power = fetch_restricted_power(transport, spans)
    if step:
        step()

    result = ReportResult(month=str(period))
    result.warnings.extend(unknown_series(plans, list(facts.values())))
    if group_id is None and facts:
        widest = MonthWindow(min(w.start for w in facts), max(w.end for w in facts))
        for gone in fetch_unconfigured_groups(transport, widest, [g.id for g in groups]):
            result.warnings.append(
                f"{gone}: credits, payouts or device data stored for the month, but no such group is configured; "
                "they are in no row (group removed or renamed?)"
            )
    by_group: dict[str, list[ReportRow]] = {}
    for group in groups:
        for plan in plans[group.id]:
            key = (group.id, plan.site_id or "")
            intervals = restricted.get(key) if plan.carries_site else None
            ctx = RowContext(
                month=period,
                interval_s=interval_s,
                now=now,
                restricted_hours=_hours(intervals) if intervals is not None else None,
                restricted_power=restricted_power.get(key) if plan.carries_site else None,
            )
            row = compute_row(plan, facts[plan.window], ctx)
            by_group.setdefault(group.id, []).append(row)
            result.rows.append(row)
            result.warnings.extend(_row_warnings(row))
        if want_pdf and by_group.get(group.id):
            from exporters.reports.formats.pdf_format import render_pdf  # reportlab only when a PDF is wanted

            charts = group_charts(group, period, facts[period.window(group.spec.timezone)], now)
            path = out_dir / f"{file_stem(period, group.id)}.pdf"
            _write(result, progress, path, render_pdf(by_group[group.id], charts, generated_at=now), "pdf", group.id)
        if progress:
            progress.step_done()

    stem = file_stem(period, group_id)
    if "csv" in formats:
        _write(result, progress, out_dir / f"{stem}.csv", render_csv(result.rows), "csv", None)
    if "json" in formats:
        data = render_json(result.rows, period=str(period), generated_at=now, warnings=result.warnings)
        _write(result, progress, out_dir / f"{stem}.json", data, "json", None)
    if progress:
        progress.finish(str(period), result.paths, len(result.rows), result.warnings)
    return result


def _write(
    result: ReportResult, progress: Progress | None, path: Path, data: bytes, fmt: str, group_id: str | None
) -> None:
    write_atomically(path, data)
    result.paths.append(path)
    if progress:
        progress.file_written(path, fmt, group_id)


def _window_members(
    period: Month, groups: Sequence[Group], plans: dict[str, list[RowPlan]], *, charts: bool
) -> dict[MonthWindow, set[str]]:
    """The groups to read per distinct month window (one per time zone in use): queries go per window."""
    members: dict[MonthWindow, set[str]] = {}
    for group in groups:
        for plan in plans[group.id]:
            members.setdefault(plan.window, set()).add(group.id)
        if charts:  # the charts cover the month in the group's own zone
            members.setdefault(period.window(group.spec.timezone), set()).add(group.id)
    return members


def _restrictions(
    config: AppConfig, plans: dict[str, list[RowPlan]]
) -> tuple[dict[tuple[str, str], list[tuple[datetime, datetime]]], list[RestrictedSpan]]:
    intervals: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    spans: list[RestrictedSpan] = []
    for rows in plans.values():
        for plan in rows:
            if not plan.carries_site or plan.site is None:
                continue
            found = restricted_intervals(plan.group, plan.site, config.regions.bans, plan.window)
            intervals[(plan.group_id, plan.site.id)] = found
            spans.extend(RestrictedSpan(plan.group_id, plan.site.id, MonthWindow(a, b)) for a, b in found)
    return intervals, spans


def _hours(intervals: list[tuple[datetime, datetime]]) -> float:
    return round(sum((b - a).total_seconds() for a, b in intervals) / 3600, 6)


def _row_warnings(row: ReportRow) -> list[str]:
    where = f"{row.group_id}/{row.site_id or '(group)'}/{row.coin}"
    found = []
    if row.data_completeness is not None and row.data_completeness < COMPLETENESS_WARNING:
        found.append(f"{where}: data completeness {row.data_completeness:.1%}; figures are lower bounds")
    if row.mined_sats is None and row.row_scope == "group":
        found.append(f"{where}: no production data stored for the month")
    if row.payout_addresses_undeclared:
        found.append(f"{where}: payouts to undeclared addresses {', '.join(row.payout_addresses_undeclared)}")
    if row.pools_not_permitted:
        found.append(f"{where}: mined on pools the permit does not list: {', '.join(row.pools_not_permitted)}")
    return found
