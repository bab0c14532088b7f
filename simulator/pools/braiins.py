"""Braiins Pool wire format (reference pool-apis.md §2): token header auth, BTC as strings, rates in a unit."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from simulator import truth
from simulator.pools.base import (
    RETRY_AFTER_S,
    Request,
    Response,
    Route,
    accounts_by_secret,
    btc_string,
    json_response,
    text_response,
)
from simulator.scenario import HASH_RATE_UNITS, Account, Scenario, day_start_ts

# Current names first, then the Slush-era ones Braiins still accepts (reference §2.1); lower case
# because the server hands headers over keyed in lower case.
TOKEN_HEADERS = ("pool-auth-token", "x-pool-auth-token", "slushpool-auth-token", "x-slushpool-auth-token")
_PATHS = {
    re.compile(r"^/accounts/profile/json/btc/?$"): "profile",
    re.compile(r"^/accounts/workers/json/btc/?$"): "workers",
    re.compile(r"^/accounts/rewards/json/btc/?$"): "rewards",
    re.compile(r"^/accounts/payouts/json/btc/?$"): "payouts",
    re.compile(r"^/stats/json/btc/?$"): "stats",
}
_DEFAULT_RANGE_DAYS = 90  # rewards default to the last 90 days (reference §2.1); payouts do the same here
_ZERO = "0.00000000"
_SHARE_PRICE_QUANTUM = Decimal("1e-16")


class BraiinsApi:
    """Routes and renders the Braiins Pool endpoints for one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._accounts = accounts_by_secret(scenario, "braiins")

    def route(self, request: Request) -> Route | None:
        """Match a Braiins path (with or without trailing slash) and select the account by token header."""
        if request.method != "GET":
            return None  # the API is GET-only; any other method is not one of its endpoints
        for pattern, endpoint in _PATHS.items():
            if pattern.match(request.path):
                token = next((request.headers[h] for h in TOKEN_HEADERS if h in request.headers), None)
                account = self._accounts.get(token.strip()) if token is not None else None
                return Route(endpoint=endpoint, account=account, request=request)
        return None

    def render(self, route: Route, t: int) -> Response:
        """Render the route's endpoint for its account at `t`."""
        account = route.account
        if account is None:
            return self.auth_error()
        if route.endpoint == "profile":
            return json_response(profile(self._scenario, account, t))
        if route.endpoint == "workers":
            return json_response(workers(self._scenario, account, t))
        if route.endpoint == "stats":
            return json_response(stats(self._scenario, account, t))
        try:
            first, last = _date_range(route.request, t)
        except ValueError as exc:
            return text_response(f"{exc}\n", 400)
        if route.endpoint == "rewards":
            return json_response(rewards(self._scenario, account, t, first, last))
        return json_response(payouts(self._scenario, account, t, first, last))

    def auth_error(self) -> Response:
        """403 with a text/plain body, as Braiins answers a missing or invalid token (reference §2.1)."""
        return text_response("Authentication failed: invalid or missing Pool-Auth-Token\n", 403)

    def rate_limited(self) -> Response:
        """429 with Retry-After (the real pool mostly drops excess requests; the fault makes it explicit)."""
        return text_response("request rate exceeded\n", 429, headers=(("Retry-After", str(RETRY_AFTER_S)),))


def profile(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /accounts/profile/json/btc/`."""
    unit = account.hash_rate_unit
    windows = truth.account_windows(scenario, account, t)
    yesterday_start = day_start_ts(truth.utc_day(t)) - truth.DAY_S
    yesterday_hashes = truth.account_hashes(scenario, account, yesterday_start, yesterday_start + truth.DAY_S)
    states = [worker_state(w) for w in truth.workers(scenario, account, t)]
    return {
        "username": account.username,
        "btc": {
            "all_time_reward": btc_string(truth.earned_sats(scenario, account, t)),
            "hash_rate_unit": unit,
            "hash_rate_5m": in_unit(windows.h5m, unit),
            "hash_rate_60m": in_unit(windows.h1h, unit),
            "hash_rate_24h": in_unit(windows.h24h, unit),
            "hash_rate_yesterday": in_unit(yesterday_hashes / truth.DAY_S, unit),
            "low_workers": states.count("low"),
            "off_workers": states.count("off"),
            "ok_workers": states.count("ok"),
            "dis_workers": states.count("dis"),
            "current_balance": btc_string(truth.balance_sats(scenario, account, t)),
            "today_reward": btc_string(truth.today_accrual_sats(scenario, account, t)),
            "estimated_reward": btc_string(truth.estimated_day_sats(scenario, account, t)),
            "shares_5m": shares(windows.h5m * truth.WINDOW_5M_S),
            "shares_60m": shares(windows.h1h * truth.WINDOW_1H_S),
            "shares_24h": shares(windows.h24h * truth.WINDOW_24H_S),
            "shares_yesterday": shares(yesterday_hashes),
        },
    }


def workers(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /accounts/workers/json/btc/`: an object keyed by "<username>.<worker>"."""
    unit = account.hash_rate_unit
    rows: dict[str, Any] = {}
    for w in truth.workers(scenario, account, t):
        rows[f"{account.username}.{w.name}"] = {
            "state": worker_state(w),
            "last_share": w.last_share_ts,
            "hash_rate_unit": unit,
            "hash_rate_5m": in_unit(w.hashrate.h5m, unit),
            "hash_rate_60m": in_unit(w.hashrate.h1h, unit),
            "hash_rate_24h": in_unit(w.hashrate.h24h, unit),
            "shares_5m": shares(w.hashrate.h5m * truth.WINDOW_5M_S),
            "shares_60m": shares(w.hashrate.h1h * truth.WINDOW_1H_S),
            "shares_24h": shares(w.hashrate.h24h * truth.WINDOW_24H_S),
        }
    return {"btc": {"workers": rows}}


def rewards(scenario: Scenario, account: Account, t: int, first: date, last: date) -> dict[str, Any]:
    """`GET /accounts/rewards/json/btc?from=&to=`: completed days in [first, last], newest first."""
    rows = []
    for e in reversed(truth.daily_earnings(scenario, account, t)):
        if not first <= e.day <= last:
            continue
        day_shares = shares(e.mean_hashrate_hs * truth.DAY_S)
        price = Decimal(e.amount_sats) / Decimal(100_000_000) / day_shares if day_shares else Decimal(0)
        rows.append(
            {
                "date": e.day_start_ts,
                "total_reward": btc_string(e.amount_sats),
                "mining_reward": btc_string(e.amount_sats),
                "bos_plus_reward": _ZERO,
                "referral_bonus": _ZERO,
                "referral_reward": _ZERO,
                "shares": day_shares,
                "share_prices": [
                    {
                        "from_ts": e.day_start_ts,
                        "to_ts": e.day_start_ts + truth.DAY_S,
                        "share_price": f"{price.quantize(_SHARE_PRICE_QUANTUM):f}",
                    }
                ],
                "calculation_date": e.credited_at,
            }
        )
    return {"btc": {"daily_rewards": rows}}


def payouts(scenario: Scenario, account: Account, t: int, first: date, last: date) -> dict[str, Any]:
    """`GET /accounts/payouts/json/btc?from=&to=`: on-chain payouts requested in [first, last], newest first."""
    rows = []
    for p in reversed(truth.payout_schedule(scenario, account, t)):
        if not first <= truth.utc_day(p.requested_at) <= last:
            continue
        sent = p.sent_at is not None
        rows.append(
            {
                "financial_account_name": "Bitcoin Account",
                "requested_at_ts": p.requested_at,
                "resolved_at_ts": p.sent_at,
                "status": p.status,
                "amount_sats": p.amount_sats,
                "fee_sats": p.fee_sats,
                "destination": p.address,
                "tx_id": p.txid if sent else None,
                "trigger_type": "triggered",
            }
        )
    # The simulator never pays over Lightning; the key is still present as on the real API.
    return {"onchain": rows, "lightning": []}


def stats(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /stats/json/btc/`: pool-wide figures, in the caller's hash_rate_unit."""
    unit = account.hash_rate_unit
    return {
        "btc": {
            "hash_rate_unit": unit,
            "pool_active_workers": truth.pool_active_workers(scenario, t),
            "pool_5m_hash_rate": in_unit(truth.pool_hashrate(scenario, t, truth.WINDOW_5M_S), unit),
            "pool_60m_hash_rate": in_unit(truth.pool_hashrate(scenario, t, truth.WINDOW_1H_S), unit),
            "pool_24h_hash_rate": in_unit(truth.pool_hashrate(scenario, t, truth.WINDOW_24H_S), unit),
            "update_ts": t - t % 60,
            "blocks": {},
            # BTC per TH/s per day, a JSON number as in the 2026 live capture.
            "fpps_rate": scenario.sats_per_phs_day / 1e8 / 1000,
        }
    }


def worker_state(worker: truth.WorkerTruth) -> str:
    """Braiins worker state: dis (monitoring off) before off, off before low, else ok."""
    if worker.disabled:
        return "dis"
    if not worker.online:
        return "off"
    return "low" if worker.low else "ok"


def in_unit(hashrate_hs: float, unit: str) -> float:
    """H/s expressed in `unit` ("Gh/s", "Th/s", ...), rounded to 3 decimals."""
    return round(hashrate_hs / HASH_RATE_UNITS[unit], 3)


def shares(hashes: float) -> int:
    """Difficulty-1 share count for a number of hashes."""
    return int(hashes // truth.HASHES_PER_SHARE)


def _date_range(request: Request, t: int) -> tuple[date, date]:
    today = truth.utc_day(t)
    last = _parse_day(request.query.get("to"), "to", today)
    first = _parse_day(request.query.get("from"), "from", last - timedelta(days=_DEFAULT_RANGE_DAYS - 1))
    return first, last


def _parse_day(value: str | None, name: str, default: date) -> date:
    if value is None or value == "":
        return default
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_day(name, value)
    except ValueError:
        return _bad_day(name, value)


def _bad_day(name: str, value: str) -> date:
    raise ValueError(f"invalid '{name}' date {value!r}: expected YYYY-MM-DD")
