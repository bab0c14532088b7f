"""F2Pool API v2 wire format (reference pool-apis.md §3): POST + JSON body, `F2P-API-SECRET`, H/s and BTC doubles.

Every endpoint is `POST /v2/...` with `Content-Type: application/json`; the token header selects the account
and the body must name it (`mining_user_name`) and the coin (`currency`). Success bodies have no envelope;
errors are `{"code": ..., "msg": "error_type: description"}` (HTTP 200, except the 429 of the rate fault).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from simulator import truth
from simulator.pools.base import (
    RETRY_AFTER_S,
    SATS_PER_BTC,
    HistoryBin,
    Request,
    Response,
    Route,
    accounts_by_secret,
    btc_float,
    history_bins,
    json_response,
)
from simulator.scenario import Account, Scenario, day_start_ts

TOKEN_HEADER = "f2p-api-secret"  # the server hands headers over in lower case
_PATHS = {
    "/v2/hash_rate/info": "hash_rate_info",
    "/v2/hash_rate/history": "hash_rate_history",
    "/v2/hash_rate/worker/list": "worker_list",
    "/v2/assets/balance": "balance",
    "/v2/assets/transactions/list": "transactions",
    "/v2/mining_user/get": "mining_user",
}
# `currency` values of the hashrate module (reference §3.1); the simulated accounts mine `bitcoin` only.
HASHRATE_CURRENCIES = ("bitcoin", "bitcoin-cash", "litecoin")
TRANSACTION_TYPES = ("all", "revenue", "reward", "dividend", "flash_exchange", "payout")
# F2Pool's "current" hashrate: its website shows a 15-minute average (the API does not name the window).
WINDOW_CURRENT_S = 900
DEFAULT_RANGE_S = 30 * truth.DAY_S
PARAMS_ERROR = 5001  # the Tether mock's codes (reference §3.1); F2Pool publishes none
PERMISSION_DENIED = 5010
PPS_FEE_RATE = 0.025
TX_FEE_SHARE_PER_MILLE = 56  # share of an FPPS credit shown as transaction fees in `mining_extra`
# `/v2/hash_rate/history`: `interval` a multiple of 600 s, `duration` at most 30 days (reference §3.2).
HISTORY_STEP_S = 600
HISTORY_MAX_S = 30 * truth.DAY_S
# Where the history list goes: `history` (the official doc) or `hash_rate_list` (Tether's mock); the reference
# notes the discrepancy, so the simulator can answer either way.
HistoryKey = Literal["history", "hash_rate_list"]


class F2PoolApi:
    """Routes and renders the F2Pool v2 endpoints for one scenario."""

    def __init__(self, scenario: Scenario, *, history_key: HistoryKey = "history", current_bin: bool = False) -> None:
        """`current_bin`: the history also holds the bin in progress, with its mean so far (a partial figure)."""
        self._scenario = scenario
        self._accounts = accounts_by_secret(scenario, "f2pool")
        self._history_key = history_key
        self._current_bin = current_bin

    def route(self, request: Request) -> Route | None:
        """Match an F2Pool v2 path (POST only) and select the account by the `F2P-API-SECRET` header."""
        if request.method != "POST":
            return None  # "We only accept POST requests"; a GET is not one of its endpoints
        endpoint = _PATHS.get(request.path.rstrip("/"))
        if endpoint is None:
            return None
        token = request.headers.get(TOKEN_HEADER)
        account = self._accounts.get(token.strip()) if token is not None else None
        return Route(endpoint=endpoint, account=account, request=request)

    def render(self, route: Route, t: int) -> Response:
        """Render the route's endpoint for its account at `t`, after checking the JSON body."""
        account = route.account
        if account is None:
            return self.auth_error()
        content_type = route.request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _error(PARAMS_ERROR, "params_error: we only accept POST requests with application/json")
        try:
            body = json.loads(route.request.body or b"null")
        except ValueError:
            return _error(PARAMS_ERROR, "params_error: the body is not valid JSON")
        if not isinstance(body, dict):
            return _error(PARAMS_ERROR, "params_error: the body must be a JSON object")
        user = body.get("mining_user_name")
        if not isinstance(user, str) or not user:
            return _error(PARAMS_ERROR, "params_error: mining_user_name is required")
        if user != account.username:
            return _error(PERMISSION_DENIED, "permission_denied: the token has no access to this mining user")
        if route.endpoint == "mining_user":
            return json_response(mining_user(self._scenario, account))
        currency = body.get("currency")
        if currency not in HASHRATE_CURRENCIES:
            return _error(PARAMS_ERROR, f"params_error: unsupported currency {str(currency)[:20]!r}")
        mined = currency == "bitcoin" and account.coin == "BTC"
        if route.endpoint == "hash_rate_info":
            return json_response(hash_rate_info(self._scenario, account, t, currency, mined))
        if route.endpoint == "hash_rate_history":
            try:
                interval, duration = _history_query(body)
            except ValueError as exc:
                return _error(PARAMS_ERROR, f"params_error: {exc}")
            rows = hash_rate_history(self._scenario, account, t, interval, duration, self._current_bin) if mined else []
            return json_response({self._history_key: rows})
        if route.endpoint == "worker_list":
            return json_response(worker_list(self._scenario, account, t) if mined else {"workers": []})
        if route.endpoint == "balance":
            return json_response(balance(self._scenario, account, t, mined))
        try:
            types, start, end = _bill_query(body, t)
        except ValueError as exc:
            return _error(PARAMS_ERROR, f"params_error: {exc}")
        rows = transactions(self._scenario, account, t, types, start, end) if mined else []
        return json_response({"transactions": rows})

    def auth_error(self) -> Response:
        """A missing or unknown token: HTTP 200 with an error body (F2Pool signals errors in the body)."""
        return _error(PERMISSION_DENIED, "permission_denied: invalid F2P-API-SECRET")

    def rate_limited(self) -> Response:
        """429 with Retry-After and an F2Pool-style error body."""
        return json_response(
            {"code": 429, "msg": "rate_limit: too many requests"},
            status=429,
            headers=(("Retry-After", str(RETRY_AFTER_S)),),
        )


def _error(code: int, msg: str) -> Response:
    return json_response({"code": code, "msg": msg})


def _bill_query(body: dict[str, Any], t: int) -> tuple[set[str], int, int]:
    raw_types = body.get("type", "all")
    if not isinstance(raw_types, str):
        raise ValueError("type must be a comma-separated string")
    types = {part.strip() for part in raw_types.split(",") if part.strip()}
    unknown = sorted(types - set(TRANSACTION_TYPES))
    if not types or unknown:
        raise ValueError(f"unknown transaction type {unknown[0] if unknown else ''!r}")
    end = body.get("end_time", t)
    start = body.get("start_time", end - DEFAULT_RANGE_S if isinstance(end, int) else 0)
    for name, value in (("start_time", start), ("end_time", end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be unix seconds")
    if start > end:
        raise ValueError("start_time is after end_time")
    return types, start, end


def _history_query(body: dict[str, Any]) -> tuple[int, int]:
    """The documented `interval` (s, a multiple of 600) and `duration` (s, at most 30 days) of a history query."""
    interval, duration = _seconds(body, "interval"), _seconds(body, "duration")
    if interval % HISTORY_STEP_S:
        raise ValueError(f"interval must be a multiple of {HISTORY_STEP_S}")
    if duration > HISTORY_MAX_S:
        raise ValueError("duration must be at most 30 days")
    return interval, duration


def _seconds(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


def hash_rate_history(
    scenario: Scenario, account: Account, t: int, interval: int, duration: int, current_bin: bool = False
) -> list[dict[str, Any]]:
    """`POST /v2/hash_rate/history`: the complete `interval` bins of the last `duration` s, oldest first.

    Each bin is stamped with its start and holds the mean hashrate over it (H/s doubles), the FPPS reward its
    hashes earned, and the workers online at its end. Bins during an outage of the pool's API are there (the
    pool kept mining); bins before the scenario's history start are not. With `current_bin`, the bin in
    progress comes last, holding the mean of its elapsed part only (a figure that will still change).
    """
    rows = []
    bins = history_bins(scenario, account, t, interval, duration // interval)
    if current_bin:
        bins.append(current_history_bin(scenario, account, t, interval))
    for b in bins:
        end = b.start + b.length
        reward = truth.hashes_to_sats(scenario, b.hashrate_hs * b.length)
        local = _local_factor(scenario, account, "")
        rows.append(
            {
                "timestamp": b.start,
                "hash_rate": round(b.hashrate_hs, 3),
                "stale_hash_rate": round(b.hashrate_hs * 0.003, 3),
                "delay_hash_rate": 0.0,
                "local_hash_rate": round(b.hashrate_hs * local, 3),
                "normal_reward": btc_float(reward),
                "delay_reward": 0.0,
                "online_miners": sum(truth.is_online(w, end - 1) for w in account.workers),
            }
        )
    return rows


def current_history_bin(scenario: Scenario, account: Account, t: int, length: int) -> HistoryBin:
    """The bin in progress at `t` (aligned to multiples of `length`): the mean over its elapsed part only."""
    start = t // length * length
    elapsed = max(1, t - start)
    return HistoryBin(start, length, truth.account_hashes(scenario, account, start, start + elapsed) / elapsed)


def _rates(rate: float, reject_pct: float) -> dict[str, float]:
    return {"rate": round(rate, 3), "stale": round(rate * reject_pct / 100, 3)}


def _local_factor(scenario: Scenario, account: Account, name: str) -> float:
    """Miner-reported hashrate runs up to 2 % above what the pool credits (seeded per worker)."""
    return 1 + 0.02 * truth.seeded_fraction(scenario.seed, account.pool, account.username, name, "local")


def hash_rate_info(scenario: Scenario, account: Account, t: int, currency: str, mined: bool) -> dict[str, Any]:
    """`POST /v2/hash_rate/info`: the account's current (15 min), 1 h and 24 h hashrates in H/s."""
    current = truth.account_hashrate(scenario, account, t, WINDOW_CURRENT_S) if mined else 0.0
    windows = truth.account_windows(scenario, account, t) if mined else truth.Windows(0.0, 0.0, 0.0)
    reject = 0.3 if mined else 0.0  # account-wide stale share, in %
    local = _local_factor(scenario, account, "")
    return {
        "info": {
            "name": account.username,
            "hash_rate": round(current, 3),
            "h1_hash_rate": round(windows.h1h, 3),
            "h24_hash_rate": round(windows.h24h, 3),
            "h1_stale_hash_rate": round(windows.h1h * reject / 100, 3),
            "h24_stale_hash_rate": round(windows.h24h * reject / 100, 3),
            "h24_delay_hash_rate": 0.0,
            "local_hash_rate": round(current * local, 3),
            "h24_local_hash_rate": round(windows.h24h * local, 3),
        },
        "currency": currency,
    }


def worker_status(worker: truth.WorkerTruth) -> int:
    """WorkerStatus: 0 Online, 1 Offline, 2 Expired (offline for 24 h or more)."""
    if worker.online:
        return 0
    return 2 if worker.dead else 1


def worker_list(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`POST /v2/hash_rate/worker/list`: every worker, `hash_rate_info.name` without the account prefix."""
    rows = []
    for spec, w in zip(account.workers, truth.workers(scenario, account, t), strict=True):
        current = truth.worker_hashrate(scenario, account, spec, t, WINDOW_CURRENT_S)
        local = _local_factor(scenario, account, w.name)
        stale_share = w.reject_pct / 100
        octet = 10 + int(200 * truth.seeded_fraction(scenario.seed, account.pool, account.username, w.name, "ip"))
        rows.append(
            {
                "hash_rate_info": {
                    "name": w.name,
                    "hash_rate": round(current, 3),
                    "h1_hash_rate": round(w.hashrate.h1h, 3),
                    "h24_hash_rate": round(w.hashrate.h24h, 3),
                    "h1_stale_hash_rate": round(w.hashrate.h1h * stale_share, 3),
                    "h24_stale_hash_rate": round(w.hashrate.h24h * stale_share, 3),
                    "h24_delay_hash_rate": 0.0,
                    "local_hash_rate": round(current * local, 3),
                    "h24_local_hash_rate": round(w.hashrate.h24h * local, 3),
                },
                "last_share_at": w.last_share_ts,
                "status": worker_status(w),
                "host": f"203.0.113.{octet}",  # documentation range (RFC 5737)
            }
        )
    return {"workers": rows}


def balance(scenario: Scenario, account: Account, t: int, mined: bool) -> dict[str, Any]:
    """`POST /v2/assets/balance`: balance as of 00:00 UTC (completed days minus payouts), today's estimate."""
    if not mined:
        zero = 0.0
        return {
            "balance_info": {
                "balance": zero,
                "paid": zero,
                "total_income": zero,
                "yesterday_income": zero,
                "estimated_today_income": zero,
            }
        }
    earnings = truth.daily_earnings(scenario, account, t)
    total = truth.earned_sats(scenario, account, t)
    left = truth.balance_sats(scenario, account, t)
    yesterday = day_start_ts(truth.utc_day(t)) - truth.DAY_S
    return {
        "balance_info": {
            "balance": btc_float(left),
            "paid": btc_float(total - left),
            "total_income": btc_float(total),
            "yesterday_income": btc_float(sum(e.amount_sats for e in earnings if e.day_start_ts == yesterday)),
            "estimated_today_income": btc_float(truth.today_accrual_sats(scenario, account, t)),
        }
    }


def bill_id(scenario: Scenario, account: Account, *parts: str) -> int:
    """A stable bill id (F2Pool ids are large integers)."""
    return 100_000_000 + int(899_999_999 * truth.seeded_fraction(scenario.seed, account.pool, account.username, *parts))


def transactions(
    scenario: Scenario, account: Account, t: int, types: set[str], start: int, end: int
) -> list[dict[str, Any]]:
    """`POST /v2/assets/transactions/list`: bills created in [start, end], newest first.

    A day's FPPS credit is created at 00:00 UTC the next day (`revenue_fpps`). A payout's bill is created
    when it is requested (the balance drops then); `tx_id` and `paid_time` are null until it is sent.
    """
    rows: list[dict[str, Any]] = []
    if types & {"all", "revenue"}:
        for e in truth.daily_earnings(scenario, account, t):
            if not start <= e.credited_at <= end:
                continue
            fee_sats = e.amount_sats * TX_FEE_SHARE_PER_MILLE // 1000
            rows.append(
                {
                    "id": bill_id(scenario, account, "revenue", str(e.day_start_ts)),
                    "type": "revenue_fpps",
                    "changed_balance": btc_float(e.amount_sats),
                    "created_at": e.credited_at,
                    "mining_extra": {
                        "mining_date": e.day_start_ts,
                        "settle_date": e.credited_at,
                        "pps": btc_float(e.amount_sats - fee_sats),
                        "pps_fee_rate": PPS_FEE_RATE,
                        "tx_fee": btc_float(fee_sats),
                        "tx_fee_rate": PPS_FEE_RATE,
                        "hash_rate": round(e.mean_hashrate_hs, 3),
                    },
                    "payout_extra": None,
                }
            )
    if types & {"all", "payout"}:
        for p in truth.payout_schedule(scenario, account, t):
            if not start <= p.requested_at <= end:
                continue
            sent = p.sent_at is not None
            rows.append(
                {
                    "id": bill_id(scenario, account, "payout", str(p.index)),
                    "type": "payout",
                    "changed_balance": -btc_float(p.amount_sats),
                    "created_at": p.requested_at,
                    "mining_extra": None,
                    "payout_extra": {
                        "value": btc_float(p.amount_sats),
                        "address": p.address,
                        "tx_id": p.txid if sent else None,
                        "paid_time": p.sent_at,
                        "wallet_type": "mainnet",
                        "tip": 0.0,
                    },
                }
            )
    rows.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return rows


def mining_user(scenario: Scenario, account: Account) -> dict[str, Any]:
    """`POST /v2/mining_user/get`: the account's read-only page and its configured `bitcoin` wallet."""
    address = truth.payout_address(account)
    wallets = []
    if address is not None:
        # A decimal string, as the reference shows it ("0.005"); 0.005 BTC when the scenario sets no minimum.
        threshold = Decimal(account.min_payout_sats or 500_000) / SATS_PER_BTC
        wallets.append({"currency": "bitcoin", "address": address, "threshold": f"{threshold:f}"})
    return {
        "mining_user_name": account.username,
        "pages": [
            {
                "key": truth.seeded_hex(scenario.seed, account.pool, account.username, "page", length=32),
                "permissions": "1,2",
                "page_name": "minewatch",
            }
        ],
        "wallets": wallets,
        "description": "",
    }
