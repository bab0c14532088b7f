"""A scrape says what the collector's state and the compliance engine hold: same values, nothing invented."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from exporter_support import scrape
from exporter_world import FAILING_ACCOUNT, HELD_RULE, OFF_MINERS, ExporterWorld

from collector.compliance.alerts import AlertBook
from collector.compliance.delivery import Delivery
from collector.compliance.findings import GroupSample, RoundSummary
from collector.models import PoolAccountSnapshot
from collector.state import StateStore
from collector.targets import Target


def test_each_account_hashrate_is_its_last_snapshot(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    checked = 0
    for target in world.collector.targets:
        if target is world.failing:
            continue
        snapshot = world.collector.state.snapshot(target.key)
        assert isinstance(snapshot, PoolAccountSnapshot)
        group_id, pool, account = target.health_tags
        served = result.value(
            "minewatch_pool_account_hashrate_hashes_per_second", group_id=group_id, pool=pool, target=account
        )
        assert served == snapshot.hashrate_hs, target.key
        checked += 1
    assert checked == len(world.collector.targets) - 1 >= 5


def test_quotas_are_the_permit_in_force(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    now = datetime.fromtimestamp(world.collector.clock(), UTC)
    for group in world.collector.groups:
        permit = group.permit_at(now)
        assert permit is not None
        assert result.value("minewatch_group_hashrate_quota_hashes_per_second", group_id=group.id) == (
            permit.max_hashrate
        )
        assert result.value("minewatch_group_power_quota_watts", group_id=group.id) == permit.max_power
    # baikal's permit: 0.5 PH/s and 600 kW, in base units.
    assert result.value("minewatch_group_hashrate_quota_hashes_per_second", group_id="baikal") == 0.5e15
    assert result.value("minewatch_group_power_quota_watts", group_id="baikal") == 600_000.0


def test_group_totals_are_the_last_round(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    rounds = world.engine.last_rounds
    assert set(rounds) == {g.id for g in world.collector.groups}
    for group_id, summary in rounds.items():
        expected = {
            "minewatch_group_pool_hashrate_hashes_per_second": summary.sample.pool_total_hs,
            "minewatch_group_permitted_pool_hashrate_hashes_per_second": summary.sample.pool_permitted_hs,
            "minewatch_group_device_hashrate_hashes_per_second": summary.sample.device_hs,
            "minewatch_group_unaccounted_hashrate_hashes_per_second": summary.unaccounted_hs,
            "minewatch_group_power_watts": summary.sample.power_w,
            "minewatch_group_hashrate_quota_utilisation_ratio": summary.quota_utilisation,
            "minewatch_group_compliance_status": summary.status_code,
            "minewatch_group_last_round_timestamp_seconds": summary.at,
        }
        for name, value in expected.items():
            assert result.value(name, group_id=group_id) == value, (group_id, name)
    assert result.value("minewatch_group_compliance_status", group_id="baikal") == 2
    # baikal mines on EMCD, which its permit does not list.
    assert result.value("minewatch_group_pool_permitted", group_id="baikal", pool="emcd") == 0
    assert result.value("minewatch_group_pool_permitted", group_id="baikal", pool="braiins") == 1


def test_baikal_rule_statuses_are_the_engines(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    summary = world.engine.last_rounds["baikal"]
    served = {
        labels["rule"]: (labels["severity"], labels["kind"], value)
        for labels, value in ((dict(k), v) for k, v in result.series("minewatch_rule_status").items())
        if labels["group_id"] == "baikal"
    }
    assert served == {
        rule.rule: (rule.severity, "operational" if rule.operational else "permit", rule.status_code)
        for rule in summary.rules
    }
    for rule in ("pool_whitelist", "blackout", "payout_address"):
        assert served[rule][2] == 2, rule
    violations = {
        dict(k)["rule"]: v for k, v in result.series("minewatch_rule_violations").items() if ("group_id", "baikal") in k
    }
    assert violations == {rule.rule: rule.violations for rule in summary.rules}


def test_active_alerts_are_counted_by_state(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    expected: dict[tuple[str, str, str, str], int] = {}
    for record in world.engine.book.records(active_only=True):
        key = (record.state, record.finding.group_id, record.finding.rule, record.finding.severity)
        expected[key] = expected.get(key, 0) + 1
    assert ("firing", "baikal", "pool_whitelist", "critical") in expected
    assert any(state == "pending" and rule == HELD_RULE for state, _, rule, _ in expected), "no pending alert"

    served: dict[tuple[str, str, str, str], int] = {}
    for state in ("firing", "pending"):
        for label_set, value in result.series(f"minewatch_alerts_{state}").items():
            labels = dict(label_set)
            if value:
                served[state, labels["group_id"], labels["rule"], labels["severity"]] = int(value)
    assert served == expected
    # A rule with no open alert reads 0 (the book is known), in both states.
    assert result.value("minewatch_alerts_firing", group_id="sibgaz", rule="pool_whitelist", severity="critical") == 0


def test_a_failing_source_is_down_counted_by_reason_and_its_hashrate_absent(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    group_id, pool, account = FAILING_ACCOUNT
    source = {"group_id": group_id, "kind": pool, "target": account}
    health = world.collector.state.health(world.failing.key)
    assert health.last_error_kind is not None
    assert result.value("minewatch_source_up", **source) == 0
    assert result.value("minewatch_source_errors_total", **source, reason=health.last_error_kind) == 1
    assert result.value("minewatch_source_polls_total", **source) == 2
    assert result.value("minewatch_source_last_success_timestamp_seconds", **source) == health.last_success
    # The last good snapshot is still in the store, but it is not this poll's: no sample, and never a 0.
    assert world.collector.state.snapshot(world.failing.key) is not None
    assert not result.has("minewatch_pool_account_hashrate_hashes_per_second", target=account)
    # Healthy sources are up, with no error series.
    assert result.value("minewatch_source_up", group_id="baikal", kind="emcd", target="baikal_x") == 1
    assert not result.has("minewatch_source_errors_total", target="baikal_x")


def test_every_polled_source_has_its_health(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    collector = world.collector
    targets: list[Target] = [*collector.targets, *(t for f in collector.fleets for t in f.targets), *collector.networks]
    assert len(targets) > 20
    now = collector.clock()
    for target in targets:
        group_id, kind, name = target.health_tags
        labels = {"group_id": group_id, "kind": kind, "target": name}
        health = collector.state.health(target.key)
        assert result.value("minewatch_source_last_poll_duration_seconds", **labels) == health.last_duration_s
        assert result.value("minewatch_source_polls_total", **labels) == health.polls >= 1
        age = result.value("minewatch_source_data_age_seconds", **labels)
        if health.last_success is None:  # a miner that is off: down, and no age or last success to make up
            assert target.key in OFF_MINERS
            assert age is None
            assert result.value("minewatch_source_last_success_timestamp_seconds", **labels) is None
            assert result.value("minewatch_source_up", **labels) == 0
        else:
            assert age is not None
            assert 0 <= age <= now - health.last_success + 5


def test_unknown_values_have_no_sample(world: ExporterWorld) -> None:
    # A pool that answers but gives no hashrate: the source is up, its hashrate series absent (not 0).
    state = StateStore()
    target = world.collector.targets[0]
    state.record_success(target.key, PoolAccountSnapshot(observed_at=0, coin="BTC"), at=1.0, duration_s=0.1)
    result = scrape(replace(world.collector, state=state), world.engine)
    group_id, pool, account = target.health_tags
    assert result.value("minewatch_source_up", group_id=group_id, kind=pool, target=account) == 1
    assert not result.has("minewatch_pool_account_hashrate_hashes_per_second", target=account)
    # Targets never polled have no health series at all.
    assert len(result.series("minewatch_source_up")) == 1
    assert result.series("minewatch_source_last_success_timestamp_seconds") != {}


@dataclass
class EngineWithRounds:
    """The world's engine (its book and delivery) with other last rounds: what a round with gaps looks like."""

    last_rounds: dict[str, RoundSummary]
    book: AlertBook
    delivery: Delivery


def test_a_round_that_knows_nothing_serves_no_totals(world: ExporterWorld) -> None:
    blind = RoundSummary(
        group_id="sibgaz",
        at=1_700_000_000.0,
        sample=GroupSample(
            at=1_700_000_000.0, pool_permitted_hs=None, pool_total_hs=None, device_hs=None, power_w=None
        ),
        quota_hs=None,
        pools=(),
        rules=(),
    )
    engine = EngineWithRounds({"sibgaz": blind}, world.engine.book, world.engine.delivery)
    result = scrape(world.collector, engine)
    for name in (
        "minewatch_group_pool_hashrate_hashes_per_second",
        "minewatch_group_permitted_pool_hashrate_hashes_per_second",
        "minewatch_group_device_hashrate_hashes_per_second",
        "minewatch_group_unaccounted_hashrate_hashes_per_second",
        "minewatch_group_power_watts",
        "minewatch_group_hashrate_quota_utilisation_ratio",
    ):
        assert result.series(name) == {}, name
    # What the round does know is served: it ran, and with no verdict the group is unknown (1), not ok.
    assert result.value("minewatch_group_last_round_timestamp_seconds", group_id="sibgaz") == 1_700_000_000.0
    assert result.value("minewatch_group_compliance_status", group_id="sibgaz") == 1


def test_a_group_dropped_from_the_config_leaves_the_scrape(world: ExporterWorld) -> None:
    kept = [g for g in world.collector.groups if g.id != "baikal"]
    result = scrape(replace(world.collector, groups=kept), world.engine)
    assert "baikal" in world.engine.last_rounds
    for sample in result.samples:
        assert sample.labels.get("group_id") != "baikal" or sample.name.startswith(
            ("minewatch_source_", "minewatch_pool_account_")
        ), sample
    assert not result.has("minewatch_rule_status", group_id="baikal")
    assert result.has("minewatch_rule_status", group_id="sibgaz")


def test_without_an_engine_only_the_collectors_metrics(world: ExporterWorld) -> None:
    result = scrape(world.collector)
    names = {s.name for s in result.samples}
    assert "minewatch_source_up" in names
    assert "minewatch_group_hashrate_quota_hashes_per_second" in names
    assert not {n for n in names if n.startswith(("minewatch_rule_", "minewatch_alert"))}
    assert "minewatch_group_pool_hashrate_hashes_per_second" not in names


def test_storage_counters_are_the_sinks(world: ExporterWorld) -> None:
    sink = world.collector.sink
    result = scrape(world.collector, world.engine)
    assert result.value("minewatch_points_written_total") == len(world.transport.lines) > 100
    assert result.value("minewatch_points_dropped_total") == getattr(sink, "dropped_lines", None) == 0
    assert result.value("minewatch_points_rejected_total") == 0
    assert result.value("minewatch_points_buffered") == getattr(sink, "buffered_lines", None)
    assert result.value("minewatch_storage_write_errors_total") == 0
    # A sink that keeps no counters: the storage metrics are unknown, so there are none (not zeros).
    from collector.sinks.base import MemorySink

    bare = scrape(replace(world.collector, sink=MemorySink()), world.engine)
    assert not {s.name for s in bare.samples if s.name.startswith(("minewatch_points_", "minewatch_storage_"))}


def test_notifier_counters_are_the_deliverys(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    stats = world.engine.delivery.stats()
    assert stats, "no notifier"
    for name, counters in stats.items():
        assert result.value("minewatch_alert_notifications_delivered_total", kind=name) == counters.delivered
        assert result.value("minewatch_alert_notification_failures_total", kind=name) == counters.failed_attempts
        assert result.value("minewatch_alert_notifications_dropped_total", kind=name) == counters.dropped
        assert result.value("minewatch_alert_notifications_queued", kind=name) == counters.queued
    assert stats["log"].delivered >= 3  # baikal's firing alerts went to the log notifier


def test_build_info(world: ExporterWorld) -> None:
    assert scrape(world.collector).value("minewatch_build_info", version="0.0.0-test") == 1
