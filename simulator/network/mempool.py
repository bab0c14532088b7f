"""mempool.space mining API (reference pool-apis.md §8): difficulty, network hashrate, block rewards, tip height.

The simulated chain is deterministic. Block `Network.tip_height` is found at 00:00 UTC on the scenario's
`history_start` and one block follows every 600 s, before and after. Each difficulty epoch (2016 blocks) has
its own difficulty, seeded within ±1.5 % of the configured one (the configured value is the epoch of
`tip_height`'s). The hashrate wobbles ±3 % around `hashrate_ehs` over 5 days. Each block's fees (and
transaction count) are seeded by height within ±50 % of `fees_per_block_sats`.

`network_truth()` gives the figures a collector should store, computed by the same functions that render
the endpoints, so a test can compare exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from email.utils import formatdate
from fractions import Fraction
from typing import Any

from simulator import truth
from simulator.pools.base import RETRY_AFTER_S, Request, Response, Route, json_response, text_response
from simulator.scenario import Fault, Network, Scenario

BLOCK_S = 600
EPOCH_BLOCKS = 2016
# Blocks whose average interval mempool reports as `adjustedTimeAvg` (a quarter epoch).
QUARTER_EPOCH_BLOCKS = 504
# For the first 7.2 % of an epoch mempool does not estimate the next adjustment (difficultyChange 0 here).
ESTIMATE_LAG_BLOCKS = 146
# `currentHashrate` is Bitcoin Core's getnetworkhashps(1008): the mean over about the last 7 days.
CURRENT_HASHRATE_BLOCKS = 1008
# The reward-stats window network_truth() assumes by default: one day of blocks, as collectors ask for.
DEFAULT_REWARD_BLOCKS = 144
# `{period}` values of the hashrate route and the days each covers (reference §8).
PERIOD_DAYS = {"24h": 1, "3d": 3, "1w": 7, "1m": 30, "3m": 90, "6m": 180, "1y": 365, "2y": 730, "3y": 1095}
HOUR_S = 3600
CACHE_S = 300  # mining routes are served with `Cache-control: public` and `Expires: now + 300 s`
_WOBBLE = 0.03
_WOBBLE_PERIOD_S = 5 * truth.DAY_S  # not a divisor of the 7-day currentHashrate window, so that moves too
_DIFFICULTY_SPREAD = 0.03
_FEE_SPREAD = 1.0  # fees per block range over [0.5, 1.5) × fees_per_block_sats
_TX_MIN, _TX_SPREAD = 1_500, 3_000

_HASHRATE = re.compile(r"^/api/v1/mining/hashrate/([^/]+)/?$")
_REWARD_STATS = re.compile(r"^/api/v1/mining/reward-stats/([^/]+)/?$")
_DIFFICULTY_ADJUSTMENT = re.compile(r"^/api/v1/difficulty-adjustment/?$")
_TIP_HEIGHT = re.compile(r"^/api/blocks/tip/height/?$")


@dataclass(frozen=True, slots=True)
class NetworkTruth:
    """What mempool reports at one instant, as a collector should store it.

    `difficulty` is `currentDifficulty` (the tip's epoch), `hashrate_hs` is `currentHashrate` (H/s, mean of the
    last 1008 blocks), `block_reward_sats` is the mean subsidy plus fees per block over the `reward_blocks`
    latest blocks (what `/v1/mining/reward-stats/{reward_blocks}` sums), rounded half to even.
    """

    difficulty: float
    hashrate_hs: float
    block_reward_sats: int
    tip_height: int
    reward_blocks: int


@dataclass(frozen=True, slots=True)
class RewardStats:
    """The sums `/v1/mining/reward-stats/{blockCount}` reports, over blocks start_block..end_block."""

    start_block: int
    end_block: int
    total_reward_sats: int
    total_fee_sats: int
    total_tx: int


def network_truth(scenario: Scenario, t: int, reward_blocks: int = DEFAULT_REWARD_BLOCKS) -> NetworkTruth:
    """The network figures at unix time `t`; ValueError if the scenario has no `[network]` table."""
    network = _network(scenario)
    stats = reward_stats(scenario, network, t, reward_blocks)
    count = stats.end_block - stats.start_block + 1
    return NetworkTruth(
        difficulty=current_difficulty(scenario, network, t),
        hashrate_hs=current_hashrate(scenario, network, t),
        block_reward_sats=round(Fraction(stats.total_reward_sats, count)),
        tip_height=tip_height(scenario, network, t),
        reward_blocks=reward_blocks,
    )


def _network(scenario: Scenario) -> Network:
    if scenario.network is None:
        raise ValueError("the scenario has no [network] table")
    return scenario.network


# --- the simulated chain ---


def tip_height(scenario: Scenario, network: Network, t: float) -> int:
    """Height of the latest block at `t` (never below 0)."""
    return max(0, network.tip_height + math.floor((t - scenario.history_start_ts) / BLOCK_S))


def block_time(scenario: Scenario, network: Network, height: int) -> int:
    """Unix seconds at which block `height` was found."""
    return scenario.history_start_ts + (height - network.tip_height) * BLOCK_S


def epoch_difficulty(scenario: Scenario, network: Network, epoch: int) -> float:
    """Difficulty of epoch `epoch` (blocks epoch × 2016 ..): the configured one, or seeded within ±1.5 % of it."""
    if epoch == network.tip_height // EPOCH_BLOCKS:
        return network.difficulty
    fraction = truth.seeded_fraction(scenario.seed, "network", "difficulty", str(epoch))
    return network.difficulty * (1 + _DIFFICULTY_SPREAD * (fraction - 0.5))


def current_difficulty(scenario: Scenario, network: Network, t: float) -> float:
    """`currentDifficulty`: the difficulty of the tip's epoch."""
    return epoch_difficulty(scenario, network, tip_height(scenario, network, t) // EPOCH_BLOCKS)


def hashrate_at(scenario: Scenario, network: Network, t: float) -> float:
    """The network's instantaneous hashrate in H/s."""
    phase = 2 * math.pi * truth.seeded_fraction(scenario.seed, "network", "phase")
    angle = 2 * math.pi * (t - scenario.history_start_ts) / _WOBBLE_PERIOD_S + phase
    return network.hashrate_ehs * 1e18 * (1 + _WOBBLE * math.sin(angle))


def _mean_hourly(scenario: Scenario, network: Network, start: int, hours: int) -> float:
    """Mean of the hashrate sampled mid-hour over `hours` hours from `start`."""
    samples = [hashrate_at(scenario, network, start + HOUR_S // 2 + i * HOUR_S) for i in range(hours)]
    return math.fsum(samples) / hours


def daily_hashrate(scenario: Scenario, network: Network, day_start: int) -> float:
    """`avgHashrate` of the UTC day starting at `day_start`."""
    return _mean_hourly(scenario, network, day_start, 24)


def current_hashrate(scenario: Scenario, network: Network, t: float) -> float:
    """`currentHashrate`: the mean over the last 1008 blocks (168 h), up to the last full hour before `t`."""
    hours = CURRENT_HASHRATE_BLOCKS * BLOCK_S // HOUR_S
    end = math.floor(t / HOUR_S) * HOUR_S
    return _mean_hourly(scenario, network, end - hours * HOUR_S, hours)


def block_fee_sats(scenario: Scenario, network: Network, height: int) -> int:
    """Fees collected by block `height`."""
    fraction = truth.seeded_fraction(scenario.seed, "network", "fee", str(height))
    return round(network.fees_per_block_sats * (1 - _FEE_SPREAD / 2 + _FEE_SPREAD * fraction))


def block_tx_count(scenario: Scenario, height: int) -> int:
    """Transactions in block `height` (coinbase included)."""
    return _TX_MIN + int(_TX_SPREAD * truth.seeded_fraction(scenario.seed, "network", "tx", str(height)))


def reward_stats(scenario: Scenario, network: Network, t: float, block_count: int) -> RewardStats:
    """Sums over the `block_count` latest blocks (fewer when the chain is shorter), as mempool's SQL does."""
    end = tip_height(scenario, network, t)
    start = max(0, end - block_count + 1)
    fees = [block_fee_sats(scenario, network, h) for h in range(start, end + 1)]
    return RewardStats(
        start_block=start,
        end_block=end,
        total_reward_sats=network.block_subsidy_sats * len(fees) + sum(fees),
        total_fee_sats=sum(fees),
        total_tx=sum(block_tx_count(scenario, h) for h in range(start, end + 1)),
    )


# --- the API ---


class MempoolApi:
    """Routes and renders the mempool.space endpoints for a scenario's `[network]`."""

    def __init__(self, scenario: Scenario, network: Network) -> None:
        self._scenario = scenario
        self._network = network

    @property
    def name(self) -> str:
        """Faults and request counts are keyed "mempool:network"."""
        return "mempool"

    def route(self, request: Request) -> Route | None:
        """Match a mempool path (GET only); there is no account."""
        if request.method != "GET":
            return None
        for pattern, endpoint in (
            (_HASHRATE, "hashrate"),
            (_REWARD_STATS, "reward-stats"),
            (_DIFFICULTY_ADJUSTMENT, "difficulty-adjustment"),
            (_TIP_HEIGHT, "tip-height"),
        ):
            if pattern.match(request.path):
                return Route(endpoint=endpoint, account=None, request=request)
        return None

    def render(self, route: Route, t: int) -> Response:
        """Render the route's endpoint at `t`."""
        scenario, network = self._scenario, self._network
        if route.endpoint == "tip-height":
            return text_response(str(tip_height(scenario, network, t)), 200)
        if route.endpoint == "difficulty-adjustment":
            return json_response(difficulty_adjustment(scenario, network, t))
        if route.endpoint == "hashrate":
            period = _param(_HASHRATE, route.request.path)
            if period not in PERIOD_DAYS:
                return text_response(f"Cannot GET {route.request.path}\n", 404)
            headers = (("X-total-count", str(tip_height(scenario, network, t) + 1)), *_cache_headers(t))
            return json_response(hashrate(scenario, network, t, period), headers=headers)
        raw = _param(_REWARD_STATS, route.request.path)
        if not raw.isdigit() or int(raw) == 0:
            return text_response("Invalid block count\n", 400)
        stats = reward_stats(scenario, network, t, int(raw))
        return json_response(
            {
                "startBlock": stats.start_block,
                "endBlock": stats.end_block,
                # MySQL SUM() results, which mempool's driver hands over as strings.
                "totalReward": str(stats.total_reward_sats),
                "totalFee": str(stats.total_fee_sats),
                "totalTx": str(stats.total_tx),
            },
            headers=_cache_headers(t),
        )

    def auth_error(self) -> Response:
        """There is no credential to reject: the public instance bans an abusive client with a 403."""
        return text_response("Forbidden\n", 403)

    def rate_limited(self) -> Response:
        """429 with Retry-After, as the public instance answers a client over its limit."""
        return text_response("Too Many Requests\n", 429, headers=(("Retry-After", str(RETRY_AFTER_S)),))

    def fault_at(self, t: float) -> Fault | None:
        """The `[network]` fault scheduled at `t`."""
        return self._network.fault_at(t)


def _param(pattern: re.Pattern[str], path: str) -> str:
    match = pattern.match(path)
    return match.group(1) if match else ""


def _cache_headers(t: int) -> tuple[tuple[str, str], ...]:
    return (("Cache-Control", "public"), ("Expires", formatdate(t + CACHE_S, usegmt=True)))


def hashrate(scenario: Scenario, network: Network, t: int, period: str) -> dict[str, Any]:
    """`GET /api/v1/mining/hashrate/{period}`: completed days' averages and the adjustments in the period."""
    days = PERIOD_DAYS[period]
    today = t - t % truth.DAY_S
    since = t - days * truth.DAY_S
    first_day = since - since % truth.DAY_S
    tip = tip_height(scenario, network, t)
    adjustments = []
    for epoch in range(tip_height(scenario, network, since) // EPOCH_BLOCKS, tip // EPOCH_BLOCKS + 1):
        height = epoch * EPOCH_BLOCKS
        found = block_time(scenario, network, height)
        if since <= found <= t:
            adjustments.append(
                {"timestamp": found, "difficulty": epoch_difficulty(scenario, network, epoch), "height": height}
            )
    return {
        "hashrates": [
            {"timestamp": day, "avgHashrate": daily_hashrate(scenario, network, day)}
            for day in range(first_day, today, truth.DAY_S)
        ],
        "difficulty": adjustments,
        "currentHashrate": current_hashrate(scenario, network, t),
        "currentDifficulty": current_difficulty(scenario, network, t),
    }


def difficulty_adjustment(scenario: Scenario, network: Network, t: int) -> dict[str, Any]:
    """`GET /api/v1/difficulty-adjustment`: the epoch's progress and estimate; times in ms except `previousTime`."""
    tip = tip_height(scenario, network, t)
    epoch = tip // EPOCH_BLOCKS
    in_epoch = tip % EPOCH_BLOCKS
    remaining = EPOCH_BLOCKS - in_epoch
    retarget_time = block_time(scenario, network, epoch * EPOCH_BLOCKS)
    elapsed = max(0, t - retarget_time)
    time_avg_ms = math.floor(elapsed / in_epoch * 1000) if in_epoch else BLOCK_S * 1000
    quarter_start = block_time(scenario, network, tip - QUARTER_EPOCH_BLOCKS)
    adjusted_avg_ms = math.floor((t - quarter_start) / QUARTER_EPOCH_BLOCKS * 1000)
    change = 0.0
    if in_epoch >= ESTIMATE_LAG_BLOCKS:
        span = (block_time(scenario, network, tip) if in_epoch == EPOCH_BLOCKS - 1 else t) - retarget_time
        change = min(300.0, max(-75.0, (BLOCK_S / (span / (in_epoch + 1)) - 1) * 100))
    previous = epoch_difficulty(scenario, network, epoch - 1)
    remaining_ms = remaining * adjusted_avg_ms
    return {
        "progressPercent": in_epoch / EPOCH_BLOCKS * 100,
        "difficultyChange": change,
        "estimatedRetargetDate": t * 1000 + remaining_ms,
        "remainingBlocks": remaining,
        "remainingTime": remaining_ms,
        "previousRetarget": (epoch_difficulty(scenario, network, epoch) / previous - 1) * 100,
        "previousTime": retarget_time,  # unix seconds (the block's timestamp), despite mempool's "ms" comment
        "nextRetargetHeight": tip + remaining,
        "timeAvg": time_avg_ms,
        "adjustedTimeAvg": adjusted_avg_ms,
        "timeOffset": 0,  # testnet only
        "expectedBlocks": elapsed / BLOCK_S,
    }
