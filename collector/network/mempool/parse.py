"""Pure parsers for mempool.space mining responses: payload in, normalized values out (H/s, satoshis).

mempool sends hashrates in H/s and difficulty as plain JSON numbers, and the reward-stats totals as decimal
strings of satoshis (MySQL `SUM()` results, which its driver hands over as strings). Nothing here invents a
value: a figure mempool marks as unknown comes back as None, a broken one raises `BadResponse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from collector.adapters.parsing import Payload, field, mapping, number, required_integer
from collector.errors import BadResponse

# Every satoshi that will ever exist: no sum of block rewards can exceed it.
MAX_MONEY_SATS = 21_000_000 * 100_000_000
# About 1e10 times today's figures (difficulty ~1e14, hashrate ~1e21 H/s): a value above is a unit or
# encoding error, not the network.
MAX_DIFFICULTY = 1e24
MAX_HASHRATE_HS = 1e31
# About 190 years of blocks at one per 10 minutes.
MAX_HEIGHT = 10_000_000
# At most 19 digits: anything longer is above MAX_MONEY_SATS anyway, and int() never sees a huge string.
_WHOLE_SATS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class NetworkHashrate:
    """The current network figures from `/v1/mining/hashrate/{period}`; None where mempool did not know."""

    difficulty: float | None
    hashrate_hs: float | None


@dataclass(frozen=True, slots=True)
class RewardStats:
    """The totals from `/v1/mining/reward-stats/{blockCount}` over blocks `start_block..end_block` inclusive.

    `block_reward_sats` is the average reward (subsidy plus fees) per block, rounded half to even.
    """

    start_block: int
    end_block: int
    total_reward_sats: int
    total_fee_sats: int | None
    block_count: int
    block_reward_sats: int


def _current(body: Payload, key: str, where: str, limit: float) -> float | None:
    value = number(body, key, where, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BadResponse(f"{where}: missing {key!r}")
    if value > limit:
        raise BadResponse(f"{where}.{key}: implausibly large ({value:g} > {limit:g})")
    # mempool's backend sends 0 when it could not ask Bitcoin Core: unknown, never a real zero.
    return None if value == 0 else value


def parse_hashrate(payload: Any) -> NetworkHashrate:
    """Parse `currentDifficulty` and `currentHashrate` (H/s); a 0 in either means unknown (None).

    The daily `hashrates` and the `difficulty` adjustments in the same body are not read.
    """
    where = "hashrate"
    body = mapping(payload, where)
    return NetworkHashrate(
        difficulty=_current(body, "currentDifficulty", where, MAX_DIFFICULTY),
        hashrate_hs=_current(body, "currentHashrate", where, MAX_HASHRATE_HS),
    )


def _total_sats(body: Payload, key: str, where: str) -> int:
    """A sum of satoshis, sent as a digit string (or a whole JSON number), parsed exactly."""
    raw = field(body, key, where)
    if raw is None:
        raise BadResponse(f"{where}.{key}: null (the instance has no indexed blocks?)")
    if isinstance(raw, str):
        if not _WHOLE_SATS.fullmatch(raw):
            raise BadResponse(f"{where}.{key}: expected a whole number of satoshis, got {raw[:40]!r}")
        value = int(raw)
    elif type(raw) is int:  # exact, however large: the money check below names the problem
        value = required_integer(body, key, where) if raw < 0 else raw
    else:
        value = required_integer(body, key, where)
    if value > MAX_MONEY_SATS:
        raise BadResponse(f"{where}.{key}: {value} sats is more than all bitcoin that will ever exist")
    return value


def _height(body: Payload, key: str, where: str) -> int:
    value = required_integer(body, key, where)
    if value > MAX_HEIGHT:
        raise BadResponse(f"{where}.{key}: implausible block height {value}")
    return value


def parse_reward_stats(payload: Any, requested_blocks: int) -> RewardStats:
    """Parse the reward totals of the latest `requested_blocks` blocks and average them per block.

    The block count is `endBlock - startBlock + 1`. mempool sums the latest N *indexed* blocks, so a span
    wider than the N asked for means its index has gaps and the span is not the count: that is refused.
    A narrower span is an instance that has indexed fewer blocks so far, and is averaged over what it has.
    """
    where = "reward_stats"
    body = mapping(payload, where)
    start = _height(body, "startBlock", where)
    end = _height(body, "endBlock", where)
    if end < start:
        raise BadResponse(f"{where}: endBlock {end} is below startBlock {start}")
    count = end - start + 1
    if count > requested_blocks:
        raise BadResponse(
            f"{where}: blocks {start}..{end} span {count} blocks but {requested_blocks} were asked for "
            "(gaps in the instance's block index): the average would be wrong"
        )
    total_reward = _total_sats(body, "totalReward", where)
    total_fee = None if body.get("totalFee") is None else _total_sats(body, "totalFee", where)
    if total_fee is not None and total_fee > total_reward:
        # Fees are part of the reward (the coinbase outputs), so this response contradicts itself.
        raise BadResponse(f"{where}: totalFee {total_fee} exceeds totalReward {total_reward}")
    return RewardStats(
        start_block=start,
        end_block=end,
        total_reward_sats=total_reward,
        total_fee_sats=total_fee,
        block_count=count,
        block_reward_sats=round(Fraction(total_reward, count)),
    )
