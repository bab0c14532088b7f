"""`minewatch collect --once --print` with the demo's miners and chain feed: every source in base units.

The simulator's pools, its mempool.space and its fleet of miners (four firmware dialects, auto-identified)
run on free loopback ports on the wall clock; the printed points must equal the ground truth at their own
timestamps.
"""

from __future__ import annotations

import math
import time

from cli_support import CliRunner, MakeConfig, by_measurement, number, parse_output

from simulator.miners.fleet import MinerFleet
from simulator.miners.truth import miner_truth
from simulator.network.mempool import network_truth
from simulator.scenario import Scenario

POLL_SECONDS = 6  # one miner's poll (several commands, one connection each) on a busy 2-core machine
# The window the collector reads per dialect (the miners have been up for hours), and the printed precision.
WINDOW = {
    "antminer": ("hashrate_30m_hs", 0.005e9),
    "braiins_os": ("hashrate_15m_hs", 1.0),
    "whatsminer": ("hashrate_15m_hs", 0.005e6),
    "avalon": ("hashrate_15m_hs", 0.005e6),
}


def test_print_writes_every_miner_and_the_chain_in_base_units(
    cli: CliRunner, make_config: MakeConfig, fleet: MinerFleet, scenario: Scenario
) -> None:
    config = make_config(miners=fleet.addresses(), network=True)
    started = int(time.time())
    run = cli.run("collect", "--once", "--print", "-c", str(config.main))
    points = parse_output(run.out)

    failed = {p.tags["target"] for p in by_measurement(points, "source_health") if p.fields["success"] == 0}
    offline = {m.name for m in scenario.miners if not miner_truth(scenario, m, started).online}
    assert failed == offline, run.err
    assert run.code == (1 if offline else 0)

    devices = {p.tags["device"]: p for p in by_measurement(points, "device")}
    assert set(devices) == {m.name for m in scenario.miners} - offline
    for miner in scenario.miners:
        if miner.name in offline:
            continue
        point = devices[miner.name]
        window, tolerance = WINDOW[miner.dialect]
        # The miner renders each reply on its own clock, somewhere within the poll that started at the point's
        # second (a few seconds on a loaded machine): the figures must match the truth at one of those seconds.
        observed = point.timestamp // 10**9
        truths = [miner_truth(scenario, miner, observed + lag) for lag in range(POLL_SECONDS)]
        hashrate, uptime = number(point, "hashrate_hs"), number(point, "uptime_s")
        assert any(abs(hashrate - getattr(t, window)) <= tolerance for t in truths), miner.name
        assert any(uptime == t.uptime_s for t in truths), miner.name
        truth = truths[0]
        assert point.tags["model"] == truth.model
        assert ("power_w" in point.fields) == (truth.power_w is not None), miner.name
        pools = [p for p in by_measurement(points, "device_pool") if p.tags["device"] == miner.name]
        assert {p.fields["url"] for p in pools} == {slot.url for slot in truth.pools}, miner.name

    [chain] = by_measurement(points, "network")
    expected = network_truth(scenario, chain.timestamp // 10**9)
    assert math.isclose(number(chain, "difficulty"), expected.difficulty, rel_tol=1e-9)
    assert math.isclose(number(chain, "hashrate_hs"), expected.hashrate_hs, rel_tol=1e-6)
    assert chain.fields["block_reward_sats"] == expected.block_reward_sats
