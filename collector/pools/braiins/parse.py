"""Pure parsers for Braiins Pool responses: payload in, normalized values out (H/s, satoshis, unix s).

Braiins sends hashrates as numbers in the unit named by the sibling `hash_rate_unit` (usually "Gh/s"),
BTC amounts as decimal strings, payouts already in integer satoshis, and times in unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.adapters.parsing import (
    Payload,
    amount_sats,
    field,
    integer,
    last_share_time,
    mapping,
    number,
    required_amount_sats,
    required_integer,
    required_unix_time,
    scaled,
    sequence,
    text,
    without_account_prefix,
)
from collector.errors import BadResponse
from collector.models import Earning, Payout, WorkerStats
from collector.units import UnitError, hashrate_factor

_ONLINE_STATES = {"ok": True, "low": True, "off": False, "dis": False}


@dataclass(frozen=True, slots=True)
class Profile:
    """The account summary from `/accounts/profile/json/btc/`."""

    username: str | None
    hashrate_hs: float | None
    hashrate_1h_hs: float | None
    hashrate_24h_hs: float | None
    workers_active: int | None
    workers_inactive: int | None
    balance_sats: int | None


def _coin_section(payload: Any, where: str) -> Payload:
    return mapping(field(mapping(payload, where), "btc", where), f"{where}.btc")


def _unit_factor(obj: Payload, where: str) -> float:
    unit = text(obj, "hash_rate_unit", where)
    if unit is None:
        raise BadResponse(f"{where}: missing 'hash_rate_unit'")
    try:
        return hashrate_factor(unit)
    except UnitError as exc:
        raise BadResponse(f"{where}.hash_rate_unit: {exc}") from None


def _sum_counts(*counts: int | None) -> int | None:
    """The total of worker categories; one category missing makes it unknown (the pool sends all four)."""
    if any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)


def parse_profile(payload: Any) -> Profile:
    """Parse the profile: 5 min / 60 min / 24 h hashrates, worker counts, current balance."""
    where = "profile"
    btc = _coin_section(payload, where)
    factor = _unit_factor(btc, f"{where}.btc")
    return Profile(
        username=text(mapping(payload, where), "username", where),
        hashrate_hs=scaled(number(btc, "hash_rate_5m", where), factor),
        hashrate_1h_hs=scaled(number(btc, "hash_rate_60m", where), factor),
        hashrate_24h_hs=scaled(number(btc, "hash_rate_24h", where), factor),
        # "low" workers still hash (below their usual rate); "dis" means monitoring is switched off.
        workers_active=_sum_counts(integer(btc, "ok_workers", where), integer(btc, "low_workers", where)),
        workers_inactive=_sum_counts(integer(btc, "off_workers", where), integer(btc, "dis_workers", where)),
        balance_sats=amount_sats(btc, "current_balance", where),
    )


def worker_suffix(full_name: str, username: str | None) -> str:
    """Drop the leading `<username>.` Braiins puts before every worker name (whatever it is, if unknown)."""
    if username:
        return without_account_prefix(full_name, username)
    _, dot, tail = full_name.partition(".")
    return tail if dot and tail else full_name


def parse_workers(payload: Any, username: str | None) -> tuple[WorkerStats, ...]:
    """Parse the worker map keyed by `"<user>.<worker>"`."""
    where = "workers"
    workers = mapping(field(_coin_section(payload, where), "workers", f"{where}.btc"), f"{where}.btc.workers")
    result = []
    for full_name, raw in sorted(workers.items()):
        item_where = f"{where}[{full_name!r}]"
        item = mapping(raw, item_where)
        factor = _unit_factor(item, item_where)
        state = text(item, "state", item_where)
        result.append(
            WorkerStats(
                name=worker_suffix(full_name, username),
                online=None if state is None else _ONLINE_STATES.get(state.lower()),
                hashrate_hs=scaled(number(item, "hash_rate_5m", item_where), factor),
                hashrate_1h_hs=scaled(number(item, "hash_rate_60m", item_where), factor),
                hashrate_24h_hs=scaled(number(item, "hash_rate_24h", item_where), factor),
                last_share_ts=last_share_time(item, "last_share", item_where),
            )
        )
    return tuple(result)


def parse_daily_rewards(payload: Any) -> tuple[Earning, ...]:
    """Parse daily rewards: one credit per UTC day, `total_reward` (net of fees, referral included)."""
    where = "rewards"
    rows = sequence(field(_coin_section(payload, where), "daily_rewards", f"{where}.btc"), f"{where}.daily_rewards")
    earnings = []
    for i, raw in enumerate(rows):
        item_where = f"{where}.daily_rewards[{i}]"
        item = mapping(raw, item_where)
        day = required_unix_time(item, "date", item_where)
        amount = required_amount_sats(item, "total_reward", item_where)
        earnings.append(Earning(credited_at=day, amount_sats=amount, kind="daily", event_id=f"braiins:daily:{day}"))
    return tuple(earnings)


def parse_payouts(payload: Any) -> tuple[Payout, ...]:
    """Parse the on-chain and Lightning payouts that are confirmed: money that has left the account.

    Queued ones are left out until confirmed (a queued payout may still fail), failed ones for good. The
    point's time is the request time, which never changes, so replays overwrite it.
    """
    where = "payouts"
    body = mapping(payload, where)
    payouts = []
    for channel in ("onchain", "lightning"):
        if body.get(channel) is None:
            continue
        for i, raw in enumerate(sequence(body[channel], f"{where}.{channel}")):
            item_where = f"{where}.{channel}[{i}]"
            item = mapping(raw, item_where)
            status = (text(item, "status", item_where) or "unknown").lower()
            if status != "confirmed":
                continue
            requested = required_unix_time(item, "requested_at_ts", item_where)
            amount = required_integer(item, "amount_sats", item_where)
            # The address is part of the payout's identity (its event id, hence its point's time): a confirmed
            # payout without one cannot be written as the same point twice, so it is refused, not guessed.
            address = text(item, "destination", item_where, required=True)
            payouts.append(
                Payout(
                    sent_at=requested,
                    amount_sats=amount,
                    address=address,
                    txid=text(item, "tx_id", item_where) or None,  # "" is no txid, as null is
                    status=status,
                    event_id=f"braiins:{channel}:{requested}:{amount}:{address}",
                )
            )
    return tuple(payouts)
