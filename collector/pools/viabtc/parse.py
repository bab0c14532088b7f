"""Pure parsers and the request signer for the ViaBTC pool API: payload in, normalized values out.

ViaBTC wraps every answer in `{"code": 0, "data": ..., "message": "OK"}` (a non-zero `code` is an error,
with HTTP 200), sends hashrates as strings in H/s, BTC amounts as strings in whole coins, times in unix
seconds and days as `YYYY-MM-DD` (UTC days when asked with `utc=true`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from collector.adapters.parsing import (
    Payload,
    amount_sats,
    field,
    hashrate_samples,
    integer,
    last_share_time,
    mapping,
    number,
    payout_sats,
    record_id,
    required_amount_sats,
    required_unix_time,
    sequence,
    text,
    without_account_prefix,
)
from collector.errors import AuthFailed, BadResponse
from collector.models import Earning, HashrateSample, Payout, PoolSettings, SectionIssue, WorkerStats

# Error codes that mean "your credentials (or where you call from) are not accepted" (reference §4.1).
AUTH_CODES: dict[int, str] = {
    12001: "invalid API key",
    12002: "signature error",
    12003: "invalid tonce",
    12004: "IP address not in the key's allow-list",
}
_WORKER_ONLINE = {"active": True, "unactive": False, "inactive": False}


@dataclass(frozen=True, slots=True)
class Hashrate:
    """The account totals from `hashrate?coin=...`."""

    hashrate_hs: float | None
    hashrate_1h_hs: float | None
    hashrate_24h_hs: float | None
    workers_active: int | None
    workers_inactive: int | None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What `account` shows for one coin: the account name, the balance, the configured payout address.

    `settings` is None when the answer has no `withdraw_address` list at all (nothing is known); a list
    without an entry for the coin means no address is set.
    """

    username: str | None
    balance_sats: int | None
    settings: PoolSettings | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged endpoint: its rows and whether another page follows."""

    rows: Sequence[Any]
    has_next: bool


# --- request signing (reference §4.1) ---


def sign(secret_key: str, payload: str) -> str:
    """`X-SIGNATURE`: lower-case hex HMAC-SHA256 of the payload (the query string as sent) under the secret key."""
    return hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def query_string(params: Sequence[tuple[str, str]]) -> str:
    """The URL query string exactly as it is sent (and signed): pairs in the given order, form-encoded."""
    return urlencode(list(params))


def signed_query(params: Sequence[tuple[str, str]], *, tonce_ms: int, secret_key: str) -> tuple[str, str]:
    """The query string with `tonce` appended, and its signature."""
    query = query_string([*params, ("tonce", str(tonce_ms))])
    return query, sign(secret_key, query)


# --- the envelope ---


def unwrap(payload: Any, where: str) -> Payload:
    """Check the envelope and return it; a non-zero `code` raises the typed error it stands for."""
    body = mapping(payload, where)
    code = body.get("code")
    if code is None:
        raise BadResponse(f"{where}: missing 'code' in the envelope")
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise BadResponse(f"{where}.code: expected an integer, got {type(code).__name__}")
    try:
        number_code = int(code)
    except ValueError:
        raise BadResponse(f"{where}.code: expected an integer, got {str(code)[:20]!r}") from None
    if number_code != 0:
        message = str(body.get("message"))[:120]
        if number_code in AUTH_CODES:
            raise AuthFailed(f"{where}: ViaBTC refused the request: code {number_code} ({AUTH_CODES[number_code]})")
        raise BadResponse(f"{where}: ViaBTC error code {number_code}: {message}")
    return body


def _data_object(payload: Any, where: str) -> Payload:
    body = unwrap(payload, where)
    return mapping(field(body, "data", where), f"{where}.data")


def parse_page(payload: Any, where: str) -> Page:
    """A page of a paged endpoint, in either documented shape.

    Most endpoints nest the page in `data` (`data.data[]`, `data.has_next`); the wiki shows
    `wallet/payment/history` with `data` as the array and the paging fields beside it (reference §4.2).
    """
    body = unwrap(payload, where)
    data = field(body, "data", where)
    if isinstance(data, list):
        return Page(rows=data, has_next=_has_next(body, where))
    holder = mapping(data, f"{where}.data")
    rows = sequence(field(holder, "data", f"{where}.data"), f"{where}.data.data")
    return Page(rows=rows, has_next=_has_next(holder, f"{where}.data"))


def _has_next(holder: Payload, where: str) -> bool:
    """`has_next` if given, else `curr_page < total_page`, else no further page."""
    flag = holder.get("has_next")
    if flag is not None:
        if not isinstance(flag, bool):
            raise BadResponse(f"{where}.has_next: expected true or false, got {type(flag).__name__}")
        return flag
    current = integer(holder, "curr_page", where)
    total = integer(holder, "total_page", where)
    return current is not None and total is not None and current < total


# --- endpoints ---


def parse_hashrate(payload: Any) -> Hashrate:
    """`hashrate?coin=...`: 10 min / 1 h / 24 h hashrates (H/s strings) and worker counts."""
    where = "hashrate"
    data = _data_object(payload, where)
    return Hashrate(
        hashrate_hs=number(data, "hashrate_10min", f"{where}.data"),
        hashrate_1h_hs=number(data, "hashrate_1hour", f"{where}.data"),
        hashrate_24h_hs=number(data, "hashrate_24hour", f"{where}.data"),
        workers_active=integer(data, "active_workers", f"{where}.data"),
        workers_inactive=integer(data, "unactive_workers", f"{where}.data"),
    )


def _coin_entry(data: Payload, key: str, coin: str, where: str) -> Payload | None:
    """The item of the list `data[key]` whose `coin` is `coin` (case-insensitive), or None."""
    rows = data.get(key)
    if rows is None:
        return None
    for i, raw in enumerate(sequence(rows, f"{where}.{key}")):
        item = mapping(raw, f"{where}.{key}[{i}]")
        name = text(item, "coin", f"{where}.{key}[{i}]")
        if name is not None and name.upper() == coin.upper():
            return item
    return None


def parse_account(payload: Any, coin: str) -> AccountInfo:
    """`account`: the account name, the coin's balance and its configured withdrawal address."""
    where = "account"
    data = _data_object(payload, where)
    profile = data.get("account")
    username = None if profile is None else text(mapping(profile, f"{where}.data.account"), "account", where)
    balance = _coin_entry(data, "balance", coin, f"{where}.data")
    address_entry = _coin_entry(data, "withdraw_address", coin, f"{where}.data")
    settings = None
    if data.get("withdraw_address") is not None:
        address = None if address_entry is None else text(address_entry, "address", f"{where}.withdraw_address")
        settings = PoolSettings(payout_address=address or None)
    return AccountInfo(
        username=username or None,
        balance_sats=None if balance is None else amount_sats(balance, "amount", f"{where}.balance"),
        settings=settings,
    )


def parse_workers(
    rows: Sequence[Any], username: str | None, issues: list[SectionIssue] | None = None
) -> tuple[WorkerStats, ...]:
    """Rows of `hashrate/worker` pages: name, `active`/`unactive` (sic), windows in H/s, last activity.

    With the account name unknown, a worker whose name has a dot is left out (the others are kept) and, when
    `issues` is given, one `workers` issue says how many were.
    """
    workers = []
    ambiguous = 0
    for i, raw in enumerate(rows):
        where = f"hashrate/worker[{i}]"
        item = mapping(raw, where)
        name = text(item, "worker_name", where, required=True) or ""
        if username is None and "." in name:
            # "farmop.rack2x05" or a worker really named so? Only the account name (from `account`) can tell;
            # guessing would write the same worker under a second `worker` tag.
            ambiguous += 1
            continue
        status = text(item, "worker_status", where)
        workers.append(
            WorkerStats(
                name=without_account_prefix(name, username),
                online=None if status is None else _WORKER_ONLINE.get(status.lower()),
                hashrate_hs=number(item, "hashrate_10min", where),
                hashrate_1h_hs=number(item, "hashrate_1hour", where),
                hashrate_24h_hs=number(item, "hashrate_24hour", where),
                last_share_ts=last_share_time(item, "last_active", where),
            )
        )
    if ambiguous and issues is not None:
        message = f"hashrate/worker: {ambiguous} worker name(s) with a dot left out: the account name is unknown"
        issues.append(SectionIssue("workers", "bad_response", message))
    return tuple(workers)


def _utc_day_start(value: str | None, where: str) -> int:
    if value is None:
        raise BadResponse(f"{where}: missing 'date'")
    try:
        if len(value) != 10:
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise BadResponse(f"{where}.date: expected YYYY-MM-DD, got {value[:20]!r}") from None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def parse_profit_history(rows: Sequence[Any]) -> tuple[Earning, ...]:
    """Rows of `profit/history` (asked with `utc=true`): one credit per UTC day, `total_profit` in BTC."""
    earnings = []
    for i, raw in enumerate(rows):
        where = f"profit/history[{i}]"
        item = mapping(raw, where)
        day = text(item, "date", where)
        start = _utc_day_start(day, where)
        earnings.append(
            Earning(
                credited_at=start,
                amount_sats=required_amount_sats(item, "total_profit", where),
                kind="daily",
                event_id=f"viabtc:daily:{day}",
            )
        )
    return tuple(earnings)


def parse_payments(rows: Sequence[Any]) -> tuple[Payout, ...]:
    """Rows of `wallet/payment/history`: one payout per payment `id` that has left (has a `tx`), at `create_time`.

    A payment without a `tx` has not been broadcast and may still be cancelled: it is written once it has one.
    `create_time` belongs to the payment record and never changes, so replays overwrite the same point.
    """
    payouts = []
    for i, raw in enumerate(rows):
        where = f"wallet/payment/history[{i}]"
        item = mapping(raw, where)
        payment_id = record_id(item, "id", where)
        txid = text(item, "tx", where)
        if not txid:
            continue
        payouts.append(
            Payout(
                sent_at=required_unix_time(item, "create_time", where),
                amount_sats=payout_sats(item, "amount", where),
                address=text(item, "address", where) or None,
                txid=txid,
                status="sent",
                event_id=f"viabtc:payment:{payment_id}",
            )
        )
    return tuple(payouts)


def coin_rows(rows: Sequence[Any], coin: str, where: str) -> list[Any]:
    """Rows whose `coin` is `coin` or absent: a pool that ignores the `coin` filter must not mix coins in."""
    kept = []
    for i, raw in enumerate(rows):
        item: Mapping[str, Any] = mapping(raw, f"{where}[{i}]")
        name = text(item, "coin", f"{where}[{i}]")
        if name is None or name.upper() == coin.upper():
            kept.append(raw)
    return kept


def parse_hashrate_chart(payload: Any, window_s: int) -> tuple[HashrateSample, ...]:
    """`hashrate/chart`: one sample per point (`timestamp` unix s, `hashrate` an H/s string), oldest first.

    `data` is the list of points (or, should the pool page it, an object with the list under `data`). A point
    without a `hashrate` (absent or null) is left out: the pool has no figure for it, so it stays missing, never
    0. Each sample spans `window_s` (600 s for `interval=min`). A timestamp that is not unix seconds
    (milliseconds, say) or that is repeated is a BadResponse: which of two figures for one bin is right cannot be told.
    """
    where = "hashrate/chart"
    data = field(unwrap(payload, where), "data", where)
    if isinstance(data, Mapping):
        data = field(data, "data", f"{where}.data")
    return hashrate_samples(data, f"{where}.data", rate_key="hashrate", window_s=window_s)
