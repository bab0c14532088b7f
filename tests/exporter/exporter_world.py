"""One demo world for the exporter tests: the simulator, its miners, a real collector and compliance engine.

Every source is polled once; then tverpower's only pool account starts refusing its token and is polled again,
so the world holds a source whose last poll failed (with a last good snapshot still in the state store). One
compliance round judges every group: baikal breaks its permit (pool whitelist, blackout, payout address); its
blackout alert is held for an hour, so the world has a pending alert beside firing ones.

The sink is the real buffering `InfluxSink` in front of a `MemorySink` transport: its counters are the real
ones, and nothing needs a database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from demo_config import ROOT, copy_demo_config

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector, build_compliance, collect_once
from collector.compliance.engine import ComplianceEngine
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from collector.sinks.buffered import InfluxSink
from collector.targets import PoolTarget
from simulator.miners.fleet import MinerFleet
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer

LOG = logging.getLogger("test.exporter")
DEMO_SCENARIO = ROOT / "simulator" / "scenarios" / "demo.toml"
FAILING_ACCOUNT = ("tverpower", "emcd", "tverpower")  # (group_id, pool, account id = simulator username)
HELD_RULE = "blackout"
OFF_MINERS = ("sibgaz/cgminer/irk1-s19xp-04", "tverpower/cgminer/tver1-m60-05")


@dataclass
class ExporterWorld:
    collector: Collector
    engine: ComplianceEngine
    transport: MemorySink
    failing: PoolTarget


@contextmanager
def exporter_world(workdir: Path) -> Iterator[ExporterWorld]:
    """The world (see the module docstring), alive while the context is."""
    scenario = load_scenario(DEMO_SCENARIO)
    with SimulatorServer(scenario) as pools, MinerFleet(scenario) as fleet:
        config_path = copy_demo_config(
            workdir,
            simulator_url=pools.url,
            influx_url="http://127.0.0.1:9",
            database="unused",
            miners=fleet.addresses(),
            alerting={"keep_firing_s": "0", "hold_s_by_rule": f"{{ {HELD_RULE} = 3600.0 }}"},
        ).main
        config = load_config(config_path, source_registry(), redactor=Redactor())
        transport = MemorySink()
        sink = InfluxSink(transport, flush_interval_s=60.0)  # never started: flush() sends from the test thread
        collector = build_collector(config, source_registry(), sink, redactor=Redactor(), log=LOG)
        # The scenario switches two miners off: they stay failing sources that never succeeded.
        failed = sorted(r.key for r in collect_once(collector) if not r.success)
        assert failed == list(OFF_MINERS)

        [failing] = [t for t in collector.targets if t.health_tags == FAILING_ACCOUNT]
        pools.set_fault("emcd", FAILING_ACCOUNT[2], "auth")
        assert not collector.runner.poll(failing).success

        engine = build_compliance(collector, redactor=Redactor(), log=LOG, grace_s=0.0)
        now = time.time()
        for group in collector.groups:
            engine.evaluate(group, now)
        engine.delivery.flush()
        sink.flush(timeout_s=10.0)
        yield ExporterWorld(collector, engine, transport, failing)
