"""AntPool routes over real sockets: signed forms, documented shapes and types, values equal to the truth."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sim_support import FIXED_T, SCENARIOS

from collector.pools.antpool.parse import signature
from collector.units import parse_hashrate
from simulator import truth
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

_NONCES = itertools.count(1_700_000_000_000)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIOS / "antpool.toml")


@pytest.fixture(scope="module")
def server(scenario: Scenario) -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario, clock=lambda: FIXED_T) as server:
        yield server


@pytest.fixture
def farm(scenario: Scenario) -> Account:
    return scenario.account("antpool", "antfarm")


def signed(account: Account, nonce: int | None = None, **params: str) -> dict[str, str]:
    nonce = next(_NONCES) if nonce is None else nonce
    assert account.api_secret is not None
    return {
        "key": account.secret,
        "nonce": str(nonce),
        "signature": signature(account.username, account.secret, account.api_secret, nonce),
        "coin": "BTC",
        **params,
    }


def post(server: SimulatorServer, name: str, form: dict[str, str]) -> Any:
    response = requests.post(f"{server.url}/api/{name}.htm", data=form, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def data(server: SimulatorServer, name: str, account: Account, **params: str) -> Any:
    body = post(server, name, signed(account, **params))
    assert (body["code"], body["message"]) == (0, "ok"), body
    return body["data"]


def test_account_overview_is_h_per_s_strings(server: SimulatorServer, scenario: Scenario, farm: Account) -> None:
    body = data(server, "accountOverview", farm, userId="antfarm")
    assert all(isinstance(value, str) for value in body.values())
    assert body["hsLast10m"] == str(round(truth.account_hashrate(scenario, farm, FIXED_T, 600)))
    assert body["hsLast1h"] == str(round(truth.account_hashrate(scenario, farm, FIXED_T, 3600)))
    assert body["hsLast1d"] == str(round(truth.account_hashrate(scenario, farm, FIXED_T, 86_400)))
    assert 300e12 < float(body["hsLast10m"]) < 500e12  # H/s, not TH/s
    # s21_01, s21_02 online; s19_03 went offline this morning (inactive); s19_04 for days (invalid).
    assert (body["activeWorkerNum"], body["inactiveWorkerNum"], body["invalidWorkerNum"]) == ("2", "1", "1")
    assert body["unpaidAmount"] == f"{truth.balance_sats(scenario, farm, FIXED_T) / 1e8:.8f}"


def test_account_balance(server: SimulatorServer, scenario: Scenario, farm: Account) -> None:
    body = data(server, "account", farm)
    assert set(body) == {"earn24Hours", "earnTotal", "paidOut", "balance", "settleTime"}
    assert round(float(body["balance"]) * 1e8) == truth.balance_sats(scenario, farm, FIXED_T)
    assert round(float(body["paidOut"]) * 1e8) == truth.total_paid_sats(scenario, farm, FIXED_T)
    assert body["settleTime"] == "2026-11-24"


def test_legacy_hashrate_is_mh_per_s(server: SimulatorServer, scenario: Scenario, farm: Account) -> None:
    body = data(server, "hashrate", farm)
    assert float(body["last10m"]) * 1e6 == pytest.approx(truth.account_hashrate(scenario, farm, FIXED_T, 600), abs=1e4)
    assert body["dupelicate"] == "0"
    assert (body["totalWorkers"], body["activeWorkers"]) == (4, 2)


def test_user_worker_list_has_units_and_ms(server: SimulatorServer, scenario: Scenario) -> None:
    sub = scenario.account("antpool", "antfarm_sub1")
    body = data(server, "userWorkerList", sub, coinType="BTC", userId=sub.username, workerStatus="0")
    rows = body["result"]["rows"]
    states = {w.name: w for w in truth.workers(scenario, sub, FIXED_T)}
    assert [r["workerId"] for r in rows] == ["l7_01", "l7_02"]
    assert rows[0]["hsLast10min"].endswith(" TH/s")
    assert rows[1]["hsLast10min"].endswith(" PH/s")
    for row, worker in zip(rows, sub.workers, strict=True):
        assert row["userWorkerId"] == f"antfarm_sub1.{row['workerId']}"
        assert row["workerStatus"] == 1
        expected = truth.worker_hashrate(scenario, sub, worker, FIXED_T, 600)
        assert parse_hashrate(row["hsLast10min"]) == pytest.approx(expected, rel=5e-3)
        assert row["shareLastTime"] == str(states[worker.name].last_share_ts * 1000)


def test_worker_states(server: SimulatorServer, farm: Account) -> None:
    rows = data(server, "userWorkerList", farm, coinType="BTC", userId="antfarm")["result"]["rows"]
    assert {r["workerId"]: r["workerStatus"] for r in rows} == {"s21_01": 1, "s21_02": 1, "s19_03": 2, "s19_04": 3}
    legacy = data(server, "workers", farm, pageEnable="1")["rows"]
    assert [r["worker"] for r in legacy] == ["antfarm.s21_01", "antfarm.s21_02", "antfarm.s19_03", "antfarm.s19_04"]
    assert legacy[3]["last10m"] == "0.00"


def test_payment_history_pages_and_rows(server: SimulatorServer, scenario: Scenario, farm: Account) -> None:
    credits = truth.daily_earnings(scenario, farm, FIXED_T)
    first = data(server, "paymentHistoryV2", farm, type="recv", page="1", pageSize="50")
    second = data(server, "paymentHistoryV2", farm, type="recv", page="2", pageSize="50")
    assert (first["page"], first["totalPage"], first["totalRecord"]) == (1, 2, len(credits))
    assert second["page"] == 1, "a short last page echoes page=1 (reference §5.2)"
    rows = first["rows"] + second["rows"]
    assert [r["timestamp"] for r in rows] == [e.day.isoformat() for e in reversed(credits)]
    assert [round(float(r["amount"]) * 1e8) for r in rows] == [e.amount_sats for e in reversed(credits)]

    payouts = data(server, "paymentHistoryV2", farm, type="payout", pageSize="100")["rows"]
    expected = list(reversed(truth.payout_schedule(scenario, farm, FIXED_T)))
    assert [r["txId"] for r in payouts] == [p.txid for p in expected]
    assert [r["walletAddress"] for r in payouts] == [p.address for p in expected]


def test_queued_payout_has_no_txid(server: SimulatorServer, scenario: Scenario) -> None:
    sub = scenario.account("antpool", "antfarm_sub1")
    latest = data(server, "paymentHistoryV2", sub, type="payout")["rows"][0]
    assert truth.payout_schedule(scenario, sub, FIXED_T)[-1].status == "queued"
    assert latest["txId"] == ""


def test_bad_signature_unknown_key_and_stale_nonce(server: SimulatorServer, farm: Account) -> None:
    form = signed(farm)
    form["signature"] = form["signature"].lower()
    assert post(server, "account", form) == {"code": 1, "message": "Invalid key or signature", "data": None}
    assert post(server, "account", {**signed(farm), "key": "nope"})["code"] == 1
    wrong_user = signed(farm)
    assert farm.api_secret is not None
    wrong_user["signature"] = signature("someone", farm.secret, farm.api_secret, int(wrong_user["nonce"]))
    assert post(server, "account", wrong_user)["message"] == "Invalid key or signature"
    nonce = next(_NONCES)
    assert post(server, "account", signed(farm, nonce))["code"] == 0
    assert post(server, "account", signed(farm, nonce))["message"] == "Invalid nonce: must increase"


def test_query_string_and_get_work_too(server: SimulatorServer, farm: Account) -> None:
    response = requests.get(f"{server.url}/api/account.htm", params=signed(farm), timeout=5)
    assert response.json()["code"] == 0


def test_wrong_coin_is_an_error_body(server: SimulatorServer, farm: Account) -> None:
    assert post(server, "account", {**signed(farm), "coin": "LTC"})["message"] == "Invalid parameter: coin"


@pytest.mark.parametrize(("fault", "status"), [("rate_limit", 429), ("server_error", 500), ("auth", 200)])
def test_faults(server: SimulatorServer, farm: Account, fault: str, status: int) -> None:
    server.set_fault("antpool", "antfarm", fault)  # type: ignore[arg-type]
    try:
        response = requests.post(f"{server.url}/api/account.htm", data=signed(farm), timeout=5)
    finally:
        server.reset_faults()
    assert response.status_code == status
    if fault == "rate_limit":
        assert response.headers["Retry-After"] == "30"
    if fault == "auth":
        assert response.json()["message"] == "Invalid key or signature"


def test_malformed_fault_cuts_the_body(server: SimulatorServer, farm: Account) -> None:
    server.set_fault("antpool", "antfarm", "malformed")
    try:
        response = requests.post(f"{server.url}/api/account.htm", data=signed(farm), timeout=5)
    finally:
        server.reset_faults()
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()
