"""EMCD v1 wire format (reference pool-apis.md §1.1): API key in the path, BTC as floats, hashrates in H/s."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from simulator import truth
from simulator.pools.base import (
    RETRY_AFTER_S,
    Request,
    Response,
    Route,
    accounts_by_secret,
    btc_float,
    json_response,
)
from simulator.scenario import Account, Scenario

_INFO = re.compile(r"^/v1/info/([^/]+)/?$")
_COIN = re.compile(r"^/v1/([^/]+)/(workers|income|payouts)/([^/]+)/?$")
# Lower-case path tickers EMCD serves (reference §1.1); the simulated accounts only mine `btc`.
_KNOWN_COINS = ("btc", "bch", "bsv", "ltc", "dash", "eth", "etc", "doge")
# `info` long-name keys of the coins an account does not mine, with EMCD's minimum payouts (reference §1.1).
_OTHER_COINS = (
    ("bitcoin_cash", 0.01),
    ("bitcoin_sv", 0.01),
    ("litecoin", 0.01),
    ("dash", 0.01),
    ("eth", 0.05),
    ("etc", 0.1),
)


class EmcdApi:
    """Routes and renders the EMCD v1 endpoints for one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._accounts = accounts_by_secret(scenario, "emcd")

    def route(self, request: Request) -> Route | None:
        """Match an EMCD v1 path and select the account by the API key in it."""
        if request.method != "GET":
            return None  # the API is GET-only; any other method is not one of its endpoints
        match = _INFO.match(request.path)
        if match:
            return Route(endpoint="info", account=self._account(match.group(1)), request=request)
        match = _COIN.match(request.path)
        if match:
            coin, endpoint, key = match.groups()
            return Route(endpoint=endpoint, account=self._account(key), request=request, coin=coin)
        return None

    def render(self, route: Route, t: int) -> Response:
        """Render the route's endpoint for its account at `t`."""
        account = route.account
        if account is None:
            return self.auth_error()
        if route.endpoint == "info":
            return json_response(info(self._scenario, account, t))
        if route.coin not in _KNOWN_COINS:
            return json_response({"code": 404, "message": f"unknown coin {route.coin!r}"})
        if route.coin != account.coin.lower():
            # A coin the account does not mine: the shapes, empty.
            return json_response(_empty(route.endpoint))
        if route.endpoint == "workers":
            return json_response(workers(self._scenario, account, t))
        if route.endpoint == "income":
            return json_response(income(self._scenario, account, t))
        return json_response(payouts(self._scenario, account, t))

    def auth_error(self) -> Response:
        """EMCD signals errors in the body (`code`/`message`), with HTTP 200 (reference §1.1)."""
        return json_response({"code": 403, "message": "Invalid api key"})

    def rate_limited(self) -> Response:
        """429 with Retry-After and an EMCD-style error body."""
        return json_response(
            {"code": 429, "message": "Too many requests"},
            status=429,
            headers=(("Retry-After", str(RETRY_AFTER_S)),),
        )

    def _account(self, key: str) -> Account | None:
        return self._accounts.get(unquote(key))


def info(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /v1/info/{api_key}`: balances per coin under long names; only `bitcoin` has activity."""
    body: dict[str, Any] = {
        "username": account.username,
        "bitcoin": {
            "balance": btc_float(truth.balance_sats(scenario, account, t)),
            "total_paid": btc_float(truth.total_paid_sats(scenario, account, t)),
            "address": truth.payout_address(account),
            "min_payout": btc_float(account.min_payout_sats),
        },
    }
    for name, coin_min in _OTHER_COINS:
        body[name] = {"balance": 0.0, "total_paid": 0.0, "address": None, "min_payout": coin_min}
    body["notifications"] = {"email": 0, "telegram": 0}
    return body


def workers(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /v1/{coin}/workers/{api_key}`: live workers in `details`, long-dead ones only in `detailsDead`."""
    states = truth.workers(scenario, account, t)
    live = [w for w in states if not w.dead]
    dead = {w.name: w.last_share_ts for w in states if w.dead}
    total = truth.account_windows(scenario, account, t)
    details_dead: dict[str, int] | list[Any] = dead
    if not dead and account.details_dead_empty == "list":
        # PHP encodes an empty associative array as `[]`; older EMCD responses show exactly that.
        details_dead = []
    return {
        "total_count": {
            "all": len(states),
            "active": sum(1 for w in live if w.online),
            "inactive": sum(1 for w in live if not w.online),
            "dead_count": len(dead),
        },
        "total_hashrate": {
            "hashrate": round(total.h5m),
            "hashrate1h": round(total.h1h),
            "hashrate24h": round(total.h24h),
        },
        "details": [
            {
                "user": account.username,
                "worker": w.name,
                "hashrate": round(w.hashrate.h5m),
                "hashrate1h": round(w.hashrate.h1h),
                "hashrate24h": round(w.hashrate.h24h),
                "reject": w.reject_pct,
                "lastbeat": w.last_share_ts,
                "active": 1 if w.online else 0,
            }
            for w in live
        ],
        "detailsDead": details_dead,
    }


def income(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /v1/{coin}/income/{api_key}`: one FPPS credit per completed UTC day, newest first."""
    return {
        "income": [
            {
                "timestamp": e.day_start_ts,
                "gmt_time": gmt_time(e.day_start_ts),
                "income": btc_float(e.amount_sats),
                "type": "fpps",
                "total_hashrate": round(e.mean_hashrate_hs),
            }
            for e in reversed(truth.daily_earnings(scenario, account, t))
        ]
    }


def payouts(scenario: Scenario, account: Account, t: int) -> dict[str, Any]:
    """`GET /v1/{coin}/payouts/{api_key}`: newest first; a pending payout has `txid` null and its request time."""
    rows = []
    for p in reversed(truth.payout_schedule(scenario, account, t)):
        moment = p.sent_at if p.sent_at is not None else p.requested_at
        rows.append(
            {
                "timestamp": moment,
                "gmt_time": gmt_time(moment),
                "amount": btc_float(p.amount_sats),
                "txid": p.txid if p.sent_at is not None else None,
            }
        )
    return {"payouts": rows}


def gmt_time(ts: int) -> str:
    """EMCD's "DD-MM-YYYY HH:MM:SS" UTC rendering of unix seconds."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d-%m-%Y %H:%M:%S")


def _empty(endpoint: str) -> dict[str, Any]:
    """The shape of `endpoint` with nothing in it (a coin the account does not mine)."""
    if endpoint == "workers":
        return {
            "total_count": {"all": 0, "active": 0, "inactive": 0, "dead_count": 0},
            "total_hashrate": {"hashrate": 0, "hashrate1h": 0, "hashrate24h": 0},
            "details": [],
            "detailsDead": {},
        }
    return {endpoint: []}
