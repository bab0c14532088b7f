"""Compliance end to end: the demo's simulator and miners, the real collector, the rules, a real Alertmanager.

The demo's `baikal` group mines on a pool its permit does not list, inside Buryatia's seasonal ban, and pays
out to an address it never declared: those alerts must reach Alertmanager once, survive a restart of the
collector without a second notification, and resolve when the violation stops. The other groups break no
permit rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from demo_config import ROOT, copy_demo_config

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector, build_compliance, collect_once
from collector.compliance.engine import ComplianceEngine
from collector.config import load_config
from collector.models import PoolAccountSnapshot
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from simulator.local_servers import AlertmanagerServer
from simulator.miners.fleet import MinerFleet
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer

LOG = logging.getLogger("test")
DEMO_SCENARIO = ROOT / "simulator" / "scenarios" / "demo.toml"
PERMIT_ALERTS_OF_BAIKAL = {
    ("pool_whitelist", "baikal_x"),
    ("blackout", "ulan-ude-1"),
    ("payout_address", "baikal_x:configured"),
}


@dataclass
class World:
    collector: Collector
    sink: MemorySink
    config_path: Path
    new_engine: Callable[[], ComplianceEngine]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, alertmanager: AlertmanagerServer) -> Iterator[World]:
    scenario = load_scenario(DEMO_SCENARIO)
    with SimulatorServer(scenario) as pools, MinerFleet(scenario) as fleet:
        config_path = copy_demo_config(
            tmp_path_factory.mktemp("alerts"),
            simulator_url=pools.url,
            influx_url="http://127.0.0.1:9",
            database="unused",
            miners=fleet.addresses(),
            alerting={"alertmanager_url": f'"{alertmanager.url}"', "keep_firing_s": "0"},
        ).main
        config = load_config(config_path, source_registry(), redactor=Redactor())
        sink = MemorySink()
        collector = build_collector(config, source_registry(), sink, redactor=Redactor(), log=LOG)
        assert [r.key for r in collect_once(collector) if not r.success and "/cgminer/" not in r.key] == []

        def new_engine() -> ComplianceEngine:
            return build_compliance(collector, redactor=Redactor(), log=LOG, grace_s=0.0)

        yield World(collector, sink, config_path, new_engine)


def round_of(engine: ComplianceEngine, collector: Collector) -> None:
    now = time.time()
    for group in collector.groups:
        engine.evaluate(group, now)
    engine.delivery.flush()


def am_alerts(alertmanager: AlertmanagerServer, group_id: str) -> list[dict[str, Any]]:
    return alertmanager.alerts(filter=f'group_id="{group_id}"')


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_misbehaving_group_alerts_once_survives_a_restart_and_resolves(
    world: World, alertmanager: AlertmanagerServer
) -> None:
    engine = world.new_engine()
    round_of(engine, world.collector)

    def baikal_permit_alerts() -> set[tuple[str, str]]:
        return {
            (a["labels"]["rule"], a["labels"].get("subject", ""))
            for a in am_alerts(alertmanager, "baikal")
            if a["labels"]["kind"] == "permit"
        }

    wait_for("baikal's alerts in Alertmanager", lambda: baikal_permit_alerts() >= PERMIT_ALERTS_OF_BAIKAL)
    delivered = engine.delivery.stats()["alertmanager"].delivered
    assert delivered >= len(PERMIT_ALERTS_OF_BAIKAL)
    points = [line for line in world.sink.lines if line.startswith("violation,")]
    assert any("rule=pool_whitelist" in p and 'state="firing"' in p and 'subject="baikal_x"' in p for p in points)

    # Another round and a restarted collector (a new engine on the same state file) notify nothing new.
    round_of(engine, world.collector)
    restarted = world.new_engine()
    round_of(restarted, world.collector)
    assert restarted.delivery.stats()["alertmanager"].delivered == 0, "a restart notified again"
    assert restarted.book.get(("baikal", "pool_whitelist", "baikal_x")) is not None

    # The EMCD account stops hashing: the pool-whitelist alert resolves, in the book and in Alertmanager.
    [emcd] = [t for t in world.collector.targets if t.account.id == "baikal_x"]
    last = world.collector.state.snapshot(emcd.key)
    assert isinstance(last, PoolAccountSnapshot)
    idle = PoolAccountSnapshot(int(time.time()), "BTC", hashrate_hs=0.0, settings=last.settings)
    world.collector.state.record_success(emcd.key, idle, at=time.time(), duration_s=0.1)
    round_of(restarted, world.collector)
    key = ("baikal", "pool_whitelist", "baikal_x")
    assert restarted.book.get(key) is None, "still open"
    assert [r.previous for r in restarted.book.records() if r.key == key and r.state == "resolved"] == ["firing"]
    wait_for("the alert to leave Alertmanager", lambda: ("pool_whitelist", "baikal_x") not in baikal_permit_alerts())


def test_the_groups_that_keep_their_permits_raise_no_permit_alert(
    world: World, alertmanager: AlertmanagerServer
) -> None:
    engine = world.new_engine()
    round_of(engine, world.collector)
    for group_id in ("sibgaz", "uralhash", "tverpower"):
        permit_alerts = [a for a in am_alerts(alertmanager, group_id) if a["labels"]["kind"] == "permit"]
        assert permit_alerts == [], (
            f"{group_id}: {[(a['labels']['rule'], a['annotations']['summary']) for a in permit_alerts]}"
        )


def test_each_round_is_summed_up_for_dashboards_and_the_exporter(world: World) -> None:
    engine = world.new_engine()
    before = len(world.sink.lines)
    round_of(engine, world.collector)
    written = world.sink.lines[before:]

    baikal = engine.last_rounds["baikal"]
    assert baikal.status == "violation"
    assert {rule.rule for rule in baikal.rules if rule.status == "violation"} >= {"payout_address", "blackout"}
    assert [share.permitted for share in baikal.pools if share.pool == "emcd"] == [False]
    assert any(line.startswith("compliance,group_id=baikal ") and "status_code=2i" in line for line in written)
    assert any(line.startswith("compliance_pool,group_id=baikal,permitted=no,pool=emcd ") for line in written)
    rule_points = [line for line in written if line.startswith("compliance_rule,group_id=baikal,")]
    assert len(rule_points) == len(baikal.rules)
    assert set(engine.last_rounds) == {group.id for group in world.collector.groups}
