"""Pure parsers for EMCD v1 responses: payload in, normalized values out (H/s, satoshis, unix s).

EMCD sends hashrates in H/s, coin amounts as JSON floats in whole coins, times in unix seconds, and
reports errors as a `{"code": ..., "message": ...}` body whatever the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.adapters.parsing import (
    amount_sats,
    field,
    integer,
    last_share_time,
    mapping,
    number,
    payout_sats,
    required_amount_sats,
    required_unix_time,
    sequence,
    text,
)
from collector.errors import AuthFailed, BadResponse, NoData
from collector.models import Earning, Payout, PoolSettings, WorkerStats

# The `info` endpoint keys coins by long name; every other endpoint takes the lower-case ticker.
COIN_NAMES: dict[str, str] = {
    "BTC": "bitcoin",
    "BCH": "bitcoin_cash",
    "BSV": "bitcoin_sv",
    "LTC": "litecoin",
    "DASH": "dash",
    "ETH": "eth",
    "ETC": "etc",
    "DOGE": "doge",
}


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The coin's section of `/v1/info/{key}`."""

    balance_sats: int | None
    settings: PoolSettings


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    """Totals and workers from `/v1/{coin}/workers/{key}`."""

    hashrate_hs: float | None
    hashrate_1h_hs: float | None
    hashrate_24h_hs: float | None
    workers_active: int | None
    workers_inactive: int | None
    workers: tuple[WorkerStats, ...]


def check_error(payload: Any, where: str) -> None:
    """Raise the typed error an EMCD error body stands for."""
    if isinstance(payload, dict) and "code" in payload and "message" in payload:
        message = str(payload.get("message"))[:120]
        code = payload.get("code")
        if code in (401, 403, "401", "403") or any(w in message.lower() for w in ("key", "auth", "token")):
            raise AuthFailed(f"{where}: EMCD rejected the API key (code {code})")
        raise BadResponse(f"{where}: EMCD error code {code}: {message}")


# EMCD's documented `active` states (reference §1.1): 1 active; 0 inactive, -1 dead, 2 "nonstable" are all
# not hashing steadily. Any other value is a state nobody documented: refused, not read as offline.
_ACTIVE_STATES = {1: True, 0: False, -1: False, 2: False}


def _is_active(value: Any, where: str) -> bool | None:
    """EMCD's `active` (an integer or a digit string) as online / not online; None if absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadResponse(f"{where}: expected an integer state, got {type(value).__name__}")
    state = value if isinstance(value, int) else value.strip()
    for known, online in _ACTIVE_STATES.items():
        if state == known or state == str(known):
            return online
    shown = str(value)[:20] if isinstance(value, str) or abs(value) < 10**20 else "a huge integer"
    raise BadResponse(f"{where}: unknown state {shown!r}")


def parse_info(payload: Any, coin: str) -> AccountInfo:
    """Parse the balance and configured payout address of `coin` from the account info."""
    where = "info"
    check_error(payload, where)
    name = COIN_NAMES.get(coin)
    body = mapping(payload, where)
    if name is None or body.get(name) is None:
        raise NoData(f"{where}: the account has no {coin} section")
    section = mapping(body[name], f"{where}.{name}")
    address = text(section, "address", f"{where}.{name}")
    return AccountInfo(
        balance_sats=amount_sats(section, "balance", f"{where}.{name}"),
        settings=PoolSettings(payout_address=address or None),
    )


def parse_workers(payload: Any) -> WorkerSummary:
    """Parse worker totals, each worker, and the dead workers listed apart in `detailsDead`."""
    where = "workers"
    check_error(payload, where)
    body = mapping(payload, where)
    counts = mapping(field(body, "total_count", where), f"{where}.total_count")
    totals = mapping(field(body, "total_hashrate", where), f"{where}.total_hashrate")
    workers = []
    for i, raw in enumerate(sequence(body.get("details") or [], f"{where}.details")):
        item_where = f"{where}.details[{i}]"
        item = mapping(raw, item_where)
        workers.append(
            WorkerStats(
                name=text(item, "worker", item_where, required=True) or "",
                online=_is_active(item.get("active"), f"{item_where}.active"),
                hashrate_hs=number(item, "hashrate", item_where),
                hashrate_1h_hs=number(item, "hashrate1h", item_where),
                hashrate_24h_hs=number(item, "hashrate24h", item_where),
                last_share_ts=last_share_time(item, "lastbeat", item_where),
            )
        )
    dead = body.get("detailsDead")
    # Older responses send [] instead of {} when no worker is dead.
    if isinstance(dead, dict):
        for name, lastbeat in sorted(dead.items()):
            workers.append(
                WorkerStats(
                    name=name, online=False, last_share_ts=last_share_time({"lastbeat": lastbeat}, "lastbeat", where)
                )
            )
    elif dead not in (None, []):
        raise BadResponse(f"{where}.detailsDead: expected an object, got {type(dead).__name__}")
    inactive = integer(counts, "inactive", f"{where}.total_count")
    dead_count = integer(counts, "dead_count", f"{where}.total_count")
    return WorkerSummary(
        hashrate_hs=number(totals, "hashrate", f"{where}.total_hashrate"),
        hashrate_1h_hs=number(totals, "hashrate1h", f"{where}.total_hashrate"),
        hashrate_24h_hs=number(totals, "hashrate24h", f"{where}.total_hashrate"),
        workers_active=integer(counts, "active", f"{where}.total_count"),
        # Both categories are documented (reference §1.1): one missing makes the total unknown, not a smaller one.
        workers_inactive=None if inactive is None or dead_count is None else inactive + dead_count,
        workers=tuple(workers),
    )


def parse_income(payload: Any) -> tuple[Earning, ...]:
    """Parse the accrual history: one credit per day and type (fpps, referral, ...)."""
    where = "income"
    check_error(payload, where)
    earnings = []
    for i, raw in enumerate(sequence(field(mapping(payload, where), "income", where), f"{where}.income")):
        item_where = f"{where}.income[{i}]"
        item = mapping(raw, item_where)
        credited = required_unix_time(item, "timestamp", item_where)
        amount = required_amount_sats(item, "income", item_where)
        # The type is part of the credit's identity (one credit per day and type): without it a replay could not
        # find the same point again, so a row without one is refused rather than written under a made-up type.
        kind = text(item, "type", item_where, required=True) or ""
        if not kind:
            raise BadResponse(f"{item_where}: empty 'type'")
        earnings.append(
            Earning(credited_at=credited, amount_sats=amount, kind=kind, event_id=f"emcd:{kind}:{credited}")
        )
    return tuple(earnings)


def parse_payouts(payload: Any) -> tuple[Payout, ...]:
    """Parse the payouts that were sent; EMCD gives no address per payout (the configured one is in `info`).

    A pending payout (`txid` null) is left out: its `timestamp` is the request time and changes to the
    send time once it leaves, so writing it would count the same payout twice. It is written once sent.
    """
    where = "payouts"
    check_error(payload, where)
    payouts = []
    for i, raw in enumerate(sequence(field(mapping(payload, where), "payouts", where), f"{where}.payouts")):
        item_where = f"{where}.payouts[{i}]"
        item = mapping(raw, item_where)
        sent = required_unix_time(item, "timestamp", item_where)
        amount = payout_sats(item, "amount", item_where)
        txid = text(item, "txid", item_where)
        if not txid:
            continue
        payouts.append(
            Payout(sent_at=sent, amount_sats=amount, address=None, txid=txid, status="sent", event_id=f"emcd:{txid}")
        )
    return tuple(payouts)
