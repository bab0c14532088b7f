"""The one module that owns measurement, tag and field names, and turns snapshots into line protocol.

`CATALOGUE` is the contract from design.md: every measurement with its tag keys and the type of each field.
Tests hold every builder's output to it, and every name to the InfluxQL keyword list.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector.models import DeviceSnapshot, NetworkSnapshot, PoolAccountSnapshot
from collector.sinks.lineprotocol import build_line, line, series_key, tag_pair

if TYPE_CHECKING:  # the compliance model pulls in the whole config; the sink only needs the type
    from collector.compliance.findings import AlertEvent, RoundSummary

NS_PER_S = 1_000_000_000

POOL_ACCOUNT = "pool_account"
POOL_WORKER = "pool_worker"
POOL_EARNING = "pool_earning"
POOL_PAYOUT = "pool_payout"
POOL_SETTINGS = "pool_settings"
POOL_HASHRATE_HISTORY = "pool_hashrate_history"
DEVICE = "device"
DEVICE_POOL = "device_pool"
NETWORK = "network"
PERMIT = "permit"
SITE = "site"
SOURCE_HEALTH = "source_health"
VIOLATION = "violation"
COMPLIANCE = "compliance"
COMPLIANCE_RULE = "compliance_rule"
COMPLIANCE_POOL = "compliance_pool"


@dataclass(frozen=True, slots=True)
class Measurement:
    """A measurement's tag keys and its fields with their one Python type (float, int or str)."""

    name: str
    tags: tuple[str, ...]
    fields: dict[str, type]


CATALOGUE: dict[str, Measurement] = {
    m.name: m
    for m in (
        Measurement(
            POOL_ACCOUNT,
            ("group_id", "pool", "account", "coin"),
            {
                "hashrate_hs": float,
                "hashrate_1h_hs": float,
                "hashrate_24h_hs": float,
                "workers_active": int,
                "workers_inactive": int,
                "balance_sats": int,
            },
        ),
        Measurement(
            POOL_WORKER,
            ("group_id", "pool", "account", "worker"),
            {
                "hashrate_hs": float,
                "hashrate_1h_hs": float,
                "hashrate_24h_hs": float,
                "online": int,
                "last_share_ts": int,
            },
        ),
        Measurement(POOL_EARNING, ("group_id", "pool", "account", "coin"), {"amount_sats": int}),
        Measurement(
            POOL_PAYOUT,
            ("group_id", "pool", "account", "coin"),
            {"amount_sats": int, "address": str, "txid": str, "declared": int},
        ),
        Measurement(POOL_SETTINGS, ("group_id", "pool", "account", "coin"), {"payout_address": str, "declared": int}),
        # The pool's own hashrate history, one point per bin it returned after a gap in polling (backfill).
        Measurement(
            POOL_HASHRATE_HISTORY, ("group_id", "pool", "account", "coin"), {"hashrate_hs": float, "window_s": int}
        ),
        Measurement(
            DEVICE,
            ("group_id", "site", "device", "model"),
            {
                "hashrate_hs": float,
                "power_w": float,
                "temp_max_c": float,
                "fan_min_rpm": float,
                "uptime_s": float,
                "online": int,
            },
        ),
        Measurement(
            DEVICE_POOL,
            ("group_id", "site", "device", "slot"),
            {"url": str, "stratum_user": str, "active": int, "accepted": int, "rejected": int},
        ),
        Measurement(NETWORK, ("coin",), {"difficulty": float, "hashrate_hs": float, "block_reward_sats": int}),
        Measurement(
            PERMIT,
            ("group_id", "permit_version"),
            {"max_hashrate_hs": float, "max_power_w": float, "valid": int},
        ),
        Measurement(SITE, ("group_id", "site", "region"), {"capacity_w": float, "blackout": int, "banned": int}),
        Measurement(
            VIOLATION,
            ("group_id", "rule", "severity"),
            {"state": str, "value": float, "threshold": float, "subject": str, "message": str},
        ),
        Measurement(
            COMPLIANCE,
            ("group_id",),
            {
                "status_code": int,
                "violations": int,
                "unknowns": int,
                "pool_permitted_hs": float,
                "pool_total_hs": float,
                "device_hs": float,
                "unaccounted_hs": float,
                "power_w": float,
                "quota_hs": float,
                "quota_utilisation": float,
            },
        ),
        Measurement(
            COMPLIANCE_RULE,
            ("group_id", "rule", "severity"),
            {"status_code": int, "violations": int, "unknowns": int},
        ),
        Measurement(COMPLIANCE_POOL, ("group_id", "pool", "permitted"), {"hashrate_hs": float}),
        Measurement(
            SOURCE_HEALTH,
            ("group_id", "kind", "target"),
            {"success": int, "stale": int, "duration_s": float, "data_age_s": float, "error_kind": str},
        ),
    )
}


@dataclass(frozen=True, slots=True)
class PoolAccountTags:
    """Who a pool snapshot belongs to: the tag values shared by its points."""

    group_id: str
    pool: str
    account: str
    coin: str


UNNAMED_WORKER = "(unnamed)"


def _float(value: float | None) -> float | None:
    """Keep a float field a float even when a whole number arrives as int (a type conflict drops a batch)."""
    return None if value is None else float(value)


def seconds_ns(seconds: int) -> int:
    """A periodic sample's timestamp: whole seconds, in nanoseconds."""
    return seconds * NS_PER_S


def event_time_ns(seconds: int, event_id: str) -> int:
    """An event's timestamp: its second plus a sub-second offset derived from its id.

    Two distinct events in one second then never overwrite each other, and a replay of the same event lands
    on the same timestamp and overwrites itself.
    """
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return seconds * NS_PER_S + int.from_bytes(digest, "big") % NS_PER_S


def pool_account_lines(
    snapshot: PoolAccountSnapshot, tags: PoolAccountTags, is_declared: Callable[[str, int], bool]
) -> Iterator[str]:
    """Yield the points of one pool-account snapshot: account, workers, earnings, payouts, settings, and the
    pool's hashrate history bins (each at the bin's own time, so a second backfill of a bin overwrites it).

    `is_declared(address, at)` says whether the permit in force at unix time `at` declares the address: a
    payout is judged by the permit of its own time, so a later permit version never rewrites history.
    """
    account_tags = {"group_id": tags.group_id, "pool": tags.pool, "account": tags.account, "coin": tags.coin}
    sample_ns = seconds_ns(snapshot.observed_at)
    account_fields = {
        "hashrate_hs": _float(snapshot.hashrate_hs),
        "hashrate_1h_hs": _float(snapshot.hashrate_1h_hs),
        "hashrate_24h_hs": _float(snapshot.hashrate_24h_hs),
        "workers_active": snapshot.workers_active,
        "workers_inactive": snapshot.workers_inactive,
        "balance_sats": snapshot.balance_sats,
    }
    if any(value is not None for value in account_fields.values()):
        yield line(series_key(POOL_ACCOUNT, account_tags), account_fields, sample_ns)

    # "worker" sorts after the other tag keys, so the shared part of the series key is rendered once.
    worker_series = series_key(POOL_WORKER, {"group_id": tags.group_id, "pool": tags.pool, "account": tags.account})
    for worker in snapshot.workers:
        worker_fields = {
            "hashrate_hs": _float(worker.hashrate_hs),
            "hashrate_1h_hs": _float(worker.hashrate_1h_hs),
            "hashrate_24h_hs": _float(worker.hashrate_24h_hs),
            "online": None if worker.online is None else int(worker.online),
            "last_share_ts": worker.last_share_ts,
        }
        if any(value is not None for value in worker_fields.values()):
            worker_tag = tag_pair("worker", worker.name) or tag_pair("worker", UNNAMED_WORKER)
            yield line(f"{worker_series},{worker_tag}", worker_fields, sample_ns)

    if snapshot.earnings:
        earning_series = series_key(POOL_EARNING, account_tags)
        for earning in snapshot.earnings:
            yield line(
                earning_series,
                {"amount_sats": earning.amount_sats},
                event_time_ns(earning.credited_at, earning.event_id),
            )

    if snapshot.payouts:
        payout_series = series_key(POOL_PAYOUT, account_tags)
        for payout in snapshot.payouts:
            yield line(
                payout_series,
                {
                    "amount_sats": payout.amount_sats,
                    "address": payout.address,
                    "txid": payout.txid,
                    "declared": None if payout.address is None else int(is_declared(payout.address, payout.sent_at)),
                },
                event_time_ns(payout.sent_at, payout.event_id),
            )

    if snapshot.settings is not None and snapshot.settings.payout_address is not None:
        address = snapshot.settings.payout_address
        yield line(
            series_key(POOL_SETTINGS, account_tags),
            {"payout_address": address, "declared": int(is_declared(address, snapshot.observed_at))},
            sample_ns,
        )

    if snapshot.hashrate_history:
        history_series = series_key(POOL_HASHRATE_HISTORY, account_tags)
        for sample in snapshot.hashrate_history:
            yield line(
                history_series,
                {"hashrate_hs": float(sample.hashrate_hs), "window_s": sample.window_s},
                seconds_ns(sample.at),
            )


@dataclass(frozen=True, slots=True)
class DeviceTags:
    """Who a device snapshot belongs to."""

    group_id: str
    site: str
    device: str


UNKNOWN_MODEL = "unknown"


def device_lines(snapshot: DeviceSnapshot, tags: DeviceTags) -> Iterator[str]:
    """Yield one miner's `device` point and a `device_pool` point per configured pool slot."""
    at = seconds_ns(snapshot.observed_at)
    fields = {
        "hashrate_hs": _float(snapshot.hashrate_hs),
        "power_w": _float(snapshot.power_w),
        "temp_max_c": _float(snapshot.temp_max_c),
        "fan_min_rpm": _float(snapshot.fan_min_rpm),
        "uptime_s": _float(snapshot.uptime_s),
        "online": None if snapshot.online is None else int(snapshot.online),
    }
    device_tags = {"group_id": tags.group_id, "site": tags.site, "device": tags.device}
    if any(value is not None for value in fields.values()):
        yield build_line(DEVICE, {**device_tags, "model": snapshot.model or UNKNOWN_MODEL}, fields, at)
    for pool in snapshot.pools:
        pool_fields = {
            "url": pool.url,
            "stratum_user": pool.stratum_user,
            "active": None if pool.active is None else int(pool.active),
            "accepted": pool.accepted,
            "rejected": pool.rejected,
        }
        if any(value is not None for value in pool_fields.values()):
            yield build_line(DEVICE_POOL, {**device_tags, "slot": str(pool.slot)}, pool_fields, at)


def network_lines(snapshot: NetworkSnapshot) -> Iterator[str]:
    """Yield the chain's `network` point, if the source gave any figure."""
    fields = {
        "difficulty": _float(snapshot.difficulty),
        "hashrate_hs": _float(snapshot.hashrate_hs),
        "block_reward_sats": snapshot.block_reward_sats,
    }
    if any(value is not None for value in fields.values()):
        yield build_line(NETWORK, {"coin": snapshot.coin}, fields, seconds_ns(snapshot.observed_at))


def permit_line(
    group_id: str,
    permit_version: str,
    *,
    max_hashrate_hs: float | None,
    max_power_w: float | None,
    valid: bool,
    at: int,
) -> str:
    """The permit in force for a group at `at` (version "none" when no version covers it)."""
    return build_line(
        PERMIT,
        {"group_id": group_id, "permit_version": permit_version},
        {"max_hashrate_hs": _float(max_hashrate_hs), "max_power_w": _float(max_power_w), "valid": int(valid)},
        seconds_ns(at),
    )


def site_line(
    group_id: str, site: str, region: str, *, capacity_w: float | None, blackout: bool, banned: bool, at: int
) -> str:
    """A site's capacity and whether a regional blackout or ban applies to it at `at`."""
    return build_line(
        SITE,
        {"group_id": group_id, "site": site, "region": region},
        {"capacity_w": _float(capacity_w), "blackout": int(blackout), "banned": int(banned)},
        seconds_ns(at),
    )


def source_health_line(
    group_id: str,
    kind: str,
    target: str,
    *,
    success: bool,
    stale: bool,
    duration_s: float,
    data_age_s: float | None,
    error_kind: str | None,
    at: int,
) -> str:
    """The outcome of one poll of one source."""
    return build_line(
        SOURCE_HEALTH,
        {"group_id": group_id, "kind": kind, "target": target},
        {
            "success": int(success),
            "stale": int(stale),
            "duration_s": float(duration_s),
            "data_age_s": _float(data_age_s),
            "error_kind": error_kind,
        },
        seconds_ns(at),
    )


def _measured(value: float | str | None) -> float | None:
    """A finding's value or limit as a float field, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def violation_line(event: AlertEvent, *, note: str | None = None) -> str:
    """One alert transition as a `violation` point (state pending, firing, resolved or excused).

    A value or limit that is not a number (a pool name, an address) cannot go into the float fields, so it is
    appended to the message instead. `note` (an excuse's reason, say) is appended too. The time is the
    transition's second plus a sub-second offset derived from the alert and the transition: the series is
    (group_id, rule, severity), so two subjects changing in one second must not overwrite each other, while a
    replay of the same transition lands on the same timestamp.
    """
    finding = event.finding
    value, threshold = _measured(finding.value), _measured(finding.limit)
    extras = [
        f"{name}: {raw}"
        for name, raw, number in (("value", finding.value, value), ("limit", finding.limit, threshold))
        if raw is not None and number is None
    ]
    if note:
        extras.append(note)
    message = finding.evidence + (f" ({'; '.join(extras)})" if extras else "")
    event_id = f"{finding.group_id}\x1f{finding.rule}\x1f{finding.subject}\x1f{event.state}\x1f{event.started_at!r}"
    return build_line(
        VIOLATION,
        {"group_id": finding.group_id, "rule": finding.rule, "severity": finding.severity},
        {
            "state": event.state,
            "value": value,
            "threshold": threshold,
            "subject": finding.subject,
            "message": message,
        },
        event_time_ns(int(event.at), event_id),
    )


def compliance_lines(summary: RoundSummary) -> Iterator[str]:
    """A group's compliance round: its `compliance` totals, one `compliance_rule` point per rule, and one
    `compliance_pool` point per pool it has accounts at. `status_code`: 0 ok, 1 unknown, 2 violation."""
    at = seconds_ns(int(summary.at))
    group_id = summary.group_id
    sample = summary.sample
    yield build_line(
        COMPLIANCE,
        {"group_id": group_id},
        {
            "status_code": summary.status_code,
            "violations": summary.violations,
            "unknowns": summary.unknowns,
            "pool_permitted_hs": _float(sample.pool_permitted_hs),
            "pool_total_hs": _float(sample.pool_total_hs),
            "device_hs": _float(sample.device_hs),
            "unaccounted_hs": _float(summary.unaccounted_hs),
            "power_w": _float(sample.power_w),
            "quota_hs": _float(summary.quota_hs),
            "quota_utilisation": _float(summary.quota_utilisation),
        },
        at,
    )
    for rule in summary.rules:
        yield build_line(
            COMPLIANCE_RULE,
            {"group_id": group_id, "rule": rule.rule, "severity": rule.severity},
            {"status_code": rule.status_code, "violations": rule.violations, "unknowns": rule.unknowns},
            at,
        )
    for share in summary.pools:
        if share.hashrate_hs is not None:
            yield build_line(
                COMPLIANCE_POOL,
                {"group_id": group_id, "pool": share.pool, "permitted": "yes" if share.permitted else "no"},
                {"hashrate_hs": float(share.hashrate_hs)},
                at,
            )
