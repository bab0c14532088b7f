"""F2Pool v2 routes over real sockets: POST + JSON bodies, documented shapes and types, values equal to truth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sim_support import SCENARIOS

from simulator import truth
from simulator.pools.f2pool import WINDOW_CURRENT_S
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

# 2026-11-25 12:00:00 UTC: shaft_a's newest payout is still waiting, t21x02 went offline at 07:30.
T = 1_795_608_000
ACCOUNT_BODY = {"mining_user_name": "shaft_a", "currency": "bitcoin"}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIOS / "f2pool.toml")


@pytest.fixture(scope="module")
def server(scenario: Scenario) -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario, clock=lambda: T) as srv:
        yield srv


def account(scenario: Scenario, name: str) -> Account:
    return scenario.account("f2pool", name)


def post(server: SimulatorServer, path: str, body: Any, token: str | None, *, status: int = 200, **kwargs: Any) -> Any:
    headers = {} if token is None else {"F2P-API-SECRET": token}
    response = requests.post(server.url + path, json=body, headers=headers, timeout=5, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def call(server: SimulatorServer, scenario: Scenario, path: str, user: str = "shaft_a", **extra: Any) -> Any:
    acct = account(scenario, user)
    return post(server, path, {"mining_user_name": user, "currency": "bitcoin", **extra}, acct.secret)


def assert_btc(value: object, sats: int) -> None:
    assert type(value) is float
    assert round(value * 1e8) == sats


def test_hash_rate_info(server: SimulatorServer, scenario: Scenario) -> None:
    acct = account(scenario, "shaft_a")
    body = call(server, scenario, "/v2/hash_rate/info")
    assert body["currency"] == "bitcoin"
    info = body["info"]
    assert info["name"] == "shaft_a"
    assert set(info) == {
        "name",
        "hash_rate",
        "h1_hash_rate",
        "h24_hash_rate",
        "h1_stale_hash_rate",
        "h24_stale_hash_rate",
        "h24_delay_hash_rate",
        "local_hash_rate",
        "h24_local_hash_rate",
    }
    assert all(type(v) is float for k, v in info.items() if k != "name")
    windows = truth.account_windows(scenario, acct, T)
    assert info["hash_rate"] == pytest.approx(truth.account_hashrate(scenario, acct, T, WINDOW_CURRENT_S), abs=1e-3)
    assert info["h1_hash_rate"] == pytest.approx(windows.h1h, abs=1e-3)
    assert info["h24_hash_rate"] == pytest.approx(windows.h24h, abs=1e-3)
    assert 400e12 < info["hash_rate"] < 600e12  # H/s, three workers of 110-200 TH/s


def test_worker_list(server: SimulatorServer, scenario: Scenario) -> None:
    acct = account(scenario, "shaft_b")
    rows = call(server, scenario, "/v2/hash_rate/worker/list", "shaft_b")["workers"]
    states = {w.name: w for w in truth.workers(scenario, acct, T)}
    assert [r["hash_rate_info"]["name"] for r in rows] == ["t21x01", "t21x02", "t21x03"]  # suffix only
    assert {r["hash_rate_info"]["name"]: r["status"] for r in rows} == {"t21x01": 0, "t21x02": 1, "t21x03": 2}
    for spec, row in zip(acct.workers, rows, strict=True):
        w = states[spec.name]
        info = row["hash_rate_info"]
        assert info["hash_rate"] == pytest.approx(truth.worker_hashrate(scenario, acct, spec, T, 900), abs=1e-3)
        assert info["h1_hash_rate"] == pytest.approx(w.hashrate.h1h, abs=1e-3)
        assert info["h24_hash_rate"] == pytest.approx(w.hashrate.h24h, abs=1e-3)
        assert row["last_share_at"] == w.last_share_ts
        assert type(row["last_share_at"]) is int
        assert row["host"].startswith("203.0.113.")
    offline = rows[1]["hash_rate_info"]
    assert offline["hash_rate"] == 0.0
    assert offline["h24_hash_rate"] > 0  # went offline this morning: the 24 h average remembers it


def test_balance(server: SimulatorServer, scenario: Scenario) -> None:
    acct = account(scenario, "shaft_a")
    info = call(server, scenario, "/v2/assets/balance")["balance_info"]
    earned = truth.earned_sats(scenario, acct, T)
    left = truth.balance_sats(scenario, acct, T)
    assert_btc(info["balance"], left)
    assert_btc(info["total_income"], earned)
    assert_btc(info["paid"], earned - left)
    assert_btc(info["yesterday_income"], truth.daily_earnings(scenario, acct, T)[-1].amount_sats)
    assert_btc(info["estimated_today_income"], truth.today_accrual_sats(scenario, acct, T))


def test_transactions(server: SimulatorServer, scenario: Scenario) -> None:
    acct = account(scenario, "shaft_a")
    start = T - 20 * truth.DAY_S
    rows = call(server, scenario, "/v2/assets/transactions/list", type="revenue,payout", start_time=start, end_time=T)[
        "transactions"
    ]
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    revenue = [r for r in rows if r["type"] == "revenue_fpps"]
    payouts = [r for r in rows if r["type"] == "payout"]
    assert len(revenue) + len(payouts) == len(rows)
    credits = [e for e in truth.daily_earnings(scenario, acct, T) if e.credited_at >= start]
    assert len(revenue) == len(credits) == 20
    for row, e in zip(revenue, reversed(credits), strict=True):
        assert type(row["id"]) is int
        assert_btc(row["changed_balance"], e.amount_sats)
        assert row["created_at"] == e.credited_at
        assert row["mining_extra"]["mining_date"] == e.day_start_ts
        assert row["payout_extra"] is None
    expected = [p for p in truth.payout_schedule(scenario, acct, T) if p.requested_at >= start]
    assert len(payouts) == len(expected) == 2
    for row, p in zip(payouts, reversed(expected), strict=True):
        extra = row["payout_extra"]
        assert_btc(extra["value"], p.amount_sats)
        assert_btc(-row["changed_balance"], p.amount_sats)
        assert row["created_at"] == p.requested_at
        assert extra["address"] == p.address
        assert extra["tx_id"] == (p.txid if p.sent_at is not None else None)
        assert extra["paid_time"] == p.sent_at
    assert payouts[0]["payout_extra"]["tx_id"] is None  # the newest payout is still waiting at T
    # Ids are stable across calls, so a replay of a bill overwrites its own point.
    again = call(server, scenario, "/v2/assets/transactions/list", type="revenue,payout", start_time=start, end_time=T)
    assert [r["id"] for r in again["transactions"]] == [r["id"] for r in rows]


def test_transaction_type_filter(server: SimulatorServer, scenario: Scenario) -> None:
    only_payouts = call(server, scenario, "/v2/assets/transactions/list", type="payout", start_time=0, end_time=T)
    assert {r["type"] for r in only_payouts["transactions"]} == {"payout"}
    bad = call(server, scenario, "/v2/assets/transactions/list", type="bonus", start_time=0, end_time=T)
    assert bad["code"] == 5001
    assert call(server, scenario, "/v2/assets/transactions/list", start_time=T, end_time=0)["code"] == 5001


def test_mining_user(server: SimulatorServer, scenario: Scenario) -> None:
    acct = account(scenario, "shaft_a")
    body = post(server, "/v2/mining_user/get", {"mining_user_name": "shaft_a"}, acct.secret)
    assert body["mining_user_name"] == "shaft_a"
    assert body["wallets"] == [{"currency": "bitcoin", "address": acct.payout_address, "threshold": "0.001"}]
    other = account(scenario, "shaft_b")
    assert post(server, "/v2/mining_user/get", {"mining_user_name": "shaft_b"}, other.secret)["wallets"] == []


@pytest.mark.parametrize(
    "path", ["/v2/hash_rate/info", "/v2/hash_rate/worker/list", "/v2/assets/balance", "/v2/assets/transactions/list"]
)
@pytest.mark.parametrize("token", [None, "nope", "F2POOL-TOKEN-KUZBASS-SHAFT-A-0001"])
def test_bad_token_is_an_error_body(server: SimulatorServer, path: str, token: str | None) -> None:
    body = post(server, path, ACCOUNT_BODY, token)
    assert set(body) == {"code", "msg"}
    assert body["code"] == 5010
    assert body["msg"].startswith("permission_denied:")


def test_the_body_must_name_the_tokens_mining_user(server: SimulatorServer, scenario: Scenario) -> None:
    token = account(scenario, "shaft_a").secret
    other = post(server, "/v2/hash_rate/info", {"mining_user_name": "shaft_b", "currency": "bitcoin"}, token)
    assert other["code"] == 5010
    assert post(server, "/v2/hash_rate/info", {"currency": "bitcoin"}, token)["code"] == 5001
    assert post(server, "/v2/hash_rate/info", {"mining_user_name": "shaft_a"}, token)["code"] == 5001
    assert post(server, "/v2/hash_rate/info", {**ACCOUNT_BODY, "currency": "ethereum"}, token)["code"] == 5001
    form = requests.post(server.url + "/v2/hash_rate/info", data=ACCOUNT_BODY, headers={"F2P-API-SECRET": token})
    assert form.json()["code"] == 5001  # "We only accept POST requests with application/json"


def test_other_hashrate_currencies_are_empty(server: SimulatorServer, scenario: Scenario) -> None:
    token = account(scenario, "shaft_a").secret
    body = {"mining_user_name": "shaft_a", "currency": "litecoin"}
    assert post(server, "/v2/hash_rate/info", body, token)["info"]["hash_rate"] == 0.0
    assert post(server, "/v2/hash_rate/worker/list", body, token) == {"workers": []}


def test_get_and_unknown_paths_are_not_served(server: SimulatorServer, scenario: Scenario) -> None:
    headers = {"F2P-API-SECRET": account(scenario, "shaft_a").secret}
    assert requests.get(server.url + "/v2/hash_rate/info", headers=headers, timeout=5).status_code == 404
    assert requests.post(server.url + "/v2/hash_rate/nope", json=ACCOUNT_BODY, headers=headers).status_code == 404


def test_faults(scenario: Scenario) -> None:
    token = account(scenario, "shaft_a").secret
    with SimulatorServer(scenario, clock=lambda: T) as srv:
        srv.set_fault("f2pool", "shaft_a", "auth")
        assert post(srv, "/v2/hash_rate/info", ACCOUNT_BODY, token)["code"] == 5010
        srv.set_fault("f2pool", "shaft_a", "rate_limit")
        response = requests.post(srv.url + "/v2/hash_rate/info", json=ACCOUNT_BODY, headers={"F2P-API-SECRET": token})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"
        assert response.json() == {"code": 429, "msg": "rate_limit: too many requests"}
        srv.set_fault("f2pool", "shaft_a", "server_error")
        assert (
            requests.post(
                srv.url + "/v2/assets/balance", json=ACCOUNT_BODY, headers={"F2P-API-SECRET": token}
            ).status_code
            == 500
        )
        srv.set_fault("f2pool", "shaft_a", "malformed")
        cut = requests.post(srv.url + "/v2/assets/balance", json=ACCOUNT_BODY, headers={"F2P-API-SECRET": token})
        assert cut.status_code == 200
        assert cut.content.startswith(b'{"balance_info":')
        assert not cut.content.endswith(b"}}")  # cut in half
        srv.reset_faults()
        assert "balance_info" in post(srv, "/v2/assets/balance", ACCOUNT_BODY, token)
        assert srv.request_counts()["f2pool:shaft_a"] == 5
