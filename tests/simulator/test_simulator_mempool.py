"""mempool.space over real sockets: the shapes, units and types of reference §8, values equal to network_truth()."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from fractions import Fraction
from typing import Any

import pytest
import requests
from sim_support import FIXED_T

from simulator.mutations import WRONG_VALUES
from simulator.network.mempool import (
    DEFAULT_REWARD_BLOCKS,
    EPOCH_BLOCKS,
    PERIOD_DAYS,
    NetworkTruth,
    network_truth,
)
from simulator.scenario import DEFAULT_BLOCK_SUBSIDY_SATS, FAULTS, Network, Scenario, ScenarioError, parse_scenario
from simulator.server import SimulatorServer

DAY_S = 86_400
NETWORK = {
    "difficulty": 1.5e14,
    "hashrate_ehs": 1100.0,
    "fees_per_block_sats": 3_000_000,
    "tip_height": 960_000,
}


def scenario_with(network: dict[str, Any] | None) -> Scenario:
    data: dict[str, Any] = {
        "seed": 5,
        "history_start": "2026-11-01",
        "sats_per_phs_day": 45000,
        "hang_seconds": 0.3,
        "latency_seconds": 0.3,
        "accounts": [{"group_id": "g", "pool": "emcd", "username": "u", "secret": "k"}],
    }
    if network is not None:
        data["network"] = network
    return parse_scenario(data)


def get(server: SimulatorServer, path: str, timeout: float = 5) -> requests.Response:
    return requests.get(f"{server.url}/api{path}", timeout=timeout)


def ok_json(server: SimulatorServer, path: str) -> Any:
    response = get(server, path)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def truth(demo_scenario: Scenario) -> NetworkTruth:
    return network_truth(demo_scenario, FIXED_T)


# --- the demo's network ---


def test_demo_network_is_late_2026_bitcoin(demo_scenario: Scenario, truth: NetworkTruth) -> None:
    network = demo_scenario.network
    assert network is not None
    assert network.block_subsidy_sats == 312_500_000
    assert 1.3e14 < truth.difficulty < 1.7e14
    assert 1.0e21 < truth.hashrate_hs < 1.2e21
    subsidy = network.block_subsidy_sats
    assert subsidy + 2_000_000 <= truth.block_reward_sats <= subsidy + 5_000_000
    assert 960_000 < truth.tip_height < 1_000_000
    assert truth.reward_blocks == DEFAULT_REWARD_BLOCKS == 144


def test_network_truth_is_pure_and_follows_the_clock(demo_scenario: Scenario) -> None:
    assert network_truth(demo_scenario, FIXED_T) == network_truth(demo_scenario, FIXED_T)
    later = network_truth(demo_scenario, FIXED_T + 6 * 600)
    assert later.tip_height == network_truth(demo_scenario, FIXED_T).tip_height + 6
    with pytest.raises(ValueError, match="network"):
        network_truth(scenario_with(None), FIXED_T)


# --- /api/v1/mining/hashrate/{period} ---


@pytest.mark.parametrize("period", list(PERIOD_DAYS))
def test_hashrate_shape_units_and_values(demo_server: SimulatorServer, truth: NetworkTruth, period: str) -> None:
    response = get(demo_server, f"/v1/mining/hashrate/{period}")
    assert response.status_code == 200
    assert response.headers["X-total-count"] == str(truth.tip_height + 1)
    assert response.headers["Cache-Control"] == "public"
    assert parsedate_to_datetime(response.headers["Expires"]).timestamp() == FIXED_T + 300
    body = response.json()
    assert list(body) == ["hashrates", "difficulty", "currentHashrate", "currentDifficulty"]
    # Plain JSON numbers, H/s: exactly the truth.
    assert body["currentHashrate"] == truth.hashrate_hs
    assert body["currentDifficulty"] == truth.difficulty
    assert isinstance(body["currentHashrate"], float)

    days = body["hashrates"]
    assert len(days) == PERIOD_DAYS[period]
    today = FIXED_T - FIXED_T % DAY_S
    assert [d["timestamp"] for d in days] == list(range(today - len(days) * DAY_S, today, DAY_S))  # 00:00 UTC
    for day in days:
        assert set(day) == {"timestamp", "avgHashrate"}
        assert 1.0e21 < day["avgHashrate"] < 1.2e21

    for adjustment in body["difficulty"]:
        assert set(adjustment) == {"timestamp", "difficulty", "height"}
        assert adjustment["height"] % EPOCH_BLOCKS == 0
        assert FIXED_T - PERIOD_DAYS[period] * DAY_S <= adjustment["timestamp"] <= FIXED_T
        assert 1.4e14 < adjustment["difficulty"] < 1.6e14
    assert [a["height"] for a in body["difficulty"]] == sorted(a["height"] for a in body["difficulty"])
    if PERIOD_DAYS[period] >= 30:  # an epoch lasts 14 days at 600 s per block
        assert len(body["difficulty"]) >= 2
        assert body["difficulty"][-1]["difficulty"] == truth.difficulty


@pytest.mark.parametrize("period", ["all", "2d", "1h", "24H", "3y/extra"])
def test_unknown_periods_are_404(demo_server: SimulatorServer, period: str) -> None:
    assert get(demo_server, f"/v1/mining/hashrate/{period}").status_code == 404


def test_hashrate_needs_a_period(demo_server: SimulatorServer) -> None:
    assert get(demo_server, "/v1/mining/hashrate").status_code == 404
    assert get(demo_server, "/v1/mining/hashrate/").status_code == 404


# --- /api/v1/mining/reward-stats/{blockCount} ---


@pytest.mark.parametrize("blocks", [1, 100, 144, 2016])
def test_reward_stats_totals_are_strings_of_sats(
    demo_server: SimulatorServer, demo_scenario: Scenario, truth: NetworkTruth, blocks: int
) -> None:
    body = ok_json(demo_server, f"/v1/mining/reward-stats/{blocks}")
    assert list(body) == ["startBlock", "endBlock", "totalReward", "totalFee", "totalTx"]
    assert isinstance(body["startBlock"], int)
    assert isinstance(body["endBlock"], int)
    assert (body["startBlock"], body["endBlock"]) == (truth.tip_height - blocks + 1, truth.tip_height)
    for key in ("totalReward", "totalFee", "totalTx"):
        assert isinstance(body[key], str)
        assert body[key].isdigit()
    network = demo_scenario.network
    assert network is not None
    reward, fees, txs = int(body["totalReward"]), int(body["totalFee"]), int(body["totalTx"])
    assert reward == network.block_subsidy_sats * blocks + fees
    assert 0.5 * blocks * network.fees_per_block_sats <= fees <= 1.5 * blocks * network.fees_per_block_sats
    assert txs >= 1_500 * blocks
    assert round(Fraction(reward, blocks)) == network_truth(demo_scenario, FIXED_T, blocks).block_reward_sats
    if blocks == DEFAULT_REWARD_BLOCKS:
        assert round(Fraction(reward, blocks)) == truth.block_reward_sats


@pytest.mark.parametrize("count", ["0", "abc", "-5", "1.5"])
def test_reward_stats_rejects_a_bad_block_count(demo_server: SimulatorServer, count: str) -> None:
    assert get(demo_server, f"/v1/mining/reward-stats/{count}").status_code == 400


def test_reward_stats_stop_at_the_genesis_block() -> None:
    scenario = scenario_with(NETWORK | {"tip_height": 10})
    start = scenario.history_start_ts
    with SimulatorServer(scenario, clock=lambda: start) as server:
        body = ok_json(server, "/v1/mining/reward-stats/144")
    assert (body["startBlock"], body["endBlock"]) == (0, 10)
    assert int(body["totalReward"]) == 11 * DEFAULT_BLOCK_SUBSIDY_SATS + int(body["totalFee"])


# --- /api/v1/difficulty-adjustment ---


def test_difficulty_adjustment_fields_and_units(demo_server: SimulatorServer, truth: NetworkTruth) -> None:
    body = ok_json(demo_server, "/v1/difficulty-adjustment")
    assert list(body) == [
        "progressPercent",
        "difficultyChange",
        "estimatedRetargetDate",
        "remainingBlocks",
        "remainingTime",
        "previousRetarget",
        "previousTime",
        "nextRetargetHeight",
        "timeAvg",
        "adjustedTimeAvg",
        "timeOffset",
        "expectedBlocks",
    ]
    for key in ("progressPercent", "difficultyChange", "previousRetarget", "expectedBlocks"):
        assert isinstance(body[key], float), key
    for key in ("estimatedRetargetDate", "remainingBlocks", "remainingTime", "previousTime", "nextRetargetHeight"):
        assert isinstance(body[key], int), key
    for key in ("timeAvg", "adjustedTimeAvg", "timeOffset"):
        assert isinstance(body[key], int), key

    in_epoch = truth.tip_height % EPOCH_BLOCKS
    assert body["remainingBlocks"] == EPOCH_BLOCKS - in_epoch
    assert body["nextRetargetHeight"] == truth.tip_height + body["remainingBlocks"]
    assert body["nextRetargetHeight"] % EPOCH_BLOCKS == 0
    assert body["progressPercent"] == pytest.approx(in_epoch / EPOCH_BLOCKS * 100)
    # ms: the block interval, the time left, the retarget date; seconds: previousTime.
    assert 590_000 <= body["timeAvg"] <= 610_000
    assert 590_000 <= body["adjustedTimeAvg"] <= 610_000
    assert body["remainingTime"] == body["remainingBlocks"] * body["adjustedTimeAvg"]
    assert body["estimatedRetargetDate"] == FIXED_T * 1000 + body["remainingTime"]
    assert FIXED_T - 15 * DAY_S < body["previousTime"] <= FIXED_T
    assert body["expectedBlocks"] == pytest.approx((FIXED_T - body["previousTime"]) / 600)
    assert body["timeOffset"] == 0
    assert -75 <= body["difficultyChange"] <= 300
    assert -2 < body["previousRetarget"] < 2


def test_difficulty_adjustment_early_in_an_epoch() -> None:
    scenario = scenario_with(NETWORK | {"tip_height": 2016 * 480})  # history_start's block opens an epoch
    start = scenario.history_start_ts
    with SimulatorServer(scenario, clock=lambda: start + 10) as server:
        body = ok_json(server, "/v1/difficulty-adjustment")
    assert (body["remainingBlocks"], body["progressPercent"]) == (2016, 0.0)
    assert (body["timeAvg"], body["difficultyChange"], body["previousTime"]) == (600_000, 0.0, start)
    assert body["expectedBlocks"] == pytest.approx(10 / 600)


# --- /api/blocks/tip/height ---


def test_tip_height_is_plain_text_and_follows_the_clock() -> None:
    scenario = scenario_with(NETWORK)
    now = [scenario.history_start_ts + 599]
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        response = get(server, "/blocks/tip/height")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text == "960000"
        now[0] += 1
        assert get(server, "/blocks/tip/height").text == "960001"
        assert network_truth(scenario, now[0]).tip_height == 960_001


def test_no_credential_and_get_only(demo_server: SimulatorServer) -> None:
    assert get(demo_server, "/blocks/tip/height").status_code == 200
    assert requests.post(f"{demo_server.url}/api/blocks/tip/height", timeout=5).status_code == 404


def test_without_a_network_table_mempool_is_not_served() -> None:
    with SimulatorServer(scenario_with(None), clock=lambda: FIXED_T) as server:
        assert get(server, "/blocks/tip/height").status_code == 404
        assert get(server, "/v1/mining/hashrate/3d").status_code == 404
        with pytest.raises(KeyError):
            server.set_network_fault("mempool", "auth")


# --- faults ---


@pytest.fixture
def mempool_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario_with(NETWORK), clock=lambda: FIXED_T) as server:
        yield server


def test_rate_limit_is_429_with_retry_after(mempool_server: SimulatorServer) -> None:
    mempool_server.set_network_fault("mempool", "rate_limit")
    response = get(mempool_server, "/v1/mining/hashrate/3d")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "30")


@pytest.mark.parametrize(("fault", "status"), [("auth", 403), ("server_error", 500)])
def test_status_faults(mempool_server: SimulatorServer, fault: Any, status: int) -> None:
    mempool_server.set_network_fault("mempool", fault)
    assert get(mempool_server, "/v1/mining/reward-stats/144").status_code == status


def test_malformed_and_truncated(mempool_server: SimulatorServer) -> None:
    mempool_server.set_network_fault("mempool", "malformed")
    response = get(mempool_server, "/v1/difficulty-adjustment")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    mempool_server.set_network_fault("mempool", "truncated")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(mempool_server, "/v1/difficulty-adjustment")


def test_refused(mempool_server: SimulatorServer) -> None:
    mempool_server.set_network_fault("mempool", "refused")
    with pytest.raises(requests.ConnectionError):
        get(mempool_server, "/blocks/tip/height")


@pytest.mark.parametrize("fault", ["hang", "latency"])
def test_slow_faults(mempool_server: SimulatorServer, fault: Any) -> None:
    mempool_server.set_network_fault("mempool", fault)
    with pytest.raises(requests.Timeout):
        get(mempool_server, "/blocks/tip/height", timeout=0.1)
    started = time.monotonic()
    tip = network_truth(mempool_server.scenario, FIXED_T).tip_height
    assert get(mempool_server, "/blocks/tip/height").text == str(tip)  # after 0.3 s (scenario_with)
    assert time.monotonic() - started >= 0.3


def test_wrong_types_and_missing_fields(mempool_server: SimulatorServer) -> None:
    mempool_server.set_network_fault("mempool", "wrong_types")
    body = ok_json(mempool_server, "/v1/mining/reward-stats/144")
    assert all(value in WRONG_VALUES for value in body.values())
    assert get(mempool_server, "/blocks/tip/height").text == "n/a"
    mempool_server.set_network_fault("mempool", "missing_fields")
    assert ok_json(mempool_server, "/v1/mining/reward-stats/144") == {}
    hashrate = ok_json(mempool_server, "/v1/mining/hashrate/3d")
    assert hashrate["hashrates"] == [{}, {}, {}]
    assert set(hashrate) == {"hashrates", "difficulty"}
    assert get(mempool_server, "/blocks/tip/height").text == ""
    mempool_server.reset_faults()
    assert get(mempool_server, "/blocks/tip/height").text == str(
        network_truth(mempool_server.scenario, FIXED_T).tip_height
    )


def test_requests_are_counted_as_mempool_network(mempool_server: SimulatorServer) -> None:
    get(mempool_server, "/blocks/tip/height")
    get(mempool_server, "/v1/mining/hashrate/1w")
    get(mempool_server, "/not/mempool")
    assert mempool_server.request_counts() == {"mempool:network": 2}


def test_the_scenario_schedules_network_faults() -> None:
    scenario = scenario_with(NETWORK | {"fault": "server_error", "fault_from": FIXED_T, "fault_until": FIXED_T + 60})
    now = [FIXED_T - 1]
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        statuses = []
        for t in (FIXED_T - 1, FIXED_T, FIXED_T + 59, FIXED_T + 60):
            now[0] = t
            statuses.append(get(server, "/blocks/tip/height").status_code)
    assert statuses == [200, 500, 500, 200]


# --- the [network] table ---


def test_network_table_defaults() -> None:
    network = scenario_with(NETWORK).network
    assert network == Network(difficulty=1.5e14, hashrate_ehs=1100.0, fees_per_block_sats=3_000_000, tip_height=960_000)
    assert network.block_subsidy_sats == DEFAULT_BLOCK_SUBSIDY_SATS == 312_500_000
    assert network.fault_at(FIXED_T) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"difficulty": 0}, "network.difficulty"),
        ({"hashrate_ehs": "1100"}, "network.hashrate_ehs"),
        ({"tip_height": -1}, "network.tip_height"),
        ({"fees_per_block_sats": 1.5}, "network.fees_per_block_sats"),
        ({"block_subsidy_sats": -1}, "network.block_subsidy_sats"),
        ({"fault": "gone"}, "network.fault"),
        ({"fault": "auth", "fault_from": FIXED_T, "fault_until": FIXED_T}, "network.fault_until"),
        ({"extra": 1}, "network.extra: unknown key"),
    ],
)
def test_network_table_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_with(NETWORK | change)


def test_network_table_requires_its_figures() -> None:
    for key in NETWORK:
        with pytest.raises(ScenarioError, match=f"network.{key}: required"):
            scenario_with({k: v for k, v in NETWORK.items() if k != key})
    with pytest.raises(ScenarioError, match="network: expected a table"):
        scenario_with([NETWORK])  # type: ignore[arg-type]


def test_every_fault_is_a_network_fault() -> None:
    for fault in FAULTS:
        assert scenario_with(NETWORK | {"fault": fault}).network is not None
