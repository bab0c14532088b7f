"""Pure parsers for F2Pool API v2 responses: payload in, normalized values out (H/s, satoshis, unix s).

F2Pool sends hashrates as JSON doubles in H/s, amounts as JSON doubles in whole coins and times as unix
seconds. A success body has no envelope; an error is a `{"code": ..., "msg": "error_type: ..."}` body
whatever the HTTP status (reference pool-apis.md §3.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from collector.adapters.parsing import (
    Payload,
    field,
    hashrate_samples,
    integer,
    mapping,
    number,
    required_sats,
    required_unix_time,
    sats,
    sequence,
    text,
    unix_time,
    without_account_prefix,
)
from collector.errors import AuthFailed, BadResponse, RateLimited
from collector.models import Earning, HashrateSample, Payout, PoolSettings, WorkerStats

# The `currency` names of the coins F2Pool's hashrate module serves (reference §3.1).
CURRENCIES: dict[str, str] = {"BTC": "bitcoin", "BCH": "bitcoin-cash", "LTC": "litecoin"}

# Error codes that mean "this token may not do this": 5010 is the Tether mock's "permission denied"; the
# HTTP-style codes are accepted in case the pool echoes the status. F2Pool publishes no code list.
_AUTH_CODES = {401, 403, 5010}
_AUTH_WORDS = ("auth", "token", "secret", "permission", "forbidden", "unauthori")
_RATE_WORDS = ("rate limit", "rate_limit", "too many", "frequen")
# WorkerStatus: 0 Online, 1 Offline, 2 Expired (reference §3.2).
_ONLINE = 0


@dataclass(frozen=True, slots=True)
class AccountHashrate:
    """The account's windows from `/v2/hash_rate/info`."""

    name: str | None
    hashrate_hs: float | None
    hashrate_1h_hs: float | None
    hashrate_24h_hs: float | None


@dataclass(frozen=True, slots=True)
class WorkerList:
    """Every worker from `/v2/hash_rate/worker/list`, with the counts derived from their status."""

    workers: tuple[WorkerStats, ...]
    active: int | None
    inactive: int | None


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return int(value)
    return None


def check_error(payload: Any, where: str) -> None:
    """Raise the typed error an F2Pool error body stands for (`code` non-zero, whatever the status)."""
    if not isinstance(payload, dict) or "code" not in payload:
        return
    raw_code = payload.get("code")
    code = _code(raw_code)
    if code == 0 or raw_code is None:
        return  # some gateways add `"code": 0` to a success body
    message = str(payload.get("msg") or payload.get("message") or "")[:120]
    lowered = message.lower()
    if code in _AUTH_CODES or any(word in lowered for word in _AUTH_WORDS):
        raise AuthFailed(f"{where}: F2Pool rejected the API token (code {raw_code})")
    if code == 429 or any(word in lowered for word in _RATE_WORDS):
        raise RateLimited(f"{where}: F2Pool rate limit (code {raw_code}): {message}")
    raise BadResponse(f"{where}: F2Pool error code {raw_code}: {message}")


def _hashrate_info(obj: Payload, where: str) -> tuple[float | None, float | None, float | None]:
    return (
        number(obj, "hash_rate", where),
        number(obj, "h1_hash_rate", where),
        number(obj, "h24_hash_rate", where),
    )


def parse_hashrate_info(payload: Any) -> AccountHashrate:
    """Parse `info`: `hash_rate` (current), `h1_hash_rate`, `h24_hash_rate`, all in H/s."""
    where = "hash_rate/info"
    check_error(payload, where)
    info = mapping(field(mapping(payload, where), "info", where), f"{where}.info")
    current, hour, day = _hashrate_info(info, f"{where}.info")
    return AccountHashrate(
        name=text(info, "name", f"{where}.info"),
        hashrate_hs=current,
        hashrate_1h_hs=hour,
        hashrate_24h_hs=day,
    )


def _online(item: Payload, where: str) -> bool | None:
    status = integer(item, "status", where)
    return None if status is None else status == _ONLINE


def parse_workers(payload: Any, mining_user_name: str) -> WorkerList:
    """Parse the worker list; `status` 0 is online, 1 (offline) and 2 (expired) are not."""
    where = "hash_rate/worker/list"
    check_error(payload, where)
    rows = field(mapping(payload, where), "workers", where)
    if rows is None:  # no list at all is not "no workers": leave the counts unknown
        return WorkerList(workers=(), active=None, inactive=None)
    workers = []
    active = inactive = 0
    unknown = False
    for i, raw in enumerate(sequence(rows, f"{where}.workers")):
        item_where = f"{where}.workers[{i}]"
        item = mapping(raw, item_where)
        info_where = f"{item_where}.hash_rate_info"
        info = mapping(field(item, "hash_rate_info", item_where), info_where)
        current, hour, day = _hashrate_info(info, info_where)
        online = _online(item, item_where)
        if online is True:
            active += 1
        elif online is False:
            inactive += 1
        else:
            unknown = True
        workers.append(
            WorkerStats(
                name=without_account_prefix(text(info, "name", info_where, required=True) or "", mining_user_name),
                online=online,
                hashrate_hs=current,
                hashrate_1h_hs=hour,
                hashrate_24h_hs=day,
                # 0 means "no share yet", not 1970.
                last_share_ts=unix_time(item, "last_share_at", item_where) or None,
            )
        )
    if unknown:  # a worker of unknown state makes both counts unknown, never a count that leaves it out
        return WorkerList(workers=tuple(workers), active=None, inactive=None)
    return WorkerList(workers=tuple(workers), active=active, inactive=inactive)


def parse_balance(payload: Any) -> int | None:
    """Parse `balance_info.balance`: the balance as of 00:00 UTC today (today's accrual is not in it)."""
    where = "assets/balance"
    check_error(payload, where)
    info = mapping(field(mapping(payload, where), "balance_info", where), f"{where}.balance_info")
    return sats(info, "balance", f"{where}.balance_info")


def _is_payout(kind: str, item: Payload) -> bool:
    return kind.startswith("payout") or item.get("payout_extra") is not None


def parse_transactions(payload: Any) -> tuple[tuple[Earning, ...], tuple[Payout, ...]]:
    """Parse the bills: revenue rows become earnings, payout rows payouts (see the README for the rules).

    An earning is dated by `mining_extra.mining_date` (00:00 UTC of the day mined) when present, else by
    `created_at`. A payout (a payout-type bill, or any bill that takes money out) is written once it has a
    `tx_id`, at `created_at`, which never changes; a payout without one has not left, so it is not written yet.
    """
    where = "assets/transactions/list"
    check_error(payload, where)
    rows = field(mapping(payload, where), "transactions", where)
    earnings: list[Earning] = []
    payouts: list[Payout] = []
    for i, raw in enumerate(sequence([] if rows is None else rows, f"{where}.transactions")):
        item_where = f"{where}.transactions[{i}]"
        item = mapping(raw, item_where)
        bill_id = _bill_id(item, item_where)
        kind = (text(item, "type", item_where) or "unknown").lower()
        created = required_unix_time(item, "created_at", item_where)
        amount = required_sats(item, "changed_balance", item_where)
        # Money leaving the account is a payout whatever the bill's type is called, never a negative credit.
        if _is_payout(kind, item) or amount < 0:
            payout = _payout(item, item_where, bill_id, created)
            if payout is not None:
                payouts.append(payout)
            continue
        credited = created
        extra = item.get("mining_extra")
        if extra is not None:
            extra_where = f"{item_where}.mining_extra"
            credited = unix_time(mapping(extra, extra_where), "mining_date", extra_where) or created
        earnings.append(Earning(credited_at=credited, amount_sats=amount, kind=kind, event_id=f"f2pool:{bill_id}"))
    return tuple(earnings), tuple(payouts)


def _bill_id(item: Payload, where: str) -> str:
    value = field(item, "id", where)
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise BadResponse(f"{where}.id: expected an integer or string id, got {type(value).__name__}")
    return str(value).strip()


def _payout(item: Payload, where: str, bill_id: str, created: int) -> Payout | None:
    extra_raw = item.get("payout_extra")
    extra_where = f"{where}.payout_extra"
    extra = mapping(extra_raw, extra_where) if extra_raw is not None else {}
    txid = text(extra, "tx_id", extra_where)
    if not txid:
        return None
    amount = sats(extra, "value", extra_where)
    if amount is None:
        debit = required_sats(item, "changed_balance", where)
        amount = -debit
    if amount < 0:
        raise BadResponse(f"{where}: a payout of a negative amount")
    # `created_at` never changes; `paid_time` may arrive later, and moving the point then would count it twice.
    return Payout(
        sent_at=created,
        amount_sats=amount,
        address=text(extra, "address", extra_where) or None,
        txid=txid,
        status="sent",
        event_id=f"f2pool:{bill_id}",
    )


def parse_mining_user(payload: Any, currency: str) -> PoolSettings:
    """Parse the payout wallet configured for `currency` from `/v2/mining_user/get` (none set: address None)."""
    where = "mining_user/get"
    check_error(payload, where)
    wallets = mapping(payload, where).get("wallets")
    address = None
    for i, raw in enumerate(sequence([] if wallets is None else wallets, f"{where}.wallets")):
        item_where = f"{where}.wallets[{i}]"
        item = mapping(raw, item_where)
        if text(item, "currency", item_where) == currency:
            address = text(item, "address", item_where) or None
            break
    return PoolSettings(payout_address=address)


# The documented key first; Tether's client and mock read `hash_rate_list` (reference §3.2, discrepancy note).
_HISTORY_KEYS = ("history", "hash_rate_list")


def parse_hashrate_history(payload: Any, interval_s: int) -> tuple[HashrateSample, ...]:
    """Parse `/v2/hash_rate/history`: one sample per bin (`timestamp` unix s, `hash_rate` H/s), oldest first.

    The list is read from `history` (the doc) or `hash_rate_list` (Tether's mock). A bin without a `hash_rate`
    (absent or null) is left out: a bin the pool has no figure for stays missing, never 0. Each sample spans
    the `interval_s` asked for. A timestamp that is not unix seconds (milliseconds, say) or that is repeated is
    a BadResponse: which of two figures for one bin is right cannot be told.
    """
    where = "hash_rate/history"
    check_error(payload, where)
    body = mapping(payload, where)
    key = next((name for name in _HISTORY_KEYS if name in body), None)
    if key is None:
        raise BadResponse(f"{where}: missing 'history' (or 'hash_rate_list')")
    return hashrate_samples(body[key], f"{where}.{key}", rate_key="hash_rate", window_s=interval_s)
