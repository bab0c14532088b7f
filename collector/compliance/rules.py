"""The permit rules and the operational rules: pure functions from a `GroupView` to `Finding`s.

Each rule is `(view, settings) -> list[Finding]`, registered by name in `RULES` (the names are alert labels:
keep them stable). A rule returns one finding per subject it can name (an account id, a device name, a site
id, an address, or "" for the group as a whole). When it has no subject to name, it returns one group-level
finding instead: `unknown` when it had no fresh data to judge from, `ok` otherwise; so a rule never goes
silent on a group it could not see. A rule whose permit field is empty (no quota, no regions, no patterns)
returns nothing: there is nothing to judge.

Conventions shared by every rule (the "why" lives here once rather than in every function):

- **Freshness.** A source is fresh when it has a last good snapshot and its `age_s` is at most
  `stale_after_s`. Only fresh snapshots are judged; where a rule needs a stale or missing source it says
  `unknown` and names the source. `collector_blind` is the rule that fires on staleness itself.
- **Activity.** A fresh account or miner reporting `hashrate_hs > 0`. An account without a `site` belongs to
  the group's only site when there is exactly one, else to no site (it still counts for group-wide rules).
  "Not mining" is only asserted when every source in scope is fresh and reports a hashrate; a stale source
  might be the one hashing, so then the answer is `unknown`.
- **Windows.** A rolling window has enough data when its usable samples cover at least half of it, each
  sample covering the `stale_after_s` after it (the reach a snapshot has before it would go stale).
  Means and medians are over samples, unweighted: poll rounds are regular, and a time weight would need
  the interval, which the view does not carry.
- **Permit.** `permit_version` is the version in force at `now` (judged by the calendar day in the group's
  zone), except for payouts, which are judged by the version in force when they were sent. Rules that
  compare against the permit say `unknown` when no version is in force: `permit_validity` is the rule that
  reports that, and one alert is better than ten.
- **Values.** Numbers are in base units (H/s, W, counts, sats) as floats; strings where the thing judged is a
  name (a pool kind, a host, a coin, an address). Evidence is one line, names what was seen, where and when,
  and never copies a whole object.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from fnmatch import fnmatchcase
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from collector.addresses import normalize_address
from collector.compliance.calendar import site_restrictions
from collector.compliance.findings import (
    AccountView,
    DeviceView,
    Finding,
    GroupSample,
    GroupView,
    Severity,
    Status,
)
from collector.compliance.settings import RuleSettings
from collector.config import Ban, PermitVersion, Site, declared_addresses
from collector.models import DevicePool

RuleCheck = Callable[[GroupView, RuleSettings], list[Finding]]

_LISTED = 5  # how many sources, txids or patterns evidence names before it only counts


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered rule: its check, the severity its findings carry, and whether it is operational.

    Operational rules watch the fleet's health beside the permit (a regulator does not care about them).
    """

    check: RuleCheck
    severity: Severity
    operational: bool = False
    summary: str = ""


# --- shared helpers ----------------------------------------------------------------------------------------


class _InForce(Enum):
    """The default of `_Out.make(version=...)`: the permit version in force at the view's `now`."""

    NOW = "now"


@dataclass(frozen=True, slots=True)
class _Out:
    """Builds one rule's findings with the rule's registered severity and the version in force."""

    view: GroupView
    rule: str
    version: str | None

    @classmethod
    def of(cls, view: GroupView, rule: str) -> _Out:
        permit = view.permit
        return cls(view, rule, permit.version if permit else None)

    def make(
        self,
        subject: str,
        status: Status,
        value: float | str | None,
        limit: float | str | None,
        evidence: str,
        version: str | _InForce | None = _InForce.NOW,
    ) -> Finding:
        spec = RULES[self.rule]
        return Finding(
            group_id=self.view.group.id,
            rule=self.rule,
            subject=subject,
            status=status,
            severity=spec.severity,
            value=value,
            limit=limit,
            evidence=evidence,
            permit_version=self.version if version is _InForce.NOW else version,
            operational=spec.operational,
        )

    def unknown(self, subject: str, evidence: str) -> Finding:
        return self.make(subject, "unknown", None, None, evidence)

    def no_permit(self) -> list[Finding]:
        when = _local_day(self.view.now, self.view.group.spec.timezone)
        return [
            self.unknown("", f"no permit version in force on {when}: nothing to judge against (see permit_validity)")
        ]


def _fresh(age_s: float | None, has_snapshot: bool, settings: RuleSettings) -> bool:
    return has_snapshot and age_s is not None and age_s <= settings.stale_after_s


def _account_fresh(av: AccountView, settings: RuleSettings) -> bool:
    return _fresh(av.age_s, av.last is not None, settings)


def _device_fresh(dv: DeviceView, settings: RuleSettings) -> bool:
    return _fresh(dv.age_s, dv.last is not None, settings)


def _staleness(age_s: float | None, has_snapshot: bool) -> str:
    if not has_snapshot or age_s is None:
        return "never polled"
    return f"last good poll {age_s:.0f} s ago"


def _account_stale(av: AccountView) -> str:
    return f"pool account {av.account.id} ({av.account.kind}): {_staleness(av.age_s, av.last is not None)}"


def _device_stale(dv: DeviceView) -> str:
    return f"miner {dv.name}: {_staleness(dv.age_s, dv.last is not None)}"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(zone)).strftime(f"%Y-%m-%d %H:%M {zone}")


def _local_day(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(zone)).strftime(f"%Y-%m-%d ({zone})")


def _scaled(value: float, unit: str, prefixes: Sequence[str]) -> str:
    for power in range(len(prefixes) - 1, 0, -1):
        if abs(value) >= 1000.0**power:
            return f"{value / 1000.0**power:.3g} {prefixes[power]}{unit}"
    return f"{value:.3g} {unit}"


def _hs(value: float) -> str:
    return _scaled(value, "H/s", ("", "k", "M", "G", "T", "P", "E"))


def _w(value: float) -> str:
    return _scaled(value, "W", ("", "k", "M", "G"))


def _listing(items: Sequence[str], limit: int = _LISTED) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _account_site(view: GroupView, av: AccountView) -> str | None:
    if av.account.site is not None:
        return av.account.site
    sites = view.group.spec.sites
    return sites[0].id if len(sites) == 1 else None


@dataclass(slots=True)
class _Activity:
    """What the sources in one scope (the group, or one site) say about mining right now."""

    sources: int = 0
    quiet: int = 0  # fresh, reporting no hashrate
    device_hs: float = 0.0
    account_hs: float = 0.0
    active: list[str] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)  # stale, or fresh without a hashrate figure

    @property
    def seen(self) -> bool:
        """Whether any fresh source reported a hashrate (so there is something to judge from)."""
        return self.quiet > 0 or bool(self.active)

    @property
    def hashrate_hs(self) -> float:
        """The scope's hashrate: the miners' own figure where they hash, else the pools' (never both summed)."""
        return self.device_hs if self.device_hs > 0 else self.account_hs

    def describe(self) -> str:
        return f"{_hs(self.hashrate_hs)} from {_listing(self.active)}"


def _activity(view: GroupView, settings: RuleSettings, site: str | None = None) -> _Activity:
    """Activity of the whole group (`site` None) or of the sources attributable to one site."""
    act = _Activity()
    for av in view.accounts:
        if site is not None and _account_site(view, av) != site:
            continue
        act.sources += 1
        if av.last is None or not _account_fresh(av, settings):
            act.blind.append(_account_stale(av))
            continue
        hs = av.last.hashrate_hs
        if hs is None:
            act.blind.append(f"pool account {av.account.id}: no hashrate reported")
        elif hs > 0:
            act.account_hs += hs
            act.active.append(f"account {av.account.id} {_hs(hs)}")
        else:
            act.quiet += 1
    for dv in view.devices:
        if site is not None and dv.site != site:
            continue
        act.sources += 1
        if dv.last is None or not _device_fresh(dv, settings):
            act.blind.append(_device_stale(dv))
        elif dv.last.hashrate_hs is None:
            act.blind.append(f"miner {dv.name}: no hashrate reported")
        elif dv.last.hashrate_hs > 0:
            act.device_hs += dv.last.hashrate_hs
            act.active.append(f"miner {dv.name} {_hs(dv.last.hashrate_hs)}")
        else:
            act.quiet += 1
    return act


def _forbidden_activity(out: _Out, subject: str, act: _Activity, why: str, limit: float | str | None) -> Finding:
    """The verdict on a scope where mining is not allowed: violation if it mines, ok if it provably does not."""
    if act.active:
        return out.make(subject, "violation", act.hashrate_hs, limit, f"mining {act.describe()} {why}")
    if act.seen and not act.blind:
        return out.make(subject, "ok", 0.0, limit, f"not mining ({act.quiet} fresh sources at zero) {why}")
    missing = _listing(act.blind) if act.blind else "no source reports a hashrate"
    return out.unknown(subject, f"cannot tell whether it mines {why}: {missing}")


def _or_summary(out: _Out, findings: list[Finding], seen: bool, ok_evidence: str, blind_evidence: str) -> list[Finding]:
    """A rule that named no subject still answers for the group: ok if it saw data, else unknown."""
    if findings:
        return findings
    if seen:
        return [out.make("", "ok", None, None, ok_evidence)]
    return [out.unknown("", blind_evidence)]


def _window(
    history: Iterable[GroupSample], now: float, window_s: float, pick: Callable[[GroupSample], float | None]
) -> list[tuple[float, float]]:
    """The (time, value) pairs of the samples in [now - window_s, now] where `pick` knows the value."""
    pairs = []
    for sample in history:
        value = pick(sample)
        if value is not None and now - window_s <= sample.at <= now:
            pairs.append((sample.at, value))
    return pairs


def _coverage(times: Iterable[float], now: float, window_s: float, reach_s: float) -> float:
    """Seconds of [now - window_s, now] covered by the samples, each covering the `reach_s` after it."""
    start = now - window_s
    covered = 0.0
    end_so_far = start
    for at in sorted(times):
        lo, hi = max(at, end_so_far), min(at + reach_s, now)
        if hi > lo:
            covered += hi - lo
            end_so_far = hi
    return covered


def _enough(pairs: Sequence[tuple[float, float]], view: GroupView, window_s: float, settings: RuleSettings) -> bool:
    return _coverage((at for at, _ in pairs), view.now, window_s, settings.stale_after_s) >= window_s / 2


# --- permit rules ------------------------------------------------------------------------------------------


def permit_validity(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Mining with no permit version in force, or while the group's register status is not `active`.

    Ok whenever a valid permit is in force and at least one source is fresh (the verdict does not depend on
    the hashrate then, but a group nobody can see is `unknown`, never compliant). Without a valid permit,
    not mining is ok, mining is the violation (value = the hashrate seen, limit 0).
    """
    out = _Out.of(view, "permit_validity")
    act = _activity(view, settings)
    spec = view.group.spec
    permit = view.permit
    if not act.seen:
        missing = _listing(act.blind) if act.blind else "the group has no pool account or miner"
        return [out.unknown("", f"no fresh data to tell whether the group mines: {missing}")]
    if permit is not None and spec.register_status == "active":
        until = permit.valid_to or "open-ended"
        return [
            out.make(
                "",
                "ok",
                act.hashrate_hs,
                None,
                f"permit {permit.version} in force ({permit.valid_from}..{until}), register status active",
            )
        ]
    day = _local_day(view.now, spec.timezone)
    if permit is None:
        why = f"with no permit version in force on {day}"
    else:
        why = f"while the register status of {spec.register_record} is {spec.register_status} (on {day})"
    return [_forbidden_activity(out, "", act, why, 0.0)]


def _host(url: str) -> str | None:
    """The host of a stratum URL, lower-cased, without port or credentials ("host:port" alone is accepted)."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    return parts.hostname or None


def _active_slot(pools: Sequence[DevicePool]) -> DevicePool | None:
    return next((slot for slot in pools if slot.active), None)


def _slot_problems(slot: DevicePool, permit: PermitVersion) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(what is wrong: (what, seen, permitted)), (what cannot be judged) for one pool slot of a miner."""
    wrong: list[tuple[str, str, str]] = []
    blind: list[str] = []
    if permit.stratum_hosts:
        host = _host(slot.url) if slot.url else None
        if host is None:
            blind.append("no stratum host")
        elif not any(fnmatchcase(host, pattern.lower()) for pattern in permit.stratum_hosts):
            wrong.append(("stratum host", host, ", ".join(permit.stratum_hosts)))
    if permit.user_patterns:
        user = slot.stratum_user
        if user is None:
            blind.append("no stratum user")
        elif not any(fnmatchcase(user, pattern) for pattern in permit.user_patterns):
            wrong.append(("stratum user", user, ", ".join(permit.user_patterns)))
    return wrong, blind


def _judge_device_pool(out: _Out, dv: DeviceView, permit: PermitVersion, settings: RuleSettings) -> Finding:
    if dv.last is None or not _device_fresh(dv, settings):
        return out.unknown(dv.name, f"{_device_stale(dv)}; its pool slots are not known")
    if not dv.last.pools:
        return out.unknown(dv.name, f"miner {dv.name} at site {dv.site} reports no pool slot")
    at = _utc(dv.last.observed_at)
    # The active slot first: its problem is the one the finding's value names.
    slots = sorted(dv.last.pools, key=lambda slot: not slot.active)
    problems: list[str] = []
    first: tuple[str, str, str] | None = None
    for slot in slots:
        wrong, _ = _slot_problems(slot, permit)
        role = "active" if slot.active else "configured"
        for what, seen, allowed in wrong:
            problems.append(f"{role} slot {slot.slot}: {what} {seen!r} matches none of {allowed}")
            first = first or (what, seen, allowed)
    if first is not None:
        return out.make(
            dv.name,
            "violation",
            first[1],
            first[2],
            f"miner {dv.name} at site {dv.site} at {at}: " + "; ".join(problems),
        )
    active = _active_slot(dv.last.pools)
    if active is None:
        return out.unknown(dv.name, f"miner {dv.name} at site {dv.site} reports no active pool slot")
    _, blind = _slot_problems(active, permit)
    where = f"miner {dv.name} at site {dv.site}, active slot {active.slot}, at {at}"
    if blind:
        return out.unknown(dv.name, f"{where}: reports {' and '.join(blind)}")
    return out.make(
        dv.name, "ok", _host(active.url or "") or active.stratum_user, None, f"{where}: every slot permitted"
    )


def pool_whitelist(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Hashing on a pool the permit does not list, or miners pointed at a stratum host/user it does not allow.

    Accounts (subject = account id): a violation only while the account hashes on a non-permitted pool kind
    (an idle account there sends nothing); a permitted kind is ok without looking at the hashrate.
    Miners (subject = device name): every slot's host is matched case-insensitively against
    `stratum_hosts` (fnmatch patterns, port ignored), its user case-sensitively against `user_patterns`
    (pools treat user names as given); a dimension the permit lists no patterns for is not judged, and with
    neither listed miners are not judged at all. A miner is judged on its configuration, hashing or not:
    pointing it at a foreign pool is the act, and so is configuring a backup slot there (issue 4: "configured
    or active"): a miner fails over to its backup by itself.
    """
    out = _Out.of(view, "pool_whitelist")
    permit = view.permit
    if permit is None:
        return out.no_permit()
    findings: list[Finding] = []
    pools = ", ".join(permit.pools)
    for av in view.accounts:
        name, kind = av.account.id, av.account.kind
        if av.last is None or not _account_fresh(av, settings):
            findings.append(out.unknown(name, _account_stale(av)))
        elif kind in permit.pools:
            findings.append(out.make(name, "ok", kind, pools, f"account {name} is on permitted pool {kind}"))
        elif av.last.hashrate_hs is None:
            findings.append(out.unknown(name, f"account {name} on non-permitted pool {kind} reports no hashrate"))
        elif av.last.hashrate_hs > 0:
            evidence = (
                f"account {name} hashing {_hs(av.last.hashrate_hs)} on pool {kind} at "
                f"{_utc(av.last.observed_at)}; permit {permit.version} allows {pools}"
            )
            findings.append(out.make(name, "violation", kind, pools, evidence))
        else:
            findings.append(out.make(name, "ok", kind, pools, f"account {name} on pool {kind} is not hashing"))
    if permit.stratum_hosts or permit.user_patterns:
        findings.extend(_judge_device_pool(out, dv, permit, settings) for dv in view.devices)
    return _or_summary(out, findings, False, "", "the group has no pool account or miner")


def coin(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Hashing a coin the permit does not list (subject = account id; the coin is the one the pool reports)."""
    out = _Out.of(view, "coin")
    permit = view.permit
    if permit is None:
        return out.no_permit()
    coins = ", ".join(permit.coins)
    findings: list[Finding] = []
    for av in view.accounts:
        name = av.account.id
        if av.last is None or not _account_fresh(av, settings):
            findings.append(out.unknown(name, _account_stale(av)))
            continue
        ticker = av.last.coin.upper()
        if ticker in permit.coins:
            findings.append(out.make(name, "ok", ticker, coins, f"account {name} mines permitted {ticker}"))
        elif av.last.hashrate_hs is None:
            findings.append(out.unknown(name, f"account {name} on {ticker} reports no hashrate"))
        elif av.last.hashrate_hs > 0:
            evidence = (
                f"account {name} ({av.account.kind}) hashing {_hs(av.last.hashrate_hs)} on {ticker} at "
                f"{_utc(av.last.observed_at)}; permit {permit.version} allows {coins}"
            )
            findings.append(out.make(name, "violation", ticker, coins, evidence))
        else:
            findings.append(out.make(name, "ok", ticker, coins, f"account {name} on {ticker} is not hashing"))
    return _or_summary(out, findings, False, "", "the group has no pool account")


def hashrate_quota(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """The group's mean pool-reported hashrate over `hashrate_window_s` above the quota plus tolerance.

    Every account's hashrate counts (`pool_total_hs`), permitted pool or not: the quota caps the group's
    output. value = the mean (H/s), limit = max_hashrate × (1 + hashrate_tolerance). No quota → no finding.
    """
    out = _Out.of(view, "hashrate_quota")
    permit = view.permit
    if permit is None:
        return out.no_permit()
    if permit.max_hashrate is None:
        return []
    window = settings.hashrate_window_s
    pairs = _window(view.history, view.now, window, lambda s: s.pool_total_hs)
    if not _enough(pairs, view, window, settings):
        return [
            out.unknown("", f"pool hashrate known for too little of the last {window:.0f} s ({len(pairs)} samples)")
        ]
    mean = statistics.fmean(value for _, value in pairs)
    limit = permit.max_hashrate * (1 + settings.hashrate_tolerance)
    status: Status = "violation" if mean > limit else "ok"
    evidence = (
        f"mean pool hashrate {_hs(mean)} over {len(pairs)} samples of the last {window:.0f} s to {_utc(view.now)}; "
        f"permit {permit.version} quota {_hs(permit.max_hashrate)} + {settings.hashrate_tolerance:.0%}"
    )
    return [out.make("", status, mean, limit, evidence)]


def power_quota(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """The fresh miners' summed power draw above the permit's `max_power`, else the sites' connected capacity.

    Only miners that report power are summed, so the value is a lower bound: over the limit is a violation
    for sure; under it is ok only when every miner reported, else unknown. No fresh miner reporting
    power → unknown; neither a permit quota nor a site capacity → no finding.
    """
    out = _Out.of(view, "power_quota")
    permit = view.permit
    sites = view.group.spec.sites
    capacities = [site.capacity for site in sites if site.capacity is not None]
    if permit is not None and permit.max_power is not None:
        limit, source = permit.max_power, f"permit {permit.version} power quota {_w(permit.max_power)}"
    elif capacities:
        limit, source = sum(capacities), f"connected capacity {_w(sum(capacities))} of {len(capacities)} sites"
    else:
        return []
    reporting = [
        dv.last.power_w
        for dv in view.devices
        if dv.last is not None and _device_fresh(dv, settings) and dv.last.power_w is not None
    ]
    if not reporting:
        return [out.unknown("", f"no fresh miner reports power (of {len(view.devices)} miners); {source}")]
    total = sum(reporting)
    status: Status = "violation" if total > limit else "ok"
    if status == "ok" and len(reporting) < len(view.devices):
        # Under the limit with some miners silent or stale is not a verdict: the sum is only a lower bound.
        status = "unknown"
    evidence = f"{_w(total)} drawn by {len(reporting)} of {len(view.devices)} miners at {_utc(view.now)}; {source}"
    return [out.make("", status, total, limit, evidence)]


@dataclass(frozen=True, slots=True)
class _Sent:
    """One payout as judged: when, how much, which account, under which version, declared then or not."""

    at: int
    sats: int
    account: str
    ref: str
    version: str | None
    declared: bool


def _judge_payouts(out: _Out, address: str, sent: list[_Sent]) -> Finding:
    undeclared = sorted((p for p in sent if not p.declared), key=lambda p: p.at)
    judged = undeclared or sorted(sent, key=lambda p: p.at)
    sats = sum(p.sats for p in judged)
    version = judged[-1].version
    accounts = ", ".join(sorted({p.account for p in judged}))
    listed = _listing([f"{p.ref} at {_utc(p.at)}" for p in judged], 3)
    where = f"{len(judged)} payouts, {sats} sats from {accounts}: {listed}"
    if not undeclared:
        return out.make(address, "ok", float(sats), 0.0, f"{where}; declared", version)
    by = f"permit {version} in force then" if version else "no permit in force then"
    return out.make(address, "violation", float(sats), 0.0, f"{where}; not declared by {by}", version)


def payout_address(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Payouts to an address the permit did not declare, and undeclared payout addresses set at the pool.

    A payout is judged by the permit version in force when it was sent (the calendar day in the group's
    zone), so a payout just before a midnight renewal answers to the old version. Subject = the normalized
    address; value = the sum in sats of its undeclared payouts, limit 0; permit_version = the version that
    judged the latest of them (None: no version was in force then, so nothing was declared). Payouts older
    than `payout_lookback_s` are not judged, so an alert on a past payout resolves; payouts without an
    address are skipped (the pool did not say where they went). The address configured at the pool (subject
    "<account>:configured", value = the address) is judged against the version in force now, before any
    payout. Stale accounts are left to collector_blind; with no fresh account at all the answer is unknown.
    """
    out = _Out.of(view, "payout_address")
    group = view.group
    lookback = settings.payout_lookback_s
    permit_now = view.permit
    declared_now = declared_addresses(permit_now)
    sent: dict[str, list[_Sent]] = {}
    findings: list[Finding] = []
    fresh = [(av, av.last) for av in view.accounts if av.last is not None and _account_fresh(av, settings)]
    for av, snapshot in fresh:
        for payout in snapshot.payouts:
            if payout.address is None or (lookback is not None and payout.sent_at < view.now - lookback):
                continue
            then = group.permit_at(datetime.fromtimestamp(payout.sent_at, UTC))
            address = normalize_address(payout.address)
            sent.setdefault(address, []).append(
                _Sent(
                    at=payout.sent_at,
                    sats=payout.amount_sats,
                    account=av.account.id,
                    ref=payout.txid or payout.event_id,
                    version=then.version if then else None,
                    declared=address in declared_addresses(then),
                )
            )
        configured = snapshot.settings.payout_address if snapshot.settings else None
        if configured:
            address = normalize_address(configured)
            subject = f"{av.account.id}:configured"
            where = f"account {av.account.id} ({av.account.kind}) is set to pay out to {address} at the pool "
            where += f"(seen {_utc(snapshot.observed_at)})"
            if address in declared_now:
                findings.append(out.make(subject, "ok", address, None, f"{where}: declared"))
            else:
                by = f"permit {permit_now.version}" if permit_now else "any permit in force"
                findings.append(out.make(subject, "violation", address, None, f"{where}: not declared by {by}"))
    findings.extend(_judge_payouts(out, address, payouts) for address, payouts in sorted(sent.items()))
    stale = [_account_stale(av) for av in view.accounts if av.last is None or not _account_fresh(av, settings)]
    if stale and findings:
        # A stale account's payouts are out of sight, not gone: its open alerts must neither resolve nor fire.
        findings.append(out.unknown("", "payouts of stale accounts are not known: " + _listing(stale)))
    return _or_summary(
        out,
        findings,
        bool(fresh),
        f"no payout or configured payout address in {len(fresh)} fresh pool accounts",
        "no fresh pool account snapshot: " + (_listing([_account_stale(a) for a in view.accounts]) or "none"),
    )


def _site_bans(site: Site, bans: Sequence[Ban], permit: PermitVersion | None, at: datetime) -> tuple[list[str], bool]:
    """The regional bans covering `site` (described) and whether the permit's own window covers it, apart.

    `site_restrictions` folds a seasonal ban and a permit window into one `blackout` flag; the isolated-
    generation exemption applies to the first only, so each is asked for separately here.
    """
    regional = site_restrictions(site, list(bans), None, at)
    kinds = {ban.id: ban.kind for ban in bans}
    described = [f"{kinds.get(ban_id, 'regional')} ban {ban_id}" for ban_id in regional.ban_ids]
    own = permit is not None and site_restrictions(site, [], permit, at).blackout
    return described, own


def blackout(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Mining at a site under a regional ban (full or seasonal) or in one of the permit's blackout windows.

    Judged per site (subject = site id) in the site's local time. A site with isolated generation is exempt
    from regional bans, not from the permit's own windows. Value = the site's hashrate (its miners', else its
    pool accounts'), limit 0. Sites with no source attributed to them are not judged (nothing could show it).
    """
    out = _Out.of(view, "blackout")
    permit = view.permit
    moment = view.moment
    findings: list[Finding] = []
    for site in view.group.spec.sites:
        act = _activity(view, settings, site.id)
        if act.sources == 0:
            continue
        regional, own = _site_bans(site, view.bans, permit, moment)
        reasons = [] if site.isolated_generation else list(regional)
        if own and permit is not None:
            reasons.append(f"a blackout window of permit {permit.version}")
        local = _local(view.now, site.timezone)
        if reasons:
            why = f"at site {site.id} ({site.region}) on {local} under {' and '.join(reasons)}"
            findings.append(_forbidden_activity(out, site.id, act, why, 0.0))
        elif not act.seen:
            findings.append(out.unknown(site.id, f"no fresh data for site {site.id}: {_listing(act.blind)}"))
        else:
            exempt = f" ({' and '.join(regional)} exempt: isolated generation)" if regional else ""
            evidence = f"site {site.id} ({site.region}) has no blackout on {local}{exempt}"
            findings.append(out.make(site.id, "ok", act.hashrate_hs, None, evidence))
    return _or_summary(out, findings, False, "", "no pool account or miner is attributed to any site")


def region(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Mining at a site whose region the permit does not list (subject = site id; value = the region code).

    Not judged when the permit lists no regions; sites with no source attributed to them are not judged.
    """
    out = _Out.of(view, "region")
    permit = view.permit
    if permit is None:
        return out.no_permit()
    if not permit.regions:
        return []
    regions = ", ".join(permit.regions)
    findings: list[Finding] = []
    for site in view.group.spec.sites:
        act = _activity(view, settings, site.id)
        if act.sources == 0:
            continue
        if site.region not in permit.regions:
            why = f"at site {site.id} in {site.region} on {_utc(view.now)}; permit {permit.version} allows {regions}"
            verdict = _forbidden_activity(out, site.id, act, why, regions)
            findings.append(replace(verdict, value=site.region) if verdict.status == "violation" else verdict)
        elif act.seen:
            findings.append(
                out.make(site.id, "ok", site.region, regions, f"site {site.id} is in permitted {site.region}")
            )
        else:
            findings.append(out.unknown(site.id, f"no fresh data for site {site.id}: {_listing(act.blind)}"))
    return _or_summary(out, findings, False, "", "no pool account or miner is attributed to any site")


def device_count(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """More miners hashing than the permit registers (value = hashing miners, limit = registered).

    Stale miners might be hashing too: the count is a lower bound, so it is ok only when even every stale
    miner hashing would stay within the limit, and unknown in between. No miners polled, or no registered
    count in the permit → no finding.
    """
    out = _Out.of(view, "device_count")
    if not view.devices:
        return []
    permit = view.permit
    if permit is None:
        return out.no_permit()
    if permit.registered_devices is None:
        return []
    registered = permit.registered_devices
    fresh = [dv for dv in view.devices if dv.last is not None and _device_fresh(dv, settings)]
    hashing = [dv.name for dv in fresh if dv.last is not None and (dv.last.hashrate_hs or 0.0) > 0]
    unseen = len(view.devices) - len(fresh) + sum(1 for dv in fresh if dv.last and dv.last.hashrate_hs is None)
    where = f"{len(hashing)} miners hashing at {_utc(view.now)} ({len(fresh)} of {len(view.devices)} fresh)"
    limit_text = f"permit {permit.version} registers {registered}"
    if len(hashing) > registered:
        return [out.make("", "violation", float(len(hashing)), float(registered), f"{where}; {limit_text}")]
    if not fresh or len(hashing) + unseen > registered:
        return [out.unknown("", f"{where}; {unseen} miners unseen could exceed the {registered} registered")]
    return [out.make("", "ok", float(len(hashing)), float(registered), f"{where}; {limit_text}")]


def unaccounted_hashrate(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Miners reporting more hashrate than the permitted pools credit, for the whole window.

    A violation only when every sample of the last `unaccounted_window_s` with both figures (covering at
    least half the window) has device_hs − pool_permitted_hs > unaccounted_tolerance × device_hs; one
    sample within tolerance clears it (pool-side smoothing lags miners). value = the latest difference (H/s),
    limit = the tolerance applied to the latest device hashrate (H/s).
    """
    out = _Out.of(view, "unaccounted_hashrate")
    window = settings.unaccounted_window_s
    samples = [
        (s.at, (s.device_hs, s.pool_permitted_hs))
        for s in view.history
        if s.device_hs is not None and s.pool_permitted_hs is not None and view.now - window <= s.at <= view.now
    ]
    pairs = [(at, device - pool) for at, (device, pool) in samples]
    if not _enough(pairs, view, window, settings):
        return [
            out.unknown("", f"device and permitted-pool hashrate both known for too little of the last {window:.0f} s")
        ]
    tolerance = settings.unaccounted_tolerance
    sustained = all(device - pool > tolerance * device for _, (device, pool) in samples)
    _, (device, pool) = samples[-1]
    status: Status = "violation" if sustained else "ok"
    evidence = (
        f"miners {_hs(device)} vs permitted pools {_hs(pool)} at {_utc(samples[-1][0])}; "
        f"{'every one' if sustained else 'not every one'} of {len(samples)} samples in the last {window:.0f} s "
        f"beyond {tolerance:.0%}"
    )
    return [out.make("", status, device - pool, tolerance * device, evidence)]


def collector_blind(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Sources the collector cannot see: any pool account stale or never polled, or too many miners.

    Fires when any account is stale or more than `blind_fraction` of the miners are. value = the number of
    stale sources, limit = the number tolerated (miners only; no account may be stale). A group with no
    source configured is unknown: there is nothing to be blind to, and nothing to call compliant either.
    """
    out = _Out.of(view, "collector_blind")
    if not view.accounts and not view.devices:
        return [out.unknown("", "the group has no pool account or miner configured")]
    accounts = [_account_stale(av) for av in view.accounts if not _account_fresh(av, settings)]
    devices = [_device_stale(dv) for dv in view.devices if not _device_fresh(dv, settings)]
    tolerated = int(settings.blind_fraction * len(view.devices))
    blind = bool(accounts) or len(devices) > settings.blind_fraction * len(view.devices)
    counts = (
        f"{len(accounts)} of {len(view.accounts)} pool accounts and {len(devices)} of {len(view.devices)} miners "
        f"stale (over {settings.stale_after_s:.0f} s) at {_utc(view.now)}"
    )
    stale = accounts + devices
    evidence = f"{counts}: {_listing(stale)}" if stale else counts
    return [out.make("", "violation" if blind else "ok", float(len(stale)), float(tolerated), evidence)]


# --- operational rules -------------------------------------------------------------------------------------


def workers_offline(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """Workers the pool reports offline whose last share is older than `offline_after_s` (per account).

    Offline workers with no last-share time are not counted (how long they have been down is not known) but
    are named in the evidence. An account whose worker list failed to load, or that reports inactive
    workers without a list, is unknown. value = the count, limit 0.
    """
    out = _Out.of(view, "workers_offline")
    findings: list[Finding] = []
    for av in view.accounts:
        name = av.account.id
        snapshot = av.last
        if snapshot is None or not _account_fresh(av, settings):
            findings.append(out.unknown(name, _account_stale(av)))
            continue
        if any(issue.section == "workers" for issue in snapshot.issues):
            findings.append(out.unknown(name, f"account {name}: the worker list failed to load"))
            continue
        if not snapshot.workers and (snapshot.workers_inactive or snapshot.workers_active is None):
            findings.append(out.unknown(name, f"account {name} gives no worker list with last-share times"))
            continue
        down = [
            w
            for w in snapshot.workers
            if w.online is False
            and w.last_share_ts is not None
            and view.now - w.last_share_ts > settings.offline_after_s
        ]
        undated = [w.name for w in snapshot.workers if w.online is False and w.last_share_ts is None]
        names = _listing([f"{w.name} (last share {_utc(w.last_share_ts or 0)})" for w in down])
        evidence = f"account {name}: {len(down)} of {len(snapshot.workers)} workers offline over "
        evidence += f"{settings.offline_after_s:.0f} s at {_utc(view.now)}" + (f": {names}" if names else "")
        if undated:
            evidence += f"; {len(undated)} offline with no last share: {_listing(undated)}"
        findings.append(out.make(name, "violation" if down else "ok", float(len(down)), 0.0, evidence))
    return _or_summary(out, findings, False, "", "the group has no pool account")


def hashrate_drop(view: GroupView, settings: RuleSettings) -> list[Finding]:
    """The latest pool hashrate below (1 − drop_fraction) × its median over `drop_window_s`.

    Needs a fresh latest sample (within `stale_after_s` of now) and samples covering half the window.
    value = the latest hashrate, limit = the threshold (both H/s). A zero baseline cannot drop: ok.
    """
    out = _Out.of(view, "hashrate_drop")
    window = settings.drop_window_s
    pairs = _window(view.history, view.now, window, lambda s: s.pool_total_hs)
    if not pairs or view.now - pairs[-1][0] > settings.stale_after_s:
        return [out.unknown("", "no fresh pool hashrate sample")]
    if not _enough(pairs, view, window, settings):
        return [out.unknown("", f"pool hashrate known for too little of the last {window:.0f} s to set a baseline")]
    baseline = statistics.median(value for _, value in pairs)
    at, latest = pairs[-1]
    limit = (1 - settings.drop_fraction) * baseline
    status: Status = "violation" if latest < limit else "ok"
    evidence = (
        f"pool hashrate {_hs(latest)} at {_utc(at)} against a median of {_hs(baseline)} over {len(pairs)} "
        f"samples of the last {window:.0f} s (alert below {1 - settings.drop_fraction:.0%})"
    )
    return [out.make("", status, latest, limit, evidence)]


# --- registry and evaluation -------------------------------------------------------------------------------


RULES: dict[str, Rule] = {
    "permit_validity": Rule(permit_validity, "critical", summary="mining without a valid permit"),
    "pool_whitelist": Rule(pool_whitelist, "critical", summary="non-permitted pool, stratum host or user"),
    "coin": Rule(coin, "critical", summary="mining a coin the permit does not list"),
    "hashrate_quota": Rule(hashrate_quota, "critical", summary="rolling mean hashrate above the quota"),
    "power_quota": Rule(power_quota, "critical", summary="power draw above the quota or connected capacity"),
    "payout_address": Rule(payout_address, "critical", summary="payout to, or configured, undeclared address"),
    "blackout": Rule(blackout, "critical", summary="mining under a regional ban or a permit blackout window"),
    "region": Rule(region, "critical", summary="mining at a site outside the permitted regions"),
    "device_count": Rule(device_count, "critical", summary="more miners hashing than registered"),
    "unaccounted_hashrate": Rule(
        unaccounted_hashrate, "critical", summary="miners out-hash the permitted pools, sustained"
    ),
    "collector_blind": Rule(collector_blind, "warning", summary="sources stale: the permit cannot be judged"),
    "workers_offline": Rule(workers_offline, "warning", operational=True, summary="workers offline too long"),
    "hashrate_drop": Rule(hashrate_drop, "warning", operational=True, summary="hashrate dropped below baseline"),
}
"""Every rule by its stable name (an alert label), in evaluation order."""


def evaluate(view: GroupView, settings: RuleSettings, rules: Mapping[str, Rule] | None = None) -> list[Finding]:
    """Run every rule (default: `RULES`, in order) on `view` and return all their findings.

    A rule that raises yields one `unknown` finding (subject "") naming the exception's type, not its
    message (which could carry data that does not belong in an alert); the other rules still run, because
    one rule's bug must not blind the group's other alerts. The unknown keeps that rule's open alerts from
    resolving as if compliant.

    A rule with nothing to judge (the permit in force sets no quota, no regions; the group has no miners)
    says so with one `ok` finding: an alert it raised under an earlier permit version must then resolve,
    not stay open because the rule fell silent.
    """
    findings: list[Finding] = []
    for name, rule in (RULES if rules is None else rules).items():
        try:
            judged = rule.check(view, settings)
            findings.extend(judged or [_nothing_to_judge(view, name, rule)])
        except Exception as exc:  # a rule's bug must not stop the others: see the docstring
            findings.append(
                Finding(
                    group_id=view.group.id,
                    rule=name,
                    subject="",
                    status="unknown",
                    severity=rule.severity,
                    value=None,
                    limit=None,
                    evidence=f"rule {name} failed with {type(exc).__name__}; it could not judge this round",
                    permit_version=_version(view),
                    operational=rule.operational,
                )
            )
    return findings


def _nothing_to_judge(view: GroupView, name: str, rule: Rule) -> Finding:
    return Finding(
        group_id=view.group.id,
        rule=name,
        subject="",
        status="ok",
        severity=rule.severity,
        value=None,
        limit=None,
        evidence=f"nothing for {name} to judge: the permit in force sets no limit for it, or nothing it covers exists",
        permit_version=_version(view),
        operational=rule.operational,
    )


def _version(view: GroupView) -> str | None:
    try:
        permit = view.permit
    except Exception:  # the failure finding must not fail in turn
        return None
    return permit.version if permit else None
