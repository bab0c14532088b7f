"""InfluxQL reads for the monthly report: one query per measurement per month window, for many groups at once.

Everything that can be aggregated is aggregated by InfluxDB (sum, count, mean, max, first, last per series,
GROUP BY tags); only payouts (their address is a string field), alert transitions (a state machine) and, for
the PDF, the credits and hourly hashrate come back as points. Groups are batched `GROUP_BATCH` per query so a
thousand groups cost a few dozen requests, not thousands. Results are keyed by tag tuples; nothing here
interprets them (that is `exporters.reports.compute`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from collector.sinks.influx import Series, quote_ident, quote_literal
from collector.sinks.points import (
    COMPLIANCE,
    COMPLIANCE_POOL,
    DEVICE,
    POOL_ACCOUNT,
    POOL_EARNING,
    POOL_PAYOUT,
    POOL_SETTINGS,
    SOURCE_HEALTH,
    VIOLATION,
)
from exporters.reports.period import MonthWindow

GROUP_BATCH = 250
PEAK_BATCH = 10  # groups per nested peak-power query (see `_peak_power`): each request stays short
# Alert transitions read from before the month, per (group, rule, severity) series, to know which alerts were
# already firing when it began. Far more than any alert produces between two reports.
TRANSITIONS_BEFORE = 2000
STATEMENTS_PER_REQUEST = 40
# How far before a payout its account's configured payout address is looked for in `pool_settings`. A pool that
# is polled at all shows its settings far more often than this (every poll interval); a bound keeps each
# `last()` from scanning the whole history of the series.
SETTINGS_LOOKBACK_NS = 40 * 86_400 * 1_000_000_000


class QueryTransport(Protocol):
    """What the report needs of a transport: InfluxQL in, series out (`collector.sinks.influx.V1Transport`)."""

    def query(self, influxql: str, *, epoch: str | None = "ns") -> list[Series]: ...


AccountKey = tuple[str, str, str, str]  # group_id, pool, account, coin
SiteKey = tuple[str, str]  # group_id, site


@dataclass(frozen=True, slots=True)
class CreditTotals:
    sats: int
    count: int
    first_ns: int
    last_ns: int


@dataclass(frozen=True, slots=True)
class PayoutPoint:
    """A stored payout. `address_configured`: the pool names no address per payout (EMCD), so `address` is the
    account's payout address as last configured at the pool before it (`pool_settings`), and `declared` is None
    (the stored flag of a setting was judged at the poll, not at the payout)."""

    time_ns: int
    amount_sats: int | None
    address: str | None
    declared: int | None
    address_configured: bool = False


@dataclass(frozen=True, slots=True)
class ComplianceTotals:
    """A group's compliance rounds in the window: hashrate statistics and rounds above the quota."""

    rounds: int
    hashrate_mean_hs: float | None
    hashrate_peak_hs: float | None
    peak_utilisation: float | None
    rounds_with_quota: int
    rounds_above_quota: int
    rounds_with_hashrate: int = 0


@dataclass(frozen=True, slots=True)
class PowerTotals:
    """A site's power samples: their sum (W, each standing for one poll interval) and count."""

    sum_w: float
    samples: int


@dataclass(frozen=True, slots=True)
class HealthTotals:
    polls: int
    successes: int


@dataclass(frozen=True, slots=True)
class Transition:
    time_ns: int
    rule: str
    severity: str
    subject: str
    state: str


@dataclass
class WindowFacts:
    """Everything read for one month window, keyed by tags."""

    credits: dict[AccountKey, CreditTotals] = field(default_factory=dict)
    payouts: dict[AccountKey, list[PayoutPoint]] = field(default_factory=dict)
    account_peak_hs: dict[AccountKey, float] = field(default_factory=dict)
    compliance: dict[str, ComplianceTotals] = field(default_factory=dict)
    pool_permitted_tags: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    power: dict[SiteKey, PowerTotals] = field(default_factory=dict)
    peak_power_w: dict[SiteKey, float] = field(default_factory=dict)
    devices_seen: dict[SiteKey, int] = field(default_factory=dict)
    devices_active: dict[SiteKey, int] = field(default_factory=dict)
    health: dict[tuple[str, str, str], HealthTotals] = field(default_factory=dict)
    transitions_before: dict[str, list[Transition]] = field(default_factory=dict)
    transitions: dict[str, list[Transition]] = field(default_factory=dict)
    restricted_power: dict[SiteKey, PowerTotals] = field(default_factory=dict)
    # Every stored series of the window, to tell stored data no row draws on (a renamed or removed account,
    # miner or site): `pool_earning` / `pool_payout` series by account key, `device` series by (group, site, device).
    earning_series: set[AccountKey] = field(default_factory=set)
    payout_series: set[AccountKey] = field(default_factory=set)
    device_series: set[tuple[str, str, str]] = field(default_factory=set)
    # For the PDF only (filled when charts are wanted).
    credit_points: dict[AccountKey, list[tuple[int, int]]] = field(default_factory=dict)
    hourly_hashrate: dict[str, list[tuple[int, float | None, float | None]]] = field(default_factory=dict)
    # Hours (start, ns) in which at least one poll of one of the group's pool accounts succeeded.
    pool_poll_hours: dict[str, set[int]] = field(default_factory=dict)


def group_filter(group_ids: Sequence[str]) -> str:
    """`group_id =~ /^(?:a|b)$/`: group ids are slugs ([a-z0-9_-]), so they need no regex escaping."""
    return f"{quote_ident('group_id')} =~ /^(?:{'|'.join(group_ids)})$/"


def time_filter(window: MonthWindow) -> str:
    return f"time >= {window.start_ns()} AND time < {window.end_ns()}"


def _where(window: MonthWindow, group_ids: Sequence[str], extra: str = "") -> str:
    clause = f"WHERE {time_filter(window)} AND {group_filter(group_ids)}"
    return f"{clause} AND {extra}" if extra else clause


def _batches(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _num(value: Any) -> float | None:
    # InfluxDB's JSON gives a float field holding a whole number as an integer: make it a float again.
    return None if value is None else float(value)


def _account_key(tags: dict[str, str]) -> AccountKey:
    return (tags.get("group_id", ""), tags.get("pool", ""), tags.get("account", ""), tags.get("coin", ""))


def _site_key(tags: dict[str, str]) -> SiteKey:
    return (tags.get("group_id", ""), tags.get("site", ""))


def _first_row(series: Series) -> dict[str, Any]:
    return series.records()[0] if series.rows else {}


def fetch_window(
    transport: QueryTransport,
    window: MonthWindow,
    group_ids: Sequence[str],
    *,
    charts: bool,
    interval_s: float,
    pool_kinds: Sequence[str] = (),
    single_site: Mapping[str, str] | None = None,
    on_batch: Callable[[], None] | None = None,
) -> WindowFacts:
    """Read every aggregate the report needs for `group_ids` over `window`; `on_batch` after each batch.

    `pool_kinds`: the pool kinds in use (for the charts' "was any pool polled this hour"); none: every kind.
    `single_site`: group -> its only site, for groups with one (their peak power comes from the rounds).
    """
    facts = WindowFacts()
    for batch in _batches(sorted(group_ids), GROUP_BATCH):
        _credits(transport, window, batch, facts)
        _payouts(transport, window, batch, facts)
        _accounts(transport, window, batch, facts)
        _compliance(transport, window, batch, facts)
        _devices(transport, window, batch, facts, interval_s, single_site or {})
        _health(transport, window, batch, facts)
        _violations(transport, window, batch, facts)
        if charts:
            _chart_series(transport, window, batch, facts, pool_kinds)
        if on_batch is not None:
            on_batch()
    # Once per window, after every batch: each address-less payout is looked up exactly once.
    _configured_payout_addresses(transport, facts)
    return facts


def batch_count(groups: int) -> int:
    """How many query batches `fetch_window` makes for `groups` groups."""
    return -(-groups // GROUP_BATCH)


def _credits(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    where = _where(window, batch)
    by = "GROUP BY group_id, pool, account, coin"
    m = quote_ident(POOL_EARNING)
    totals = transport.query(f"SELECT sum(amount_sats) AS sats, count(amount_sats) AS n FROM {m} {where} {by}")
    # A selector alone returns the time of the point it selected; with other aggregates it would not.
    firsts = {
        _account_key(s.tags): s.rows[0][0]
        for s in transport.query(f"SELECT first(amount_sats) FROM {m} {where} {by}")
        if s.rows
    }
    lasts = {
        _account_key(s.tags): s.rows[0][0]
        for s in transport.query(f"SELECT last(amount_sats) FROM {m} {where} {by}")
        if s.rows
    }
    for series in totals:
        row = _first_row(series)
        key = _account_key(series.tags)
        facts.earning_series.add(key)
        if row.get("n"):
            facts.credits[key] = CreditTotals(int(row["sats"]), int(row["n"]), int(firsts[key]), int(lasts[key]))


def _payouts(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    query = (
        f"SELECT amount_sats, address, declared FROM {quote_ident(POOL_PAYOUT)} {_where(window, batch)} "
        "GROUP BY group_id, pool, account, coin"
    )
    for series in transport.query(query):
        facts.payout_series.add(_account_key(series.tags))
        facts.payouts.setdefault(_account_key(series.tags), []).extend(
            PayoutPoint(int(r["time"]), r.get("amount_sats"), r.get("address"), r.get("declared"))
            for r in series.records()
        )


def _configured_payout_addresses(transport: QueryTransport, facts: WindowFacts) -> None:
    """Give each address-less payout the address its account had configured at the pool when it was sent: one
    `last()` per payout (statements `STATEMENTS_PER_REQUEST` to a request, aliased by index), looking back at
    most `SETTINGS_LOOKBACK_NS` before the payout. A payout sent before any setting was seen (in that span) keeps
    no address. Called once per window, after all batches, so no payout is asked for twice."""
    wanted = [
        (key, index, point)
        for key, points in sorted(facts.payouts.items())
        for index, point in enumerate(points)
        if point.address is None and not point.address_configured
    ]
    statements = [
        f"SELECT last(payout_address) AS a_{n} FROM {quote_ident(POOL_SETTINGS)} "
        f"WHERE group_id = {quote_literal(group)} AND pool = {quote_literal(pool)} "
        f"AND account = {quote_literal(account)} AND coin = {quote_literal(coin)} "
        f"AND time >= {point.time_ns - SETTINGS_LOOKBACK_NS} AND time <= {point.time_ns}"
        for n, ((group, pool, account, coin), _, point) in enumerate(wanted)
    ]
    for start in range(0, len(statements), STATEMENTS_PER_REQUEST):
        for series in transport.query("; ".join(statements[start : start + STATEMENTS_PER_REQUEST])):
            if not series.rows or series.rows[0][1] is None:
                continue
            key, index, point = wanted[int(series.columns[1].removeprefix("a_"))]
            facts.payouts[key][index] = replace(point, address=str(series.rows[0][1]), address_configured=True)


def _accounts(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    query = (
        f"SELECT max(hashrate_hs) AS peak FROM {quote_ident(POOL_ACCOUNT)} {_where(window, batch)} "
        "GROUP BY group_id, pool, account, coin"
    )
    for series in transport.query(query):
        peak = _num(_first_row(series).get("peak"))
        if peak is not None:
            facts.account_peak_hs[_account_key(series.tags)] = peak
    used = (
        f"SELECT max(hashrate_hs) AS peak FROM {quote_ident(COMPLIANCE_POOL)} "
        f"{_where(window, batch, 'hashrate_hs > 0')} GROUP BY group_id, pool, permitted"
    )
    for series in transport.query(used):
        key = (series.tags.get("group_id", ""), series.tags.get("pool", ""))
        facts.pool_permitted_tags.setdefault(key, set()).add(series.tags.get("permitted", ""))


def _compliance(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    m = quote_ident(COMPLIANCE)
    stats = transport.query(
        # Rounds are written while the pool hashrate is unknown too: coverage counts those that knew it.
        "SELECT count(status_code) AS rounds, count(pool_total_hs) AS hs_rounds, "
        "mean(pool_total_hs) AS mean_hs, max(pool_total_hs) AS peak_hs, "
        f"max(quota_utilisation) AS peak_util, count(quota_utilisation) AS with_quota FROM {m} "
        f"{_where(window, batch)} GROUP BY group_id"
    )
    above = {
        s.tags.get("group_id", ""): int(_first_row(s).get("above") or 0)
        for s in transport.query(
            f"SELECT count(quota_utilisation) AS above FROM {m} "
            f"{_where(window, batch, 'quota_utilisation > 1')} GROUP BY group_id"
        )
    }
    for series in stats:
        row = _first_row(series)
        group_id = series.tags.get("group_id", "")
        facts.compliance[group_id] = ComplianceTotals(
            rounds=int(row.get("rounds") or 0),
            rounds_with_hashrate=int(row.get("hs_rounds") or 0),
            hashrate_mean_hs=_num(row.get("mean_hs")),
            hashrate_peak_hs=_num(row.get("peak_hs")),
            peak_utilisation=_num(row.get("peak_util")),
            rounds_with_quota=int(row.get("with_quota") or 0),
            rounds_above_quota=above.get(group_id, 0),
        )


def _devices(
    transport: QueryTransport,
    window: MonthWindow,
    batch: list[str],
    facts: WindowFacts,
    interval_s: float,
    single_site: Mapping[str, str],
) -> None:
    m = quote_ident(DEVICE)
    where = _where(window, batch)
    for series in transport.query(
        f"SELECT sum(power_w) AS w, count(power_w) AS n FROM {m} {where} GROUP BY group_id, site"
    ):
        row = _first_row(series)
        if row.get("n"):
            facts.power[_site_key(series.tags)] = PowerTotals(float(row["w"]), int(row["n"]))
    _peak_power(transport, window, batch, facts, interval_s, single_site)
    # One row per stored device series: whether it was ever online (online is 0/1, so max is "ever 1"), and the
    # series itself, to tell devices no row draws on.
    per_device = f"SELECT max(online) AS up, count(power_w) AS n FROM {m} {where} GROUP BY group_id, site, device"
    for series in transport.query(per_device):
        tags = series.tags
        facts.device_series.add((tags.get("group_id", ""), tags.get("site", ""), tags.get("device", "")))
        up = _first_row(series).get("up")
        if up is None:
            continue
        key = _site_key(tags)
        facts.devices_seen[key] = facts.devices_seen.get(key, 0) + 1
        facts.devices_active[key] = facts.devices_active.get(key, 0) + (1 if up else 0)


def _peak_power(
    transport: QueryTransport,
    window: MonthWindow,
    batch: list[str],
    facts: WindowFacts,
    interval_s: float,
    single_site: Mapping[str, str],
) -> None:
    """Each site's largest draw: the sum over its miners at one moment.

    A group with one site has it already: every compliance round records the summed power of the miners whose
    last snapshot is fresh (`compliance.power_w`), one value per round, so its max is the peak — cheap, and a
    late poll cannot count a miner twice. Other sites (and groups whose rounds recorded no power) are summed
    from the miners' own samples: those carry their real poll time, so a late poll and the next on-time poll
    of one miner can share a clock-aligned bucket; each miner is first averaged within the bucket, then the
    miners are summed, then the largest sum is taken. That nests three queries over every device point, so it
    goes `PEAK_BATCH` groups at a time.
    """
    from_rounds = [group for group in batch if group in single_site]
    if from_rounds:
        rounds = (
            f"SELECT max(power_w) AS peak FROM {quote_ident(COMPLIANCE)} {_where(window, from_rounds)} "
            "GROUP BY group_id"
        )
        for series in transport.query(rounds):
            value = _num(_first_row(series).get("peak"))
            group = series.tags.get("group_id", "")
            if value is not None and group in single_site:
                facts.peak_power_w[(group, single_site[group])] = value
    known = {group for group, _ in facts.peak_power_w}
    rest = [group for group in batch if group not in known]
    m = quote_ident(DEVICE)
    bucket = max(1, round(interval_s))
    for groups in _batches(rest, PEAK_BATCH):
        where = _where(window, groups)
        per_miner = (
            f"SELECT mean(power_w) AS miner_w FROM {m} {where} "
            f"GROUP BY time({bucket}s), group_id, site, device fill(none)"
        )
        per_site = (
            f"SELECT sum(miner_w) AS site_w FROM ({per_miner}) WHERE {time_filter(window)} "
            f"GROUP BY time({bucket}s), group_id, site fill(none)"
        )
        peak = f"SELECT max(site_w) AS peak FROM ({per_site}) WHERE {time_filter(window)} GROUP BY group_id, site"
        for series in transport.query(peak):
            value = _num(_first_row(series).get("peak"))
            if value is not None:
                facts.peak_power_w[_site_key(series.tags)] = value


def _health(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    query = (
        f"SELECT count(success) AS polls, sum(success) AS ok FROM {quote_ident(SOURCE_HEALTH)} "
        f"{_where(window, batch)} GROUP BY group_id, kind, target"
    )
    for series in transport.query(query):
        row = _first_row(series)
        key = (series.tags.get("group_id", ""), series.tags.get("kind", ""), series.tags.get("target", ""))
        facts.health[key] = HealthTotals(int(row.get("polls") or 0), int(row.get("ok") or 0))


def _transitions(series: Series) -> list[Transition]:
    rule, severity = series.tags.get("rule", ""), series.tags.get("severity", "")
    return [
        Transition(int(r["time"]), rule, severity, str(r.get("subject") or ""), str(r.get("state") or ""))
        for r in series.records()
    ]


def _violations(transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts) -> None:
    m = quote_ident(VIOLATION)
    by = "GROUP BY group_id, rule, severity"
    before = (
        f"SELECT state, subject FROM {m} WHERE time < {window.start_ns()} AND {group_filter(batch)} {by} "
        f"ORDER BY time DESC LIMIT {TRANSITIONS_BEFORE}"
    )
    within = f"SELECT state, subject FROM {m} {_where(window, batch)} {by}"
    for target, query in ((facts.transitions_before, before), (facts.transitions, within)):
        for series in transport.query(query):
            target.setdefault(series.tags.get("group_id", ""), []).extend(_transitions(series))


def _chart_series(
    transport: QueryTransport, window: MonthWindow, batch: list[str], facts: WindowFacts, pool_kinds: Sequence[str]
) -> None:
    credits = (
        f"SELECT amount_sats FROM {quote_ident(POOL_EARNING)} {_where(window, batch)} "
        "GROUP BY group_id, pool, account, coin"
    )
    for series in transport.query(credits):
        facts.credit_points[_account_key(series.tags)] = [(int(t), int(v)) for t, v in series.rows if v is not None]
    hourly = (
        f"SELECT mean(pool_total_hs) AS hs, max(quota_hs) AS quota FROM {quote_ident(COMPLIANCE)} "
        f"{_where(window, batch)} GROUP BY time(1h), group_id fill(none)"
    )
    for series in transport.query(hourly):
        facts.hourly_hashrate[series.tags.get("group_id", "")] = [
            (int(r["time"]), _num(r.get("hs")), _num(r.get("quota"))) for r in series.records()
        ]
    # Hours with a successful poll of a pool account: a local day without any is "no data", not 0 produced.
    kinds = f" AND kind =~ /^(?:{'|'.join(sorted(set(pool_kinds)))})$/" if pool_kinds else ""
    polled = (
        f"SELECT sum(success) AS ok FROM {quote_ident(SOURCE_HEALTH)} {_where(window, batch)}{kinds} "
        "GROUP BY time(1h), group_id fill(none)"
    )
    for series in transport.query(polled):
        facts.pool_poll_hours.setdefault(series.tags.get("group_id", ""), set()).update(
            int(r["time"]) for r in series.records() if r.get("ok")
        )


@dataclass(frozen=True, slots=True)
class RestrictedSpan:
    """One restricted interval of one site, to be summed over."""

    group_id: str
    site: str
    window: MonthWindow


def fetch_restricted_power(transport: QueryTransport, spans: Sequence[RestrictedSpan]) -> dict[SiteKey, PowerTotals]:
    """Sum each site's power samples inside its restricted intervals.

    Sites sharing an interval (a regional seasonal ban starts at the same local midnight for every site of a
    zone) share one statement; statements go `STATEMENTS_PER_REQUEST` to a request, each aliased by its index
    so the flat answer can be told apart.
    """
    by_interval: dict[MonthWindow, set[SiteKey]] = {}
    for span in spans:
        by_interval.setdefault(span.window, set()).add((span.group_id, span.site))
    statements: list[tuple[int, str]] = []
    wanted: dict[int, set[SiteKey]] = {}
    for index, (interval, sites) in enumerate(sorted(by_interval.items())):
        wanted[index] = sites
        groups = sorted({g for g, _ in sites})
        for batch in _batches(groups, GROUP_BATCH):
            statements.append(
                (
                    index,
                    f"SELECT sum(power_w) AS w_{index}, count(power_w) AS n_{index} FROM {quote_ident(DEVICE)} "
                    f"{_where(interval, batch)} GROUP BY group_id, site",
                )
            )
    totals: dict[SiteKey, PowerTotals] = {}
    for start in range(0, len(statements), STATEMENTS_PER_REQUEST):
        chunk = statements[start : start + STATEMENTS_PER_REQUEST]
        for series in transport.query("; ".join(q for _, q in chunk)):
            index = int(series.columns[1].removeprefix("w_"))
            key = _site_key(series.tags)
            row = series.rows[0] if series.rows else None
            if key not in wanted.get(index, set()) or row is None or not row[2]:
                continue
            before = totals.get(key, PowerTotals(0.0, 0))
            totals[key] = PowerTotals(before.sum_w + float(row[1]), before.samples + int(row[2]))
    return totals


def fetch_unconfigured_groups(transport: QueryTransport, window: MonthWindow, known: Sequence[str]) -> list[str]:
    """Group ids with credits, payouts or device data stored in `window` that are not in `known` (a group removed
    from the config, or renamed): one request of three counts, grouped by `group_id` only."""
    if not known:
        return []
    where = f"WHERE {time_filter(window)} AND {quote_ident('group_id')} !~ /^(?:{'|'.join(sorted(known))})$/"
    statements = [
        f"SELECT count(amount_sats) AS n FROM {quote_ident(POOL_EARNING)} {where} GROUP BY group_id",
        f"SELECT count(amount_sats) AS n FROM {quote_ident(POOL_PAYOUT)} {where} GROUP BY group_id",
        f"SELECT count(power_w) AS n FROM {quote_ident(DEVICE)} {where} GROUP BY group_id",
    ]
    found = {s.tags.get("group_id", "") for s in transport.query("; ".join(statements)) if s.rows}
    return sorted(found - set(known))
