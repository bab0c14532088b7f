"""From the config's plan and the window's aggregates to report rows and chart data (pure: no I/O, no clock).

Energy: every power sample stands for one poll interval of its miner (sample and hold for one interval, never
across a gap), so energy = Σ power_w × interval_s over the samples there are, and `energy_coverage` says which
share of the expected samples that was. Data completeness: successful polls of the row's sources over the polls
the schedule expected in the (elapsed part of the) month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from collector.addresses import normalize_address
from collector.config import Group, PermitVersion, declared_addresses
from exporters.reports.period import Month, MonthWindow, utc_stamp
from exporters.reports.plan import RowPlan
from exporters.reports.queries import AccountKey, PayoutPoint, PowerTotals, WindowFacts
from exporters.reports.row import ReportRow
from exporters.reports.violations import Episode, by_rule, episodes

NS = 1_000_000_000
WH_PER_KWH = 1000.0


@dataclass(frozen=True, slots=True)
class RowContext:
    """What computing a row needs besides its plan and facts."""

    month: Month
    interval_s: float
    now: datetime
    restricted_hours: float | None  # None: the row carries no site
    restricted_power: PowerTotals | None


def _local_date(time_ns: int, zone: str) -> str:
    return datetime.fromtimestamp(time_ns // NS, UTC).astimezone(ZoneInfo(zone)).date().isoformat()


def _ratio(part: float | None, whole: float | None, digits: int = 6) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return round(part / whole, digits)


def elapsed_seconds(window: MonthWindow, now: datetime) -> float:
    """How much of the window has passed at `now` (the whole window once it is over)."""
    end = min(window.end, max(window.start, now))
    return (end - window.start).total_seconds()


def expected_polls(window: MonthWindow, now: datetime, interval_s: float) -> int:
    return int(elapsed_seconds(window, now) // interval_s)


def _account_keys(plan: RowPlan) -> list[AccountKey]:
    return [(plan.group_id, a.kind, a.id, a.coin) for a in plan.accounts]


def _polled(plan: RowPlan, facts: WindowFacts) -> bool:
    """Whether any of the row's pool accounts was polled successfully in the window (so "nothing" means zero)."""
    return any(
        (h := facts.health.get((plan.group_id, a.kind, a.id))) is not None and h.successes > 0 for a in plan.accounts
    )


def _production(plan: RowPlan, facts: WindowFacts) -> tuple[int | None, int | None, str | None, str | None]:
    found = [facts.credits[k] for k in _account_keys(plan) if k in facts.credits]
    if not found:
        return (0, 0, None, None) if _polled(plan, facts) else (None, None, None, None)
    first = min(c.first_ns for c in found)
    last = max(c.last_ns for c in found)
    return (
        sum(c.sats for c in found),
        sum(c.count for c in found),
        _local_date(first, plan.zone),
        _local_date(last, plan.zone),
    )


@dataclass(frozen=True, slots=True)
class _Payouts:
    count: int | None
    total: int | None
    undeclared: int | None
    declared_addresses: list[str] | None
    undeclared_addresses: list[str] | None


def _payouts(plan: RowPlan, facts: WindowFacts) -> _Payouts:
    points: list[PayoutPoint] = [p for k in _account_keys(plan) for p in facts.payouts.get(k, [])]
    if not points and not _polled(plan, facts):
        return _Payouts(None, None, None, None, None)
    verdicts = [(p, _declared(plan, p)) for p in points]
    undeclared = [p.amount_sats for p, verdict in verdicts if verdict is False]
    return _Payouts(
        count=len(points),
        # A payout whose amount is unknown makes the sum unknown (never counted as 0).
        total=_exact_sum([p.amount_sats for p in points]),
        undeclared=_exact_sum(undeclared),
        declared_addresses=sorted({p.address for p, verdict in verdicts if p.address and verdict is True}),
        undeclared_addresses=sorted({p.address for p, verdict in verdicts if p.address and verdict is False}),
    )


def _exact_sum(amounts: Sequence[int | None]) -> int | None:
    """The sum of the amounts, or None if any of them is unknown."""
    if any(a is None for a in amounts):
        return None
    return sum(int(a) for a in amounts if a is not None)


def _declared(plan: RowPlan, payout: PayoutPoint) -> bool | None:
    """Whether the permit in force when the payout was sent declares its address (None: no address known).

    A stored payout's `declared` flag was judged so already; a configured address taken for an address-less
    payout is judged here, by the permit of the payout's own time.
    """
    if payout.address is None:
        return None
    if not payout.address_configured:
        return None if payout.declared is None else payout.declared == 1
    sent = datetime.fromtimestamp(payout.time_ns / 1e9, UTC)
    return normalize_address(payout.address) in declared_addresses(plan.group.permit_at(sent))


def _pools(plan: RowPlan, facts: WindowFacts) -> tuple[list[str] | None, list[str] | None]:
    """The pools the row's accounts used (hashrate or a credit in the month), split by permitted or not.

    The verdict is the compliance rounds' (`compliance_pool.permitted`, judged by the permit in force at each
    round): a pool seen as not permitted in any round with hashrate is flagged. Without rounds for the pool the
    config decides: permitted only if every permit version in force during the month lists it.
    """
    keys = _account_keys(plan)
    if not any(k in facts.account_peak_hs or k in facts.credits for k in keys) and not _polled(plan, facts):
        return None, None
    used = sorted(
        {k[1] for k in keys if facts.account_peak_hs.get(k, 0.0) > 0 or (k in facts.credits and facts.credits[k].sats)}
    )
    permitted: list[str] = []
    not_permitted: list[str] = []
    for pool in used:
        tags = facts.pool_permitted_tags.get((plan.group_id, pool))
        # Without rounds for the pool, the config judges it (the `else` branch).
        ok = "no" not in tags if tags else bool(plan.permits) and all(pool in p.pools for p in plan.permits)
        (permitted if ok else not_permitted).append(pool)
    return permitted, not_permitted


def quotas(permits: Sequence[PermitVersion]) -> list[float]:
    """The hashrate quotas of the versions in force, in version order, without repeats."""
    found: list[float] = []
    for permit in permits:
        if permit.max_hashrate is not None and permit.max_hashrate not in found:
            found.append(permit.max_hashrate)
    return found


def group_episodes(group_id: str, facts: WindowFacts, window: MonthWindow, now: datetime) -> list[Episode]:
    end = min(window.end, max(window.start, now))
    end_ns = int(end.timestamp()) * NS
    return episodes(
        facts.transitions_before.get(group_id, []), facts.transitions.get(group_id, []), window.start_ns(), end_ns
    )


def _registered_devices(group: Group, site_id: str) -> int:
    return sum(d.count for d in group.spec.devices if d.site == site_id)


def compute_row(plan: RowPlan, facts: WindowFacts, ctx: RowContext) -> ReportRow:
    group, spec, window = plan.group, plan.group.spec, plan.window
    mined, credit_count, first_date, last_date = _production(plan, facts)
    payouts = _payouts(plan, facts)
    pools_ok, pools_bad = _pools(plan, facts)

    expected_rounds = expected_polls(window, ctx.now, ctx.interval_s)
    rounds = facts.compliance.get(plan.group_id)
    known = rounds is not None and rounds.hashrate_mean_hs is not None
    share_above = (
        _ratio(rounds.rounds_above_quota, rounds.rounds_with_quota) if rounds and rounds.rounds_with_quota else None
    )
    # Only rounds that knew the pool hashrate count: rounds are written while it is unknown too.
    coverage_rounds = _ratio(rounds.rounds_with_hashrate, expected_rounds) if rounds else None

    found = group_episodes(plan.group_id, facts, window, ctx.now)
    judged = (rounds is not None and rounds.rounds > 0) or bool(found)
    counts, minutes = by_rule(found) if judged else (None, None)

    site_key = (plan.group_id, plan.site_id or "")
    site = plan.site if plan.carries_site else None
    power = facts.power.get(site_key) if site else None
    energy = round(power.sum_w * ctx.interval_s / 3600 / WH_PER_KWH, 6) if power else None
    expected = expected_polls(window, ctx.now, ctx.interval_s)
    energy_coverage = _ratio(power.samples, len(plan.miners) * expected) if power and plan.miners else None
    if energy is None or site is None:
        blackout_kwh = None
    elif not ctx.restricted_hours:
        blackout_kwh = 0.0  # no blackout in the month: nothing could be drawn inside one
    elif ctx.restricted_power is None or ctx.restricted_power.samples == 0:
        blackout_kwh = None  # windows there were, but no power is known inside them
    else:
        blackout_kwh = round(ctx.restricted_power.sum_w * ctx.interval_s / 3600 / WH_PER_KWH, 6)
    peak = facts.peak_power_w.get(site_key) if site else None
    capacity = site.capacity if site else None
    devices_active = facts.devices_active.get(site_key, 0) if site and site_key in facts.devices_seen else None

    sources = plan.sources
    expected_total = expected * len(sources) if sources else None
    succeeded = (
        sum(
            min(expected, facts.health[(plan.group_id, s.kind, s.target)].successes)
            for s in sources
            if (plan.group_id, s.kind, s.target) in facts.health
        )
        if sources
        else None
    )
    return ReportRow(
        period=str(ctx.month),
        period_start_utc=utc_stamp(window.start),
        period_end_utc=utc_stamp(window.end),
        timezone=plan.zone,
        group_id=plan.group_id,
        legal_name=spec.legal_name,
        inn=spec.inn,
        register_record=spec.register_record,
        register_status=spec.register_status,
        row_scope="site" if plan.site is not None else "group",
        site_id=plan.site_id,
        region=plan.site.region if plan.site is not None else None,
        permit_versions=[p.version for p in plan.permits],
        coin=plan.coin,
        mined_sats=mined,
        credit_count=credit_count,
        first_credit_date=first_date,
        last_credit_date=last_date,
        payout_count=payouts.count,
        payout_total_sats=payouts.total,
        payout_undeclared_sats=payouts.undeclared,
        payout_addresses_declared=payouts.declared_addresses,
        payout_addresses_undeclared=payouts.undeclared_addresses,
        pools_permitted=pools_ok,
        pools_not_permitted=pools_bad,
        hashrate_avg_hs=rounds.hashrate_mean_hs if known and rounds else None,
        hashrate_peak_hs=rounds.hashrate_peak_hs if known and rounds else None,
        hashrate_quotas_hs=quotas(plan.permits),
        hashrate_peak_quota_ratio=(
            round(rounds.peak_utilisation, 6) if rounds and rounds.peak_utilisation is not None else None
        ),
        hashrate_share_above_quota=share_above,
        hashrate_coverage=min(1.0, coverage_rounds) if coverage_rounds is not None else None,
        energy_kwh=energy,
        energy_coverage=min(1.0, energy_coverage) if energy_coverage is not None else None,
        energy_blackout_kwh=blackout_kwh,
        blackout_hours=ctx.restricted_hours if site else None,
        power_peak_w=peak,
        capacity_w=capacity,
        power_peak_capacity_ratio=_ratio(peak, capacity),
        devices_active=devices_active,
        devices_registered=_registered_devices(group, site.id) if site else None,
        violation_episodes=counts,
        violation_minutes=minutes,
        violation_episodes_total=sum(counts.values()) if counts is not None else None,
        violation_minutes_total=round(sum(minutes.values()), 3) if minutes is not None else None,
        polls_expected=expected_total,
        polls_succeeded=succeeded,
        data_completeness=_ratio(succeeded, expected_total) if succeeded is not None else None,
        filing_due=ctx.month.filing_due.isoformat(),
    )


# --- chart data for the PDF -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCharts:
    """A group's month as pictures need it: hourly hashrate and quota, daily production, alert episodes."""

    hourly: list[tuple[datetime, float | None, float | None]]  # hour start (UTC), mean H/s, quota H/s
    # Every local day of the month: sats credited; 0 where a pool poll succeeded but nothing was credited; None
    # ("no data") where nothing was credited and no poll of the group's pool accounts succeeded that day.
    daily_sats: list[tuple[date, int | None]]
    episodes: list[Episode]
    window: MonthWindow
    zone: str
    # The quota of the permit in force, from the config (known for every day, with or without data): runs of
    # (start, end, quota H/s or None when no version in force sets one), local days merged, UTC instants.
    quota_steps: list[tuple[datetime, datetime, float | None]] = field(default_factory=list)
    # Start and end (UTC) of each local day of the month, same order as `daily_sats`.
    day_bounds: list[tuple[datetime, datetime]] = field(default_factory=list)


def group_charts(group: Group, month: Month, facts: WindowFacts, now: datetime) -> GroupCharts:
    """Chart data over the month in the group's own zone."""
    zone = group.spec.timezone
    window = month.window(zone)
    hourly = [
        (datetime.fromtimestamp(t // NS, UTC), hs, quota) for t, hs, quota in facts.hourly_hashrate.get(group.id, [])
    ]
    per_day: dict[date, int] = {}
    for key, points in facts.credit_points.items():
        if key[0] != group.id:
            continue
        for time_ns, sats in points:
            day = date.fromisoformat(_local_date(time_ns, zone))
            per_day[day] = per_day.get(day, 0) + sats
    days = [date(month.year, month.month, d) for d in range(1, month.last_day.day + 1)]
    tz = ZoneInfo(zone)
    bounds = [
        (
            datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC),
            datetime.combine(date.fromordinal(d.toordinal() + 1), datetime.min.time(), tz).astimezone(UTC),
        )
        for d in days
    ]
    polled_hours = sorted(facts.pool_poll_hours.get(group.id, set()))

    def polled(start: datetime, end: datetime) -> bool:
        lo, hi = int(start.timestamp()) * NS, int(end.timestamp()) * NS
        return any(lo <= h < hi for h in polled_hours)

    daily: list[tuple[date, int | None]] = [
        (d, per_day[d] if d in per_day else (0 if polled(a, b) else None))
        for d, (a, b) in zip(days, bounds, strict=True)
    ]
    return GroupCharts(
        hourly=hourly,
        daily_sats=daily,
        episodes=group_episodes(group.id, facts, window, now),
        window=window,
        zone=zone,
        quota_steps=quota_steps(group, bounds),
        day_bounds=bounds,
    )


def quota_steps(
    group: Group, bounds: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, float | None]]:
    """The quota in force day by day (the permit version of each local day), equal neighbours merged."""
    steps: list[tuple[datetime, datetime, float | None]] = []
    for start, end in bounds:
        permit = group.permit_at(start)
        quota = permit.max_hashrate if permit is not None else None
        if steps and steps[-1][2] == quota and steps[-1][1] == start:
            steps[-1] = (steps[-1][0], end, quota)
        else:
            steps.append((start, end, quota))
    return steps


# --- stored data no row draws on --------------------------------------------------------------------------


def unknown_series(plans: dict[str, list[RowPlan]], facts: Sequence[WindowFacts]) -> list[str]:
    """Warnings for stored series of the run's groups that no row draws on (an account, miner or site removed
    from or renamed in the config since the data was stored): their credits, payouts and energy are in no row."""
    accounts = {k for rows in plans.values() for plan in rows for k in _account_keys(plan)}
    devices = {
        (plan.group_id, plan.site_id or "", miner) for rows in plans.values() for plan in rows for miner in plan.miners
    }
    found: list[str] = []
    earning = {k for f in facts for k in f.earning_series if k[0] in plans}
    payout = {k for f in facts for k in f.payout_series if k[0] in plans}
    device = {k for f in facts for k in f.device_series if k[0] in plans}
    for what, keys in (("pool_earning (credits)", earning), ("pool_payout (payouts)", payout)):
        for group_id, pool, account, coin in sorted(keys - accounts):
            found.append(
                f"{group_id}: stored {what} of pool {pool!r} account {account!r} coin {coin!r} match no configured "
                "pool account; they are in no row (account removed or renamed?)"
            )
    for group_id, site, name in sorted(device - devices):
        found.append(
            f"{group_id}: stored device data of miner {name!r} at site {site!r} matches no configured miner of a "
            "site; its energy and power are in no row (miner or site removed or renamed?)"
        )
    return found
