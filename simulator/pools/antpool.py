"""AntPool wire format (reference pool-apis.md §5): HMAC-signed form posts, every number a string, mixed units.

Requests go to `/api/<name>.htm` as `POST` forms (the same fields in the query string, or a `GET`, work
too, as several clients rely on). Every request carries `key`, `nonce` and
`signature = upper(hex(HMAC-SHA256(api_secret, user_id + key + nonce)))`; the account is found by `key`
(`Account.secret`), the signature is checked with its `username` and `api_secret`, and its nonce must be
larger than the last one that key used. Errors come back as HTTP 200 with a non-zero `code`. The real error
codes are not documented (reference §12 #5); the simulator uses code 1 with these messages:
"Invalid key or signature" (unknown key, bad signature), "Invalid nonce: must increase" and
"Invalid parameter: ..." — the collector reads the message, not the number.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qsl

from simulator import truth
from simulator.pools.base import (
    RETRY_AFTER_S,
    Request,
    Response,
    Route,
    accounts_by_secret,
    btc_string,
    json_response,
)
from simulator.scenario import Account, Scenario, day_start_ts

_PATH = re.compile(r"^/api/(accountOverview|account|hashrate|userWorkerList|workers|paymentHistoryV2)\.htm$")
NONCE_ERROR = "nonce_error"
WINDOW_10M_S = 600
WINDOW_30M_S = 1_800
_UNITS = (("EH/s", 1e18), ("PH/s", 1e15), ("TH/s", 1e12), ("GH/s", 1e9), ("MH/s", 1e6), ("KH/s", 1e3))
_DEFAULT_PAGE_SIZE = 10
_MAX_PAGE_SIZE = 100


class AntpoolApi:
    """Routes and renders the AntPool endpoints for one scenario, checking every signature and nonce."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._accounts = accounts_by_secret(scenario, "antpool")
        self._last_nonce: dict[str, int] = {}
        self._lock = threading.Lock()

    def route(self, request: Request) -> Route | None:
        """Match `/api/<name>.htm`; the account is None unless key and signature are right."""
        match = _PATH.match(request.path)
        if match is None or request.method not in ("GET", "POST"):
            return None
        params = request_params(request)
        merged = Request(request.path, params, request.headers, request.method, request.body)
        account = self._accounts.get(params.get("key", ""))
        nonce = params.get("nonce", "")
        if account is None or account.api_secret is None or not nonce.isdigit():
            return Route(endpoint=match.group(1), account=None, request=merged)
        expected = sign(account.username, account.secret, account.api_secret, nonce)
        if not hmac.compare_digest(expected, params.get("signature", "")):
            return Route(endpoint=match.group(1), account=None, request=merged)
        with self._lock:
            if int(nonce) <= self._last_nonce.get(account.secret, -1):
                return Route(endpoint=NONCE_ERROR, account=account, request=merged)
            self._last_nonce[account.secret] = int(nonce)
        return Route(endpoint=match.group(1), account=account, request=merged)

    def render(self, route: Route, t: int) -> Response:
        """Render the route's endpoint for its account at `t`, in AntPool's envelope."""
        account = route.account
        if account is None:
            return self.auth_error()
        if route.endpoint == NONCE_ERROR:
            return error_response("Invalid nonce: must increase")
        params = route.request.query
        coin_key = "coinType" if route.endpoint == "userWorkerList" else "coin"
        if params.get(coin_key, "").upper() != account.coin:
            return error_response(f"Invalid parameter: {coin_key}")
        try:
            data = self._data(route.endpoint, account, t, params)
        except ValueError as exc:
            return error_response(f"Invalid parameter: {exc}")
        return json_response({"code": 0, "message": "ok", "data": data})

    def auth_error(self) -> Response:
        """HTTP 200 with a non-zero code, as AntPool answers a bad key or signature (reference §5.1)."""
        return error_response("Invalid key or signature")

    def rate_limited(self) -> Response:
        """429 with Retry-After (the real pool bans the IP for a while past 600 requests per 10 minutes)."""
        return json_response(
            {"code": 429, "message": "Too many requests", "data": None},
            status=429,
            headers=(("Retry-After", str(RETRY_AFTER_S)),),
        )

    def _data(self, endpoint: str, account: Account, t: int, params: Mapping[str, str]) -> Any:
        scenario = self._scenario
        if endpoint == "accountOverview":
            return overview(scenario, account, t)
        if endpoint == "account":
            return account_info(scenario, account, t)
        if endpoint == "hashrate":
            return hashrate(scenario, account, t)
        page, size = _paging(params)
        if endpoint == "userWorkerList":
            return {"result": paged(user_workers(scenario, account, t), page, size)}
        if endpoint == "workers":
            return paged(legacy_workers(scenario, account, t), page, size)
        kind = params.get("type", "")
        if kind == "payout":
            return paged(payout_rows(scenario, account, t), page, size)
        if kind == "recv":
            return paged(recv_rows(scenario, account, t), page, size)
        raise ValueError("type")


def request_params(request: Request) -> dict[str, str]:
    """Query-string fields overlaid by the form body's (AntPool takes either)."""
    params = dict(request.query)
    if request.body:
        params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def sign(user_id: str, key: str, secret: str, nonce: str) -> str:
    """upper(hex(HMAC-SHA256(secret, user_id + key + nonce))) (reference §5.1)."""
    return hmac.new(secret.encode(), f"{user_id}{key}{nonce}".encode(), sha256).hexdigest().upper()


def error_response(message: str) -> Response:
    """AntPool's error envelope: HTTP 200, non-zero code."""
    return json_response({"code": 1, "message": message, "data": None})


def _paging(params: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = int(params.get("page") or 1)
        size = int(params.get("pageSize") or _DEFAULT_PAGE_SIZE)
    except ValueError:
        raise ValueError("page") from None
    if page < 1 or not 1 <= size <= _MAX_PAGE_SIZE:
        raise ValueError("page")
    return page, size


def paged(rows: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """One page of `rows`, with AntPool's quirk: a short last page reports `page=1` (reference §5.2)."""
    total_pages = max((len(rows) + size - 1) // size, 1)
    chunk = rows[(page - 1) * size : page * size]
    shown = 1 if 0 < len(chunk) < size else page
    return {"page": shown, "totalPage": total_pages, "pageSize": size, "totalRecord": len(rows), "rows": chunk}


def _hs(value: float) -> str:
    """Whole H/s as a string (`accountOverview.htm`)."""
    return str(round(value))


def _mhs(value: float) -> str:
    """MH/s with two decimals as a string (legacy `hashrate.htm`, `workers.htm`)."""
    return f"{value / 1e6:.2f}"


def with_unit(value: float) -> str:
    """A hashrate with its unit, two decimals, as `userWorkerList.htm` shows it: "306.23 TH/s"."""
    for unit, factor in _UNITS:
        if value >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value:.2f} H/s"


def _yesterday_sats(scenario: Scenario, account: Account, t: int) -> int:
    credits = truth.daily_earnings(scenario, account, t)
    yesterday = day_start_ts(truth.utc_day(t)) - truth.DAY_S
    return credits[-1].amount_sats if credits and credits[-1].day_start_ts == yesterday else 0


def _worker_counts(scenario: Scenario, account: Account, t: int) -> tuple[int, int, int]:
    states = truth.workers(scenario, account, t)
    active = sum(1 for w in states if w.online)
    invalid = sum(1 for w in states if w.dead)
    return active, len(states) - active - invalid, invalid


def overview(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`accountOverview.htm`: H/s strings, counts as strings."""
    active, inactive, invalid = _worker_counts(scenario, account, t)
    return {
        "userId": account.username,
        "coinType": account.coin,
        "hsLast10m": _hs(truth.account_hashrate(scenario, account, t, WINDOW_10M_S)),
        "hsLast1h": _hs(truth.account_hashrate(scenario, account, t, truth.WINDOW_1H_S)),
        "hsLast1d": _hs(truth.account_hashrate(scenario, account, t, truth.WINDOW_24H_S)),
        "totalAmount": btc_string(truth.earned_sats(scenario, account, t)),
        "unpaidAmount": btc_string(truth.balance_sats(scenario, account, t)),
        "yesterdayAmount": btc_string(_yesterday_sats(scenario, account, t)),
        "activeWorkerNum": str(active),
        "inactiveWorkerNum": str(inactive),
        "invalidWorkerNum": str(invalid),
        "totalWorkerNum": str(active + inactive + invalid),
    }


def account_info(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`account.htm`: BTC strings; `settleTime` is the last settled (completed) UTC day."""
    return {
        "earn24Hours": btc_string(_yesterday_sats(scenario, account, t)),
        "earnTotal": btc_string(truth.earned_sats(scenario, account, t)),
        "paidOut": btc_string(truth.total_paid_sats(scenario, account, t)),
        "balance": btc_string(truth.balance_sats(scenario, account, t)),
        "settleTime": (truth.utc_day(t - truth.DAY_S)).isoformat(),
    }


def hashrate(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """Legacy `hashrate.htm`: MH/s strings for the last and the previous window; `dupelicate` as spelled."""
    body: dict[str, Any] = {}
    windows = (("10m", WINDOW_10M_S), ("30m", WINDOW_30M_S), ("1h", truth.WINDOW_1H_S), ("1d", truth.WINDOW_24H_S))
    for label, window in windows:
        body[f"last{label}"] = _mhs(truth.account_hashrate(scenario, account, t, window))
    for label, window in windows:
        body[f"prev{label}"] = _mhs(truth.account_hashrate(scenario, account, t - window, window))
    accepted = int(truth.account_hashrate(scenario, account, t, truth.WINDOW_24H_S) * truth.DAY_S // 2**32)
    active, inactive, invalid = _worker_counts(scenario, account, t)
    body |= {
        "accepted": str(accepted),
        "stale": str(accepted // 1000),
        "dupelicate": "0",
        "other": "0",
        "totalWorkers": active + inactive + invalid,
        "activeWorkers": active,
    }
    return body


def user_workers(scenario: Scenario, account: Account, t: int) -> list[dict[str, Any]]:
    """`userWorkerList.htm` rows: values with units, status 1 online / 2 offline / 3 invalid, times in ms."""
    rows = []
    for worker, state in zip(account.workers, truth.workers(scenario, account, t), strict=True):
        rows.append(
            {
                "workerId": worker.name,
                "userWorkerId": f"{account.username}.{worker.name}",
                "workerStatus": 1 if state.online else 3 if state.dead else 2,
                "hsLast10min": with_unit(truth.worker_hashrate(scenario, account, worker, t, WINDOW_10M_S)),
                "hsLast1H": with_unit(state.hashrate.h1h),
                "hsLast1D": with_unit(state.hashrate.h24h),
                "rejectRatio": f"{state.reject_pct:.2f}%",
                "onlineTimeLast24h": "24h" if state.online else "0h",
                "shareLastTime": str(state.last_share_ts * 1000),
                "createTime": str(scenario.history_start_ts * 1000),
            }
        )
    return rows


def legacy_workers(scenario: Scenario, account: Account, t: int) -> list[dict[str, Any]]:
    """Legacy `workers.htm` rows: `<user>.<worker>`, MH/s strings."""
    rows = []
    for worker in account.workers:
        row: dict[str, Any] = {"worker": f"{account.username}.{worker.name}"}
        for label, window in (("10m", WINDOW_10M_S), ("30m", WINDOW_30M_S), ("1h", 3600), ("1d", truth.DAY_S)):
            row[f"last{label}"] = _mhs(truth.worker_hashrate(scenario, account, worker, t, window))
        for label, window in (("10m", WINDOW_10M_S), ("30m", WINDOW_30M_S), ("1h", 3600), ("1d", truth.DAY_S)):
            row[f"prev{label}"] = _mhs(truth.worker_hashrate(scenario, account, worker, t - window, window))
        accepted = int(truth.worker_hashrate(scenario, account, worker, t, truth.DAY_S) * truth.DAY_S // 2**32)
        row |= {"accepted": str(accepted), "stale": str(accepted // 1000), "dupelicate": "0", "other": "0"}
        rows.append(row)
    return rows


def _datetime(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def payout_rows(scenario: Scenario, account: Account, t: int) -> list[dict[str, Any]]:
    """`paymentHistoryV2.htm?type=payout`, newest first; a queued payout has an empty `txId` and its request time."""
    rows = []
    for p in reversed(truth.payout_schedule(scenario, account, t)):
        sent = p.sent_at is not None
        rows.append(
            {
                "timestamp": _datetime(p.sent_at if p.sent_at is not None else p.requested_at),
                "amount": btc_string(p.amount_sats),
                "walletAddress": p.address,
                "txId": p.txid if sent else "",
            }
        )
    return rows


def recv_rows(scenario: Scenario, account: Account, t: int) -> list[dict[str, Any]]:
    """`paymentHistoryV2.htm?type=recv`, newest first: one row per completed UTC day (FPPS: all `ppsAmount`)."""
    return [
        {
            "timestamp": e.day.isoformat(),
            "amount": btc_string(e.amount_sats),
            "hashrate": f"{e.mean_hashrate_hs / 1e12:.2f}",
            "hashrate_unit": "TH/s",
            "ppsAmount": btc_string(e.amount_sats),
            "pplnsAmount": "0",
            "soloAmount": "0",
        }
        for e in reversed(truth.daily_earnings(scenario, account, t))
    ]
