"""Every builder in collector.sinks.points writes lines the real influxd accepts, with the catalogue's types."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.compliance.findings import AlertEvent, Finding, GroupSample, PoolShare, RoundSummary, rule_statuses
from collector.models import (
    DevicePool,
    DeviceSnapshot,
    Earning,
    HashrateSample,
    NetworkSnapshot,
    Payout,
    PoolAccountSnapshot,
    PoolSettings,
    WorkerStats,
)
from collector.sinks.influx import V1Transport, quote_ident
from collector.sinks.points import (
    CATALOGUE,
    DeviceTags,
    PoolAccountTags,
    compliance_lines,
    device_lines,
    network_lines,
    permit_line,
    pool_account_lines,
    site_line,
    source_health_line,
    violation_line,
)

pytestmark = pytest.mark.integration

AT = 1_700_000_000
INFLUX_TYPES = {float: "float", int: "integer", str: "string"}
TAGS = PoolAccountTags(group_id="grp-1", pool="braiins", account="acct 1", coin="BTC")


def _full_snapshot() -> PoolAccountSnapshot:
    """A snapshot with every optional section filled, so every pool measurement and field is written."""
    return PoolAccountSnapshot(
        observed_at=AT,
        coin="BTC",
        hashrate_hs=1.25e14,
        hashrate_1h_hs=1.2e14,
        hashrate_24h_hs=1.1e14,
        workers_active=2,
        workers_inactive=1,
        balance_sats=12_345_678,
        workers=(
            WorkerStats("rig-1", True, 6.5e13, 6.4e13, 6.0e13, AT - 30),
            WorkerStats("rig,2 \\", False, 0.0, 0.0, 1.0e12, AT - 86_400),
        ),
        earnings=(
            Earning(AT - 86_400, 51_000, "daily", "e-1"),
            Earning(AT - 86_400, 625_000_000, "block", "e-2"),
        ),
        payouts=(Payout(AT - 3600, 10_000_000, "bc1qdeclared", "ab" * 32, "confirmed", "p-1"),),
        settings=PoolSettings("bc1qundeclared"),
        hashrate_history=(HashrateSample(AT - 1200, 1.2e14, 600), HashrateSample(AT - 600, 0.0, 600)),
    )


def _all_builder_lines() -> Iterator[str]:
    """One call of every builder, with every optional field present."""
    yield from pool_account_lines(_full_snapshot(), TAGS, lambda address, at: address == "bc1qdeclared")
    device = DeviceSnapshot(
        observed_at=AT,
        model='Antminer "S19j" Pro',
        hashrate_hs=1.02e14,
        power_w=3250.0,
        temp_max_c=75.0,
        fan_min_rpm=5760,
        uptime_s=185_806,
        online=True,
        pools=(DevicePool(0, "stratum+tcp://pool, x:3333", 'acct.w "1"', True, 29_452, 229),),
    )
    yield from device_lines(device, DeviceTags("grp-1", "site-a", "rack 1,m=1"))
    yield from network_lines(NetworkSnapshot(AT, "BTC", difficulty=1.5e14, hashrate_hs=1.1e21, block_reward_sats=3))
    finding = Finding(
        "grp-1", "pool_whitelist", "acct 1", "violation", "critical", 1.5e14, 1e14, 'on "x", y', "2024-01"
    )
    yield violation_line(AlertEvent(finding, "firing", AT, AT - 60))
    yield permit_line("grp-1", "2024-01", max_hashrate_hs=2.0e15, max_power_w=3.5e6, valid=True, at=AT)
    yield site_line("grp-1", "site-a", "RU-IRK", capacity_w=4.0e6, blackout=False, banned=True, at=AT)
    yield source_health_line(
        "grp-1",
        "braiins",
        "acct 1",
        success=False,
        stale=True,
        duration_s=0.25,
        data_age_s=120.0,
        error_kind="unreachable",
        at=AT,
    )
    yield from compliance_lines(
        RoundSummary(
            group_id="grp-1",
            at=AT,
            sample=GroupSample(AT, pool_permitted_hs=1.0e15, pool_total_hs=1.5e15, device_hs=1.6e15, power_w=5.0e4),
            quota_hs=2.0e15,
            pools=(PoolShare("braiins", True, 1.0e15), PoolShare("f2 pool,x", False, 5.0e14)),
            rules=rule_statuses([finding]),
        )
    )


def _stored_schema(db: V1Transport) -> dict[str, dict[str, str]]:
    """measurement -> field key -> stored type, from SHOW FIELD KEYS."""
    return {series.name: dict(series.rows) for series in db.query("SHOW FIELD KEYS")}


def test_every_builder_is_accepted_with_catalogue_types(influx_db: V1Transport) -> None:
    """All builder output is accepted in one write, and every catalogue field is stored with its type."""
    lines = list(_all_builder_lines())

    influx_db.write(lines)

    expected = {
        name: {key: INFLUX_TYPES[kind] for key, kind in measurement.fields.items()}
        for name, measurement in CATALOGUE.items()
    }
    assert _stored_schema(influx_db) == expected


def test_builder_tags_are_the_catalogue_tags(influx_db: V1Transport) -> None:
    """Each measurement's stored tag keys are exactly the catalogue's (no field leaked into a tag)."""
    influx_db.write(list(_all_builder_lines()))

    for name, measurement in CATALOGUE.items():
        keys = {row[0] for series in influx_db.query(f"SHOW TAG KEYS FROM {quote_ident(name)}") for row in series.rows}
        assert keys == set(measurement.tags), name


def test_builder_values_read_back(influx_db: V1Transport) -> None:
    """Spot-check values and event timestamps: two earnings in one second stay two points."""
    influx_db.write(list(_all_builder_lines()))

    earnings = influx_db.query('SELECT "amount_sats" FROM "pool_earning"')[0].column("amount_sats")
    workers = influx_db.query('SELECT "worker", "online" FROM "pool_worker"')[0].records()
    payout = influx_db.query('SELECT * FROM "pool_payout"')[0].records()[0]

    assert sorted(earnings) == [51_000, 625_000_000]
    assert {row["worker"]: row["online"] for row in workers} == {"rig-1": 1, "rig,2 ": 0}
    assert (payout["address"], payout["declared"], payout["txid"]) == ("bc1qdeclared", 1, "ab" * 32)


def test_float_fields_stay_float_when_given_ints(influx_db: V1Transport) -> None:
    """A whole-number hashrate or quota (an int, as JSON gives it) must still be written as a float."""
    influx_db.write(list(_all_builder_lines()))
    snapshot = PoolAccountSnapshot(
        observed_at=AT + 60, coin="BTC", hashrate_hs=0, workers=(WorkerStats("rig-1", True, 0),)
    )

    influx_db.write(list(pool_account_lines(snapshot, TAGS, lambda address, at: False)))
    influx_db.write([permit_line("grp-1", "2024-01", max_hashrate_hs=2, max_power_w=3, valid=True, at=AT + 60)])


@pytest.mark.parametrize("name", ["", "\\"])
def test_worker_with_empty_name_is_still_writable(influx_db: V1Transport, name: str) -> None:
    """A worker the pool reports without a usable name must not break the batch."""
    snapshot = PoolAccountSnapshot(observed_at=AT, coin="BTC", workers=(WorkerStats(name, True, 1.0),))

    influx_db.write(list(pool_account_lines(snapshot, TAGS, lambda address, at: False)))
