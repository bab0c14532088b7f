"""Pure parsers for AntPool API responses: payload in, normalized values out (H/s, satoshis, unix s).

AntPool wraps every answer in `{"code": 0, "message": "ok", "data": {...}}` (HTTP 200 also for errors) and
sends every number as a string, in a unit that depends on the endpoint (reference pool-apis.md §5.1):
`accountOverview.htm` H/s, legacy `hashrate.htm` / `workers.htm` MH/s, `userWorkerList.htm` a value with
its unit (`"306.23 TH/s"`); amounts are BTC strings; times are ms (strings or numbers) or date strings.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from collector.adapters.parsing import (
    MAX_UNIX_S,
    Payload,
    amount_sats,
    field,
    integer,
    mapping,
    number,
    payout_sats,
    required_amount_sats,
    scaled,
    sequence,
    text,
    without_account_prefix,
)
from collector.errors import AuthFailed, BadResponse, RateLimited
from collector.models import Earning, Payout, WorkerStats
from collector.units import UnitError, parse_hashrate

MH = 1e6  # legacy endpoints send MH/s
# Words in an error message that mean the credentials (key, secret, user id) were refused.
_AUTH_WORDS = ("sign", "key", "auth", "permission", "user")
_RATE_WORDS = ("too many", "frequen", "rate limit")
# A number above this is a time in milliseconds, not seconds (1e11 s is the year 5138).
_MS_THRESHOLD = 100_000_000_000


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """Account-level figures from `accountOverview.htm` (or legacy `hashrate.htm`)."""

    hashrate_hs: float | None
    hashrate_1h_hs: float | None
    hashrate_24h_hs: float | None
    workers_active: int | None
    workers_inactive: int | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged list: its rows and whether another page follows."""

    rows: tuple[Any, ...]
    total_pages: int | None


def signature(user_id: str, api_key: str, api_secret: str, nonce: int) -> str:
    """upper(hex(HMAC-SHA256(api_secret, user_id + api_key + nonce))), as AntPool checks it."""
    message = f"{user_id}{api_key}{nonce}".encode()
    return hmac.new(api_secret.encode(), message, sha256).hexdigest().upper()


def unwrap(payload: Any, where: str) -> Any:
    """The `data` of an AntPool envelope; a non-zero `code` raises the typed error it stands for."""
    body = mapping(payload, where)
    code = field(body, "code", where)
    if isinstance(code, bool) or code not in (0, "0"):  # `false` == 0 in Python, but it is no success code
        message = str(body.get("message", ""))[:120]
        lowered = message.lower()
        if any(word in lowered for word in _RATE_WORDS):
            raise RateLimited(f"{where}: AntPool error code {code}: {message}")
        if any(word in lowered for word in _AUTH_WORDS):
            raise AuthFailed(f"{where}: AntPool rejected the credentials (code {code}: {message})")
        raise BadResponse(f"{where}: AntPool error code {code}: {message}")
    return field(body, "data", where)


def parse_overview(payload: Any) -> AccountSummary:
    """`accountOverview.htm`: 10 min / 1 h / 1 d hashrates in H/s strings, worker counts (strings or ints)."""
    where = "accountOverview"
    data = mapping(unwrap(payload, where), f"{where}.data")
    inactive = integer(data, "inactiveWorkerNum", where)
    invalid = integer(data, "invalidWorkerNum", where)
    return AccountSummary(
        hashrate_hs=number(data, "hsLast10m", where),
        hashrate_1h_hs=number(data, "hsLast1h", where),
        hashrate_24h_hs=number(data, "hsLast1d", where),
        workers_active=integer(data, "activeWorkerNum", where),
        # "Invalid" workers have been gone long enough for AntPool to list them apart; they are not hashing.
        # Either count missing makes the total unknown: the reference documents no omitted zero category.
        workers_inactive=None if inactive is None or invalid is None else inactive + invalid,
    )


def parse_hashrate_legacy(payload: Any) -> AccountSummary:
    """Legacy `hashrate.htm`: last10m / last1h / last1d in MH/s strings; worker counts only in some reads."""
    where = "hashrate"
    data = mapping(unwrap(payload, where), f"{where}.data")
    total = integer(data, "totalWorkers", where)
    active = integer(data, "activeWorkers", where)
    return AccountSummary(
        hashrate_hs=scaled(number(data, "last10m", where), MH),
        hashrate_1h_hs=scaled(number(data, "last1h", where), MH),
        hashrate_24h_hs=scaled(number(data, "last1d", where), MH),
        workers_active=active,
        # More active than total is a broken answer: the difference is unknown, not 0.
        workers_inactive=None if total is None or active is None or active > total else total - active,
    )


def parse_balance(payload: Any) -> int | None:
    """`account.htm`: the unpaid balance (`balance`, BTC string) in satoshis."""
    where = "account"
    return amount_sats(mapping(unwrap(payload, where), f"{where}.data"), "balance", where)


def page(payload: Any, where: str) -> Page:
    """The rows and page count of a paged list (`data.rows`, or `data.result.rows` in `userWorkerList.htm`)."""
    data = mapping(unwrap(payload, where), f"{where}.data")
    if "rows" not in data and isinstance(data.get("result"), dict):
        data = data["result"]
    rows = sequence(field(data, "rows", f"{where}.data"), f"{where}.rows")
    return Page(rows=tuple(rows), total_pages=integer(data, "totalPage", where))


def _suffixed_hashrate(item: Payload, key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadResponse(f"{where}.{key}: expected a string like '306.23 TH/s', got {type(value).__name__}")
    try:
        return parse_hashrate(value)
    except UnitError as exc:
        raise BadResponse(f"{where}.{key}: {exc}") from None


def unix_seconds(value: Any, where: str) -> int | None:
    """A time as AntPool sends it: ms or s (number or digit string), `YYYY-MM-DD[ HH:MM:SS]` (read as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadResponse(f"{where}: expected a time, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip().isdigit():
        raw = value.strip()
        for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return int(datetime.strptime(raw, layout).replace(tzinfo=UTC).timestamp())
            except ValueError:
                continue
        raise BadResponse(f"{where}: not a time: {raw[:40]!r}")
    moment = integer({"t": value}, "t", where)
    if moment is None:  # unreachable: the value is present
        raise BadResponse(f"{where}: not a time")
    seconds = moment // 1000 if moment >= _MS_THRESHOLD else moment
    if seconds > MAX_UNIX_S:
        raise BadResponse(f"{where}: not a time: {str(value)[:40]!r}")
    return seconds


def _online(status: Any, where: str) -> bool | None:
    """`workerStatus`: 1 online; 2 offline and 3 invalid (gone for long) are not hashing."""
    if status is None:
        return None
    value = integer({"workerStatus": status}, "workerStatus", where)
    if value not in (1, 2, 3):
        raise BadResponse(f"{where}.workerStatus: unknown state {status!r}")
    return value == 1


def parse_user_workers(rows: Sequence[Any], user_id: str) -> tuple[WorkerStats, ...]:
    """`userWorkerList.htm` rows: hashrates as `"<number> <unit>"` strings, `shareLastTime` in ms."""
    workers = []
    for i, raw in enumerate(rows):
        where = f"userWorkerList.rows[{i}]"
        item = mapping(raw, where)
        name = text(item, "workerId", where) or text(item, "userWorkerId", where, required=True) or ""
        workers.append(
            WorkerStats(
                name=without_account_prefix(name, user_id),
                online=_online(item.get("workerStatus"), where),
                hashrate_hs=_suffixed_hashrate(item, "hsLast10min", where),
                hashrate_1h_hs=_suffixed_hashrate(item, "hsLast1H", where),
                hashrate_24h_hs=_suffixed_hashrate(item, "hsLast1D", where),
                last_share_ts=unix_seconds(item.get("shareLastTime"), f"{where}.shareLastTime") or None,
            )
        )
    return tuple(workers)


def parse_legacy_workers(rows: Sequence[Any], user_id: str) -> tuple[WorkerStats, ...]:
    """Legacy `workers.htm` rows: `worker` is `<user>.<worker>`, hashrates in MH/s strings, no state field.

    A worker is online when it has a non-zero 10-minute hashrate (the list has no other sign of life).
    """
    workers = []
    for i, raw in enumerate(rows):
        where = f"workers.rows[{i}]"
        item = mapping(raw, where)
        rate = scaled(number(item, "last10m", where), MH)
        workers.append(
            WorkerStats(
                name=without_account_prefix(text(item, "worker", where, required=True) or "", user_id),
                online=None if rate is None else rate > 0,
                hashrate_hs=rate,
                hashrate_1h_hs=scaled(number(item, "last1h", where), MH),
                hashrate_24h_hs=scaled(number(item, "last1d", where), MH),
            )
        )
    return tuple(workers)


def parse_payouts(rows: Sequence[Any]) -> tuple[Payout, ...]:
    """`paymentHistoryV2.htm?type=payout` rows. A row without a `txId` has not left yet and is not written."""
    payouts = []
    for i, raw in enumerate(rows):
        where = f"paymentHistoryV2(payout).rows[{i}]"
        item = mapping(raw, where)
        txid = text(item, "txId", where)
        if not txid:
            continue
        sent = unix_seconds(field(item, "timestamp", where), f"{where}.timestamp")
        if sent is None:
            raise BadResponse(f"{where}: missing 'timestamp'")
        payouts.append(
            Payout(
                sent_at=sent,
                amount_sats=payout_sats(item, "amount", where),
                address=text(item, "walletAddress", where) or None,
                txid=txid,
                status="sent",
                event_id=f"antpool:payout:{txid}",
            )
        )
    return tuple(payouts)


def parse_earnings(rows: Sequence[Any]) -> tuple[Earning, ...]:
    """`paymentHistoryV2.htm?type=recv` rows: one credit per day; `amount` is the day's whole credit."""
    earnings = []
    for i, raw in enumerate(rows):
        where = f"paymentHistoryV2(recv).rows[{i}]"
        item = mapping(raw, where)
        moment = unix_seconds(field(item, "timestamp", where), f"{where}.timestamp")
        if moment is None:
            raise BadResponse(f"{where}: missing 'timestamp'")
        day = moment - moment % 86_400  # the start of the credited UTC day
        earnings.append(
            Earning(
                credited_at=day,
                amount_sats=required_amount_sats(item, "amount", where),
                kind="daily",
                event_id=f"antpool:recv:{day}",
            )
        )
    return tuple(earnings)
