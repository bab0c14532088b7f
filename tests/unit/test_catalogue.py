"""The measurement catalogue: names safe in InfluxQL, one type per field, and builders that keep to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace

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
from collector.sinks.points import (
    CATALOGUE,
    NS_PER_S,
    DeviceTags,
    PoolAccountTags,
    compliance_lines,
    device_lines,
    event_time_ns,
    network_lines,
    permit_line,
    pool_account_lines,
    site_line,
    source_health_line,
    violation_line,
)
from unit.support import REPO, field_type, parse_line

# InfluxQL keywords, from the InfluxDB 1.x docs ("Influx Query Language reference", Keywords), plus `time`.
INFLUXQL_KEYWORDS = frozenset(
    """
    ALL ALTER ANY AS ASC BEGIN BY CREATE CONTINUOUS DATABASE DATABASES DEFAULT DELETE DESC DESTINATIONS
    DIAGNOSTICS DISTINCT DROP DURATION END EVERY EXPLAIN FIELD FOR FROM GRANT GRANTS GROUP GROUPS IN INF
    INSERT INTO KEY KEYS KILL LIMIT SHOW MEASUREMENT MEASUREMENTS NAME OFFSET ON ORDER PASSWORD POLICY
    POLICIES PRIVILEGES QUERIES QUERY READ REPLICATION RESAMPLE RETENTION REVOKE SELECT SERIES SET SHARD
    SHARDS SLIMIT SOFFSET STATS SUBSCRIPTION SUBSCRIPTIONS TAG TO USER USERS VALUES WHERE WITH WRITE TIME
    """.split()  # noqa: SIM905 - the list reads as the docs print it
)
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
FLAGS = {"online", "active", "declared", "valid", "success", "stale"}

ALL_NAMES = sorted({name for m in CATALOGUE.values() for name in (m.name, *m.tags, *m.fields)})


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_name_is_snake_case_and_not_an_influxql_keyword(name: str) -> None:
    assert SNAKE_CASE.match(name), name
    assert name.upper() not in INFLUXQL_KEYWORDS, name


def test_the_keyword_list_catches_the_names_design_md_warns_about() -> None:
    for name in ("group", "limit", "user", "key", "name", "values", "field", "tag", "duration", "end", "time"):
        assert name.upper() in INFLUXQL_KEYWORDS


@pytest.mark.parametrize("measurement", sorted(CATALOGUE))
def test_no_tag_key_is_also_a_field_key(measurement: str) -> None:
    entry = CATALOGUE[measurement]
    assert entry.name == measurement
    assert not set(entry.tags) & set(entry.fields)


@pytest.mark.parametrize(
    ("measurement", "field", "kind"),
    [(m.name, f, t) for m in CATALOGUE.values() for f, t in m.fields.items()],
)
def test_field_types_follow_the_unit_conventions(measurement: str, field: str, kind: type) -> None:
    """design.md: floats for measured quantities, integers for counts, money and 0/1 flags."""
    assert kind in (float, int, str)
    if field in FLAGS or field.endswith("_sats") or field.startswith("workers_"):
        assert kind is int
    if field.endswith(("_hs", "_w", "_wh", "_c")) or field in ("duration_s", "data_age_s", "uptime_s"):
        assert kind is float


def test_the_catalogue_keeps_design_md_tag_sets() -> None:
    expected = {
        "pool_account": {"group_id", "pool", "account", "coin"},
        "pool_worker": {"group_id", "pool", "account", "worker"},
        "pool_earning": {"group_id", "pool", "account", "coin"},
        "pool_payout": {"group_id", "pool", "account", "coin"},
        "pool_settings": {"group_id", "pool", "account", "coin"},
        "pool_hashrate_history": {"group_id", "pool", "account", "coin"},
        "permit": {"group_id", "permit_version"},
        "site": {"group_id", "site", "region"},
        "source_health": {"group_id", "kind", "target"},
        "device": {"group_id", "site", "device", "model"},
        "device_pool": {"group_id", "site", "device", "slot"},
        "network": {"coin"},
        "violation": {"group_id", "rule", "severity"},
    }
    assert {name: set(m.tags) for name, m in CATALOGUE.items() if name in expected} == expected


# --- every builder against the catalogue ------------------------------------------------------------------

TAGS = PoolAccountTags(group_id="g1", pool="braiins", account="acc", coin="BTC")
NOW = 1_780_000_000


def _full_snapshot() -> PoolAccountSnapshot:
    return PoolAccountSnapshot(
        observed_at=NOW,
        coin="BTC",
        hashrate_hs=1.0e15,
        hashrate_1h_hs=2.0e15,
        hashrate_24h_hs=3.0e15,
        workers_active=7,
        workers_inactive=0,
        balance_sats=830_608,
        workers=(
            WorkerStats("rig1", True, 1.0e14, 1.1e14, 1.2e14, NOW - 5),
            WorkerStats("rig2", False, 0.0, 0.0, 0.0, NOW - 9000),
        ),
        earnings=(Earning(NOW - 86_400, 12_345, "daily", "e1"), Earning(NOW - 86_400, 1, "block", "e2")),
        payouts=(
            Payout(NOW - 100, 5_000_000, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "ab" * 32, "sent", "p1"),
            Payout(NOW - 100, 6_000_000, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", None, "pending", "p2"),
        ),
        settings=PoolSettings("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        hashrate_history=(HashrateSample(NOW - 1200, 1.0e15, 600), HashrateSample(NOW - 600, 0.0, 600)),
    )


def _full_device() -> DeviceSnapshot:
    return DeviceSnapshot(
        observed_at=NOW,
        model="Antminer S19j Pro",
        hashrate_hs=1.02e14,
        power_w=3250,
        temp_max_c=75,
        fan_min_rpm=5760,
        uptime_s=185_806,
        online=True,
        pools=(
            DevicePool(0, "stratum+tcp://stratum.braiins.com:3333", "acct.w1", True, 29_452, 229),
            DevicePool(1, "stratum+tcp://btc.f2pool.com:1314", "acct.w1", False, 0, 0),
        ),
    )


def _every_builder_line() -> list[str]:
    return [
        *pool_account_lines(_full_snapshot(), TAGS, lambda address, at: address.startswith("bc1")),
        *device_lines(_full_device(), DeviceTags("g1", "irk-1", "rack1-01")),
        *network_lines(
            NetworkSnapshot(NOW, "BTC", difficulty=1.5e14, hashrate_hs=1.1e21, block_reward_sats=316_000_000)
        ),
        permit_line("g1", "2026-08", max_hashrate_hs=2.2e15, max_power_w=2.5e6, valid=True, at=NOW),
        permit_line("g1", "none", max_hashrate_hs=None, max_power_w=None, valid=False, at=NOW),
        site_line("g1", "irk-1", "RU-IRK", capacity_w=1.5e6, blackout=True, banned=False, at=NOW),
        source_health_line(
            "g1",
            "braiins",
            "braiins/acc",
            success=True,
            stale=False,
            duration_s=0.25,
            data_age_s=0.0,
            error_kind=None,
            at=NOW,
        ),
        source_health_line(
            "g1",
            "braiins",
            "braiins/acc",
            success=False,
            stale=True,
            duration_s=1,
            data_age_s=60,
            error_kind="unreachable",
            at=NOW,
        ),
        violation_line(AlertEvent(_finding(value=2.5e15, limit=1.2e15), "firing", NOW, NOW - 300)),
        violation_line(AlertEvent(_finding(value="f2pool", limit="braiins, emcd"), "resolved", NOW, NOW - 60)),
        *compliance_lines(_summary()),
    ]


def _summary() -> RoundSummary:
    return RoundSummary(
        group_id="g1",
        at=NOW,
        sample=GroupSample(NOW, pool_permitted_hs=1.0e15, pool_total_hs=1.5e15, device_hs=1.6e15, power_w=5.0e4),
        quota_hs=2.0e15,
        pools=(PoolShare("braiins", True, 1.0e15), PoolShare("f2pool", False, 0.5e15)),
        rules=rule_statuses([_finding(value=2.5e15, limit=1.2e15)]),
    )


def _finding(*, value: float | str, limit: float | str) -> Finding:
    evidence = "2.5 PH/s > 1.2 PH/s"
    return Finding("g1", "hashrate_quota", "acc", "violation", "critical", value, limit, evidence, "2026-08")


@pytest.mark.parametrize("line", _every_builder_line())
def test_builder_output_matches_the_catalogue(line: str) -> None:
    point = parse_line(line)

    entry = CATALOGUE[point.measurement]
    assert set(point.tags) <= set(entry.tags)
    assert set(point.fields) <= set(entry.fields)
    for key, rendered in point.fields.items():
        assert field_type(rendered) is entry.fields[key], f"{point.measurement}.{key} = {rendered}"


def test_the_builders_cover_every_field_of_the_catalogue() -> None:
    """Guards the test above: every catalogued field was rendered at least once."""
    seen = {(p.measurement, key) for p in map(parse_line, _every_builder_line()) for key in p.fields}
    catalogued = {(m.name, key) for m in CATALOGUE.values() for key in m.fields}
    assert catalogued - seen == set()


def test_pool_account_points_carry_flags_as_integers() -> None:
    points = [parse_line(line) for line in _every_builder_line()]
    payouts = {p.fields["amount_sats"]: p.fields["declared"] for p in points if p.measurement == "pool_payout"}
    online = {p.tags["worker"]: p.fields["online"] for p in points if p.measurement == "pool_worker"}

    assert payouts == {"5000000i": "1i", "6000000i": "0i"}
    assert online == {"rig1": "1i", "rig2": "0i"}


def test_an_empty_snapshot_yields_no_point() -> None:
    """No data is not zero: a snapshot without values writes nothing rather than zeros."""
    assert (
        list(pool_account_lines(PoolAccountSnapshot(observed_at=NOW, coin="BTC"), TAGS, lambda address, at: False))
        == []
    )
    assert list(device_lines(DeviceSnapshot(observed_at=NOW), DeviceTags("g1", "irk-1", "m1"))) == []
    assert list(network_lines(NetworkSnapshot(observed_at=NOW, coin="BTC"))) == []


def test_device_points_carry_integer_flags_the_slot_tag_and_a_model_even_when_unreported() -> None:
    device = _full_device()
    lines = list(
        device_lines(
            DeviceSnapshot(NOW, hashrate_hs=0.0, online=False, pools=device.pools), DeviceTags("g1", "s", "m1")
        )
    )
    points = [parse_line(line) for line in lines]

    assert [(p.measurement, p.tags.get("model"), p.tags.get("slot")) for p in points] == [
        ("device", "unknown", None),
        ("device_pool", None, "0"),
        ("device_pool", None, "1"),
    ]
    assert points[0].fields == {"hashrate_hs": "0.0", "online": "0i"}
    assert [p.fields["active"] for p in points[1:]] == ["1i", "0i"]


# --- event timestamps --------------------------------------------------------------------------------------


def test_event_time_is_deterministic_and_within_its_second() -> None:
    first = event_time_ns(NOW, "payout-42")

    assert event_time_ns(NOW, "payout-42") == first
    assert NOW * NS_PER_S <= first < (NOW + 1) * NS_PER_S
    assert event_time_ns(NOW + 1, "payout-42") == first + NS_PER_S


def test_distinct_events_in_one_second_get_distinct_times() -> None:
    ids = [f"payout-{i}" for i in range(2000)] + ["", "a", "A", "a ", "txid:" + "0" * 64]
    times = {event_time_ns(NOW, event_id) for event_id in ids}

    assert len(times) == len(ids)
    assert any(t % NS_PER_S for t in times)  # offsets are sub-second, not all zero


def test_event_time_is_the_same_in_another_process() -> None:
    """Replays after a restart must land on the same timestamp (so no per-process hash())."""
    code = "from collector.sinks.points import event_time_ns; print(event_time_ns(1780000000, 'payout-42'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=30
    )

    assert int(result.stdout) == event_time_ns(NOW, "payout-42")


def test_a_compliance_round_is_summed_up_with_the_worst_permit_rule_and_missing_figures_left_out() -> None:
    def finding(rule: str, status: str, *, operational: bool = False) -> Finding:
        return replace(_finding(value=1.0, limit=2.0), rule=rule, status=status, operational=operational)  # type: ignore[arg-type]

    findings = [
        finding("coin", "ok"),
        finding("pool_whitelist", "ok"),
        finding("pool_whitelist", "unknown"),
        finding("hashrate_drop", "violation", operational=True),
    ]
    summary = replace(_summary(), rules=rule_statuses(findings), quota_hs=None)
    summary = replace(summary, sample=replace(summary.sample, device_hs=None))

    points = [parse_line(line) for line in compliance_lines(summary)]

    totals = next(p for p in points if p.measurement == "compliance")
    assert (totals.fields["status_code"], totals.fields["violations"], totals.fields["unknowns"]) == ("1i", "0i", "1i")
    assert "unaccounted_hs" not in totals.fields
    assert "quota_utilisation" not in totals.fields
    by_rule = {p.tags["rule"]: p.fields["status_code"] for p in points if p.measurement == "compliance_rule"}
    assert by_rule == {"coin": "0i", "pool_whitelist": "1i", "hashrate_drop": "2i"}
    pools = {(p.tags["pool"], p.tags["permitted"]) for p in points if p.measurement == "compliance_pool"}
    assert pools == {("braiins", "yes"), ("f2pool", "no")}


def test_unaccounted_hashrate_and_quota_use_of_a_round() -> None:
    summary = _summary()

    assert summary.unaccounted_hs == pytest.approx(0.6e15)
    assert summary.quota_utilisation == pytest.approx(0.75)
    assert summary.status == "violation"
