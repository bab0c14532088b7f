"""Miners and chain statistics end to end: the simulator's fleet and mempool, the real collector, the truth.

Every healthy miner of `simulator/scenarios/miners.toml` (four dialects, auto-identified) must be written with
the values its ground truth holds, in base units; every faulty miner must be a counted failure of the right
kind with no `device` point; the `network` point must equal the simulated mempool's truth.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenario_support import FAULT_KINDS
from unit.support import Point, field_value, parse_line

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector, collect_once
from collector.config import load_config
from collector.redact import Redactor
from collector.runner import PollResult
from collector.sinks.base import MemorySink
from simulator.configgen import write_config
from simulator.miners.fleet import MinerFleet
from simulator.miners.truth import MinerTruth, miner_truth
from simulator.network.mempool import network_truth
from simulator.scenario import MINER_FAULTS, Scenario, load_scenario
from simulator.server import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_795_262_400  # 2026-11-21T12:00:00Z: after the missing_fields miner's fault starts
TIMEOUT_S = 1.5
LOG = logging.getLogger("test")
# Which of the truth's windows the collector reads from each dialect once the miner has been up long enough.
WINDOW = {
    "antminer": "hashrate_30m_hs",
    "braiins_os": "hashrate_15m_hs",
    "whatsminer": "hashrate_15m_hs",
    "avalon": "hashrate_15m_hs",
}
# The dialects print GH/s or MH/s with two decimals, or full floats: half a unit of the last printed digit.
TOLERANCE_HS = {"antminer": 0.005e9, "braiins_os": 1.0, "whatsminer": 0.005e6, "avalon": 0.005e6}
# Miners and mempool answer every fault strictly: a wrong-typed or missing figure fails the poll.
STRICT_FAULT_KINDS = {**FAULT_KINDS, "wrong_types": "bad_response", "missing_fields": "bad_response"}


@dataclasses.dataclass(frozen=True)
class Run:
    scenario: Scenario
    results: dict[str, PollResult]
    points: list[Point]
    collector: Collector


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    scenario = dataclasses.replace(
        load_scenario(ROOT / "simulator" / "scenarios" / "miners.toml"), hang_seconds=3.0, latency_seconds=1.0
    )
    scenario = dataclasses.replace(scenario, network=load_scenario(ROOT / "simulator/scenarios/demo.toml").network)
    with (
        SimulatorServer(scenario, clock=lambda: NOW) as pools,
        MinerFleet(scenario, clock=lambda: NOW) as fleet,
    ):
        path = write_config(
            tmp_path_factory.mktemp("devices"),
            scenario,
            simulator_url=pools.url,
            influx_url="http://127.0.0.1:9",
            database="unused",
            miners=fleet.addresses(),
            fleet_settings=f"timeout_s = {TIMEOUT_S}",
        )
        sink = MemorySink()
        collector = build_collector(
            load_config(path, source_registry(), redactor=Redactor()),
            source_registry(),
            sink,
            redactor=Redactor(),
            log=LOG,
            clock=lambda: NOW,
        )
        results = {result.key: result for result in collect_once(collector)}
        points = [parse_line(line) for line in sink.lines]
        for point in points:
            point.fields.update({key: field_value(value) for key, value in point.fields.items()})
        yield Run(scenario, results, points, collector)


def device_points(run: Run, name: str, measurement: str = "device") -> list[Point]:
    return [p for p in run.points if p.measurement == measurement and p.tags.get("device") == name]


def healthy(run: Run) -> list[MinerTruth]:
    truths = [miner_truth(run.scenario, miner, NOW) for miner in run.scenario.miners]
    return [t for t in truths if t.online and run.scenario.miners[truths.index(t)].fault_at(NOW) is None]


def test_every_healthy_miner_of_every_dialect_matches_its_truth(run: Run) -> None:
    truths = healthy(run)
    assert {t.dialect for t in truths} == set(WINDOW), "the scenario covers every dialect"
    for truth in truths:
        result = run.results[f"{truth.group_id}/cgminer/{truth.name}"]
        assert result.success, result.message
        [point] = device_points(run, truth.name)
        fields = point.fields
        assert point.tags == {
            "group_id": truth.group_id,
            "site": truth.site,
            "device": truth.name,
            "model": truth.model,
        }
        expected = getattr(truth, WINDOW[truth.dialect])
        assert abs(fields["hashrate_hs"] - expected) <= TOLERANCE_HS[truth.dialect], truth.name
        assert fields["temp_max_c"] == pytest.approx(truth.temp_max_c), truth.name
        assert fields["fan_min_rpm"] == truth.fan_min_rpm, truth.name
        assert fields["uptime_s"] == truth.uptime_s, truth.name
        assert fields["online"] == 1
        if truth.power_w is None:
            assert "power_w" not in fields, f"{truth.name}: a power reading its firmware does not give"
        else:
            assert fields["power_w"] == truth.power_w, truth.name


def test_every_configured_pool_slot_is_written_with_its_counters(run: Run) -> None:
    for truth in healthy(run):
        slots = {p.tags["slot"]: p.fields for p in device_points(run, truth.name, "device_pool")}
        assert len(slots) == len(truth.pools), truth.name
        # Compared by URL: slot numbers differ by dialect (Whatsminer counts from 1).
        by_url = {fields["url"]: fields for fields in slots.values()}
        for pool in truth.pools:
            fields = by_url[pool.url]
            assert fields["stratum_user"] == pool.user, truth.name
            assert fields["active"] == int(pool.active), truth.name
            assert (fields["accepted"], fields["rejected"]) == (pool.accepted, pool.rejected), truth.name


def test_a_linked_miner_mines_on_its_pool_worker(run: Run) -> None:
    linked = [m for m in run.scenario.miners if m.link is not None and m.fault_at(NOW) is None]
    assert linked
    for miner in linked:
        assert miner.link is not None
        _pool, username, worker = miner.link
        truth = miner_truth(run.scenario, miner, NOW)
        if not truth.online:
            continue
        [active] = [p for p in device_points(run, miner.name, "device_pool") if p.fields["active"] == 1]
        assert active.fields["stratum_user"] == f"{username}.{worker}", miner.name


def test_each_faulty_miner_is_a_counted_failure_of_its_kind_with_no_device_point(run: Run) -> None:
    faulty = [m for m in run.scenario.miners if m.fault_at(NOW) is not None]
    assert {m.fault_at(NOW) for m in faulty} == set(MINER_FAULTS)
    for miner in faulty:
        result = run.results[f"{miner.group_id}/cgminer/{miner.name}"]
        assert (result.success, result.error_kind) == (False, STRICT_FAULT_KINDS[str(miner.fault_at(NOW))]), miner.name
        assert device_points(run, miner.name) == [], f"{miner.name}: a point from a failed poll"
        [health] = [p for p in run.points if p.measurement == "source_health" and p.tags["target"] == miner.name]
        assert (health.fields["success"], health.fields["error_kind"]) == (0, result.error_kind)


def test_a_powered_off_miner_is_unreachable(run: Run) -> None:
    off = [m for m in run.scenario.miners if not miner_truth(run.scenario, m, NOW).online]
    assert off
    for miner in off:
        assert run.results[f"{miner.group_id}/cgminer/{miner.name}"].error_kind == "unreachable"


def test_slow_miners_never_delay_the_others(run: Run) -> None:
    """Each miner has its own deadline: a hung miner costs its own poll the timeout, nobody else's."""
    durations = {
        p.tags["target"]: p.fields["duration_s"]
        for p in run.points
        if p.measurement == "source_health" and p.tags["kind"] == "cgminer"
    }
    assert durations["fault-hang"] >= TIMEOUT_S * 0.9
    assert TIMEOUT_S * 0.9 <= durations["fault-hang"] < TIMEOUT_S + 1.0
    for truth in healthy(run):
        assert durations[truth.name] < 0.5, f"{truth.name} took {durations[truth.name]} s"


def test_the_network_point_equals_the_simulated_chain(run: Run) -> None:
    [point] = [p for p in run.points if p.measurement == "network"]
    truth = network_truth(run.scenario, NOW)
    assert point.tags == {"coin": "BTC"}
    assert point.fields["difficulty"] == truth.difficulty
    assert point.fields["hashrate_hs"] == truth.hashrate_hs
    assert point.fields["block_reward_sats"] == truth.block_reward_sats
    assert run.results["network/mempool/BTC"].success


@pytest.mark.parametrize("fault", sorted(set(STRICT_FAULT_KINDS) - {"latency"}))
def test_each_mempool_fault_is_a_counted_failure_with_no_network_point(fault: str, tmp_path: Path) -> None:
    scenario = dataclasses.replace(load_scenario(ROOT / "simulator/scenarios/demo.toml"), hang_seconds=3.0)
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        server.set_network_fault("mempool", fault)  # type: ignore[arg-type]
        path = write_config(
            tmp_path,
            scenario,
            simulator_url=server.url,
            influx_url="http://127.0.0.1:9",
            database="unused",
            schedule="timeout_s = 1.5",
        )
        config = load_config(path, source_registry(), redactor=Redactor())
        sink = MemorySink()
        collector = build_collector(config, source_registry(), sink, redactor=Redactor(), log=LOG, clock=lambda: NOW)
        [network] = collector.networks
        result = collector.runner.poll(network)
    points = [parse_line(line) for line in sink.lines]
    assert (result.success, result.error_kind) == (False, STRICT_FAULT_KINDS[fault]), result.message
    assert [p.measurement for p in points] == ["source_health"], "no network point from a failed poll"
    assert points[0].tags == {"kind": "mempool", "target": "BTC"}
