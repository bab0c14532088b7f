"""GroupObserver: the rules' view of a group from the state store, and the bounded history of its totals."""

from __future__ import annotations

import logging

import pytest

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector
from collector.compliance.observe import GroupObserver
from collector.config import load_config
from collector.models import DeviceSnapshot, PoolAccountSnapshot
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from unit.support import REPO

NOW = 1_795_262_400.0


@pytest.fixture
def collector() -> Collector:
    config = load_config(REPO / "config" / "demo" / "minewatch.toml", source_registry(), redactor=Redactor())
    return build_collector(config, source_registry(), MemorySink(), redactor=Redactor(), log=logging.getLogger("t"))


def observer(collector: Collector, history_s: float = 600.0) -> GroupObserver:
    devices = [target for fleet in collector.fleets for target in fleet.targets]
    return GroupObserver(
        collector.state,
        collector.targets,
        devices,
        collector.config.regions.bans,
        history_s=history_s,
        stale_after_s=120.0,
    )


def test_the_view_holds_each_source_with_its_age_and_the_totals_of_fresh_ones(collector: Collector) -> None:
    group = collector.config.group("sibgaz")
    main, emcd = (t for t in collector.targets if t.group.id == "sibgaz")
    miners = [t for fleet in collector.fleets for t in fleet.targets if t.group_id == "sibgaz"]
    collector.state.record_success(
        main.key, PoolAccountSnapshot(int(NOW), "BTC", hashrate_hs=6e14), at=NOW - 30, duration_s=0.1
    )
    collector.state.record_success(
        emcd.key, PoolAccountSnapshot(int(NOW), "BTC", hashrate_hs=3e14), at=NOW - 500, duration_s=0.1
    )
    collector.state.record_success(
        miners[0].key, DeviceSnapshot(int(NOW), hashrate_hs=2e14, power_w=3000.0), at=NOW - 10, duration_s=0.1
    )

    view = observer(collector).observe(group, NOW)

    ages = {a.account.id: a.age_s for a in view.accounts}
    assert ages == {main.account.id: 30.0, emcd.account.id: 500.0}
    assert {d.name: d.age_s for d in view.devices}[miners[0].device] == 10.0
    assert {d.name for d in view.devices if d.last is None} == {m.device for m in miners[1:]}
    [sample] = view.history
    # The EMCD snapshot is stale (500 s > 120 s): a pool sum without it would undercount, so the pool totals
    # are unknown; the miners' total is a lower bound over the fresh ones.
    totals = (sample.pool_total_hs, sample.pool_permitted_hs, sample.device_hs, sample.power_w)
    assert totals == (None, None, 2e14, 3000.0)

    collector.state.record_success(
        emcd.key, PoolAccountSnapshot(int(NOW), "BTC", hashrate_hs=3e14), at=NOW - 5, duration_s=0.1
    )
    [sample] = observer(collector).observe(group, NOW).history
    assert (sample.pool_total_hs, sample.pool_permitted_hs) == (9e14, 9e14)


def test_totals_are_unknown_rather_than_zero_when_nothing_is_fresh(collector: Collector) -> None:
    [sample] = observer(collector).observe(collector.config.group("uralhash"), NOW).history
    assert (sample.pool_total_hs, sample.device_hs, sample.power_w) == (None, None, None)


def test_history_is_kept_per_group_for_history_s_only(collector: Collector) -> None:
    watcher = observer(collector, history_s=100.0)
    group = collector.config.group("baikal")
    for step in range(5):
        view = watcher.observe(group, NOW + 60 * step)
    assert [s.at for s in view.history] == [NOW + 180, NOW + 240]
    assert watcher.observe(collector.config.group("tverpower"), NOW).history[0].at == NOW
