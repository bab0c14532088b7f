"""ViaBTC pool open API wire format (reference pool-apis.md §4): X-API-KEY header, optional HMAC signature,
a `{"code", "data", "message"}` envelope with HTTP 200 for errors, hashrates and BTC amounts as strings.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from simulator import truth
from simulator.pools.base import (
    RETRY_AFTER_S,
    Request,
    Response,
    Route,
    accounts_by_secret,
    btc_string,
    history_bins,
    json_response,
)
from simulator.pools.f2pool import current_history_bin
from simulator.scenario import Account, Scenario, day_start_ts

PREFIX = "/res/openapi/v1/"
_PATH = re.compile(
    r"^/res/openapi/v1/(account|hashrate|hashrate/worker|hashrate/chart|profit/history|wallet/payment/history)/?$"
)
# The simulator's reading of "some financial reads are signed" (reference §4.1): the payment history needs
# `tonce` + `X-SIGNATURE`; on every other endpoint a signature is optional but checked when sent.
SIGNED_ENDPOINTS = frozenset({"wallet/payment/history"})
# Coins ViaBTC mines; the simulated accounts mine BTC, another known coin answers the shapes, empty.
KNOWN_COINS = ("BTC", "BCH", "LTC", "ETH", "ETC", "ZEC", "DASH", "CKB", "DOGE", "KAS")
WINDOW_10M_S = 600
TONCE_WINDOW_MS = 60_000
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
DEFAULT_RANGE_DAYS = 30
BEIJING_OFFSET_S = 8 * 3600
# `hashrate/chart`: `interval` min | hour | day is one point per 10 min / 1 h / 1 day (reference §4.2); `period`
# (the number of points) is optional. The defaults and the most points kept are the simulator's choice.
CHART_INTERVALS: dict[str, int] = {"min": 600, "hour": 3600, "day": truth.DAY_S}
CHART_DEFAULT_POINTS: dict[str, int] = {"min": 144, "hour": 168, "day": 30}
CHART_MAX_POINTS: dict[str, int] = {"min": 30 * 144, "hour": 90 * 24, "day": 365}

ERROR_MESSAGES = {
    2: "invalid argument",
    5001: "invalid coin",
    12001: "invalid api key",
    12002: "signature error",
    12003: "invalid tonce",
}


class _ApiError(Exception):
    """An error the API answers with its envelope (HTTP 200, non-zero code)."""

    def __init__(self, code: int) -> None:
        super().__init__(ERROR_MESSAGES.get(code, "error"))
        self.code = code


class ViabtcApi:
    """Routes and renders the ViaBTC open API endpoints for one scenario."""

    def __init__(self, scenario: Scenario, *, current_bin: bool = False) -> None:
        """`current_bin`: the chart also holds the point in progress, with its mean so far (a partial figure)."""
        self._scenario = scenario
        self._accounts = accounts_by_secret(scenario, "viabtc")
        self._current_bin = current_bin

    def route(self, request: Request) -> Route | None:
        """Match a ViaBTC open API path and select the account by its `X-API-KEY` header."""
        if request.method != "GET":
            return None  # the read endpoints are GET-only
        match = _PATH.match(request.path)
        if match is None:
            return None
        key = request.headers.get("x-api-key")
        account = self._accounts.get(key.strip()) if key is not None else None
        return Route(endpoint=match.group(1), account=account, request=request, coin=request.query.get("coin", ""))

    def render(self, route: Route, t: int) -> Response:
        """Check the signature where there is one (or must be one), then render the endpoint at `t`."""
        account = route.account
        if account is None:
            return self.auth_error()
        try:
            check_signature(route.endpoint, route.request, account, t)
            return json_response(self._body(route, account, t))
        except _ApiError as exc:
            return error_response(exc.code)

    def auth_error(self) -> Response:
        """ViaBTC answers HTTP 200 with code 12001 for a missing or unknown API key (reference §4.1, §11.5)."""
        return error_response(12001)

    def rate_limited(self) -> Response:
        """429 with Retry-After and an envelope (ViaBTC documents no limit; the fault makes one explicit)."""
        return json_response(
            {"code": 429, "data": None, "message": "too many requests"},
            status=429,
            headers=(("Retry-After", str(RETRY_AFTER_S)),),
        )

    def _body(self, route: Route, account: Account, t: int) -> dict[str, Any]:
        if route.endpoint == "account":
            return envelope(account_data(self._scenario, account, t))
        query = route.request.query
        coin = query.get("coin")
        if not coin:
            raise _ApiError(2)
        if coin.upper() not in KNOWN_COINS:
            raise _ApiError(5001)
        mine = coin.upper() == account.coin
        if route.endpoint == "hashrate":
            return envelope(hashrate(self._scenario, account, t, coin.upper(), mine))
        if route.endpoint == "hashrate/chart":
            interval, points, utc_days = _chart_query(query)
            if not mine:
                return envelope([])
            return envelope(chart_rows(self._scenario, account, t, interval, points, utc_days, self._current_bin))
        page, limit = _paging(query)
        if route.endpoint == "hashrate/worker":
            rows = worker_rows(self._scenario, account, t, coin.upper()) if mine else []
            return envelope(paged(rows, page, limit))
        utc = query.get("utc") == "true"
        first, last = _date_range(query, t, utc)
        if route.endpoint == "profit/history":
            rows = profit_rows(self._scenario, account, t, utc, first, last) if mine else []
            return envelope(paged(rows, page, limit))
        rows = payment_rows(self._scenario, account, t, utc, first, last) if mine else []
        return payment_page(rows, page, limit)


# --- envelope, errors, signatures ---


def envelope(data: Any) -> dict[str, Any]:
    """`{"code": 0, "data": ..., "message": "OK"}`."""
    return {"code": 0, "data": data, "message": "OK"}


def error_response(code: int) -> Response:
    """An error envelope with HTTP 200, as ViaBTC answers every error it recognises."""
    return json_response({"code": code, "data": None, "message": ERROR_MESSAGES.get(code, "error")})


def signature(secret_key: str, query: str) -> str:
    """hex(HMAC-SHA256(secret_key, query string)) (reference §4.1)."""
    return hmac.new(secret_key.encode(), query.encode(), hashlib.sha256).hexdigest()


def check_signature(endpoint: str, request: Request, account: Account, t: int) -> None:
    """Raise the error ViaBTC answers for a missing or wrong signature or tonce.

    The payload is the query string as sent. The server hands over parsed parameters (in the order
    received), so the string is rebuilt with form encoding: exact for the plain values the API takes.
    The tonce must lie within a minute before the server's time (whole seconds here, so up to 999 ms
    ahead of the floored clock is still "now").
    """
    sent = request.headers.get("x-signature")
    if sent is None and endpoint not in SIGNED_ENDPOINTS:
        return
    if sent is None or account.api_secret is None:
        raise _ApiError(12002)
    tonce = request.query.get("tonce", "")
    if not tonce.isdigit():
        raise _ApiError(12003)
    now_ms = t * 1000
    if not now_ms - TONCE_WINDOW_MS <= int(tonce) < now_ms + 1000:
        raise _ApiError(12003)
    expected = signature(account.api_secret, urlencode(list(request.query.items())))
    if not hmac.compare_digest(expected, sent.strip().lower()):
        raise _ApiError(12002)


def _paging(query: Any) -> tuple[int, int]:
    try:
        page = int(query.get("page", "1"))
        limit = int(query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        raise _ApiError(2) from None
    if page < 1 or not 1 <= limit <= MAX_LIMIT:
        raise _ApiError(2)
    return page, limit


def paged(rows: Sequence[dict[str, Any]], page: int, limit: int) -> dict[str, Any]:
    """A page in the nested shape: `{count, curr_page, data: [...], has_next, total, total_page}`."""
    chunk = list(rows[(page - 1) * limit : page * limit])
    total_page = max(1, math.ceil(len(rows) / limit))
    return {
        "count": len(chunk),
        "curr_page": page,
        "data": chunk,
        "has_next": page < total_page,
        "total": len(rows),
        "total_page": total_page,
    }


# --- endpoints ---


def _hs(value: float) -> str:
    """A hashrate as ViaBTC sends it: a string of whole H/s."""
    return str(round(value))


def account_data(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET account`: the account, its configured withdrawal address and its balance per coin."""
    address = truth.payout_address(account)
    return {
        "account": {
            "id": 100_000 + int(900_000 * truth.seeded_fraction(scenario.seed, "viabtc", account.username, "id")),
            "parent_user_id": None,
            "create_time": scenario.history_start_ts,
            "account": account.username,
            "email": f"{account.username}@example.com",
            "country_code": "7",
            "mobile": "",
            "country": "Russia",
        },
        "observer": [],
        "withdraw_address": [] if address is None else [{"coin": account.coin, "address": address}],
        "balance": [{"coin": account.coin, "amount": btc_string(truth.balance_sats(scenario, account, t))}],
    }


def hashrate(scenario: Scenario, account: Account, t: int, coin: str, mine: bool) -> dict[str, Any]:
    """`GET hashrate?coin=`: 10 min / 1 h / 24 h means in H/s (strings) and the worker counts."""
    if not mine:
        return {
            "coin": coin,
            "hashrate_10min": "0",
            "hashrate_1hour": "0",
            "hashrate_24hour": "0",
            "active_workers": 0,
            "unactive_workers": 0,
        }
    states = truth.workers(scenario, account, t)
    active = sum(1 for w in states if w.online)
    return {
        "coin": coin,
        "hashrate_10min": _hs(truth.account_hashrate(scenario, account, t, WINDOW_10M_S)),
        "hashrate_1hour": _hs(truth.account_hashrate(scenario, account, t, truth.WINDOW_1H_S)),
        "hashrate_24hour": _hs(truth.account_hashrate(scenario, account, t, truth.WINDOW_24H_S)),
        "active_workers": active,
        "unactive_workers": len(states) - active,
    }


def _chart_query(query: Any) -> tuple[str, int, bool]:
    interval = query.get("interval", "")
    if interval not in CHART_INTERVALS:
        raise _ApiError(2)
    raw = query.get("period")
    try:
        points = CHART_DEFAULT_POINTS[interval] if raw in (None, "") else int(raw)
    except ValueError:
        raise _ApiError(2) from None
    if points < 1:
        raise _ApiError(2)
    return interval, min(points, CHART_MAX_POINTS[interval]), query.get("utc") == "true"


def chart_rows(
    scenario: Scenario,
    account: Account,
    t: int,
    interval: str,
    points: int,
    utc_days: bool,
    current_bin: bool = False,
) -> list[dict[str, Any]]:
    """`GET hashrate/chart` points: the last `points` complete bins, oldest first, each stamped with its start.

    `hashrate` is the bin's mean in H/s, a string. Day bins are Beijing days unless `utc=true`. Bins during an
    outage of the pool's API are there (the pool kept mining); bins before the scenario's history start are not.
    With `current_bin` (10-minute and hourly points), the point in progress comes last, holding the mean of its
    elapsed part only (a figure that will still change).
    """
    length = CHART_INTERVALS[interval]
    shift = BEIJING_OFFSET_S if interval == "day" and not utc_days else 0
    rows = []
    # A Beijing day starts at 16:00 UTC: shift the clock so the bins align to Beijing midnights.
    bins = history_bins(scenario, account, t + shift, length, points)
    if current_bin and not shift:
        bins.append(current_history_bin(scenario, account, t, length))
    for b in bins:
        start = b.start - shift
        rate = truth.account_hashes(scenario, account, start, start + length) / length if shift else b.hashrate_hs
        reject = 0.002 if rate > 0 else 0.0
        rows.append({"timestamp": start, "hashrate": _hs(rate), "reject_rate": f"{reject:.4f}"})
    return rows


def worker_rows(scenario: Scenario, account: Account, t: int, coin: str) -> list[dict[str, Any]]:
    """`GET hashrate/worker` rows, in scenario order; default group (`group_id`/`group_name` null)."""
    rows = []
    for index, (worker, state) in enumerate(zip(account.workers, truth.workers(scenario, account, t), strict=True)):
        rows.append(
            {
                "worker_id": 1_000_001 + index,
                "worker_name": state.name,
                "worker_status": "active" if state.online else "unactive",
                "coin": coin,
                "group_id": None,
                "group_name": None,
                "hashrate_10min": _hs(truth.worker_hashrate(scenario, account, worker, t, WINDOW_10M_S)),
                "hashrate_1hour": _hs(state.hashrate.h1h),
                "hashrate_24hour": _hs(state.hashrate.h24h),
                "reject_rate": f"{state.reject_pct / 100:.4f}",
                "last_active": state.last_share_ts,
            }
        )
    return rows


def daily_profits(scenario: Scenario, account: Account, t: int, utc: bool) -> list[tuple[date, int]]:
    """Completed days and their credit in sats, oldest first: UTC days, or Beijing (UTC+8) days.

    UTC days are the ground truth's credits. A Beijing day is valued the same way over its own 24 hours
    (from 16:00 UTC the day before), counting no hashes before the scenario's history start.
    """
    if utc:
        return [(e.day, e.amount_sats) for e in truth.daily_earnings(scenario, account, t)]
    return [
        (day, _beijing_day_sats(scenario, account, day))
        for day in _days_between(scenario.history_start, truth.utc_day(t + BEIJING_OFFSET_S) - timedelta(days=1))
    ]


def _beijing_day_sats(scenario: Scenario, account: Account, day: date) -> int:
    start = max(day_start_ts(day) - BEIJING_OFFSET_S, scenario.history_start_ts)
    hashes = truth.account_hashes(scenario, account, start, day_start_ts(day) - BEIJING_OFFSET_S + truth.DAY_S)
    return truth.hashes_to_sats(scenario, hashes)


def _days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def profit_rows(
    scenario: Scenario, account: Account, t: int, utc: bool, first: date, last: date
) -> list[dict[str, Any]]:
    """`GET profit/history` rows in [first, last], newest first; all of it is PPS profit."""
    rows = []
    for day, amount in reversed(daily_profits(scenario, account, t, utc)):
        if first <= day <= last:
            rows.append(
                {
                    "date": day.isoformat(),
                    "coin": account.coin,
                    "pps_profit": btc_string(amount),
                    "pplns_profit": "0",
                    "solo_profit": "0",
                    "total_profit": btc_string(amount),
                }
            )
    return rows


def payment_id(scenario: Scenario, account: Account, index: int) -> int:
    """A stable payment record id: a seeded base per account plus the payout's index."""
    return 900_000 + int(90_000 * truth.seeded_fraction(scenario.seed, "viabtc", account.username, "pay")) + index


def payment_rows(
    scenario: Scenario, account: Account, t: int, utc: bool, first: date, last: date
) -> list[dict[str, Any]]:
    """`GET wallet/payment/history` rows created in [first, last] (UTC or Beijing days), newest first.

    A payment record is created when the payout is requested (`create_time`, which never changes); `tx` is
    an empty string until the transaction is sent, then its txid.
    """
    day_of: Callable[[int], date] = truth.utc_day if utc else (lambda ts: truth.utc_day(ts + BEIJING_OFFSET_S))
    rows = []
    for p in reversed(truth.payout_schedule(scenario, account, t)):
        if first <= day_of(p.requested_at) <= last:
            rows.append(
                {
                    "id": payment_id(scenario, account, p.index),
                    "coin": account.coin,
                    "amount": btc_string(p.amount_sats),
                    "address": p.address,
                    "tx": p.txid if p.sent_at is not None else "",
                    "create_time": p.requested_at,
                }
            )
    return rows


def payment_page(rows: Sequence[dict[str, Any]], page: int, limit: int) -> dict[str, Any]:
    """The wiki's payment-history shape: paging fields at the top level beside a `data` array."""
    inner = paged(rows, page, limit)
    return {"code": 0, **{k: v for k, v in inner.items() if k != "data"}, "data": inner["data"], "message": "OK"}


def _date_range(query: Any, t: int, utc: bool) -> tuple[date, date]:
    today = truth.utc_day(t if utc else t + BEIJING_OFFSET_S)
    last = _parse_day(query.get("end_date"), today)
    first = _parse_day(query.get("start_date"), last - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    return first, last


def _parse_day(value: str | None, default: date) -> date:
    if value is None or value == "":
        return default
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _ApiError(2) from None
