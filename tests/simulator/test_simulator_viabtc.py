"""ViaBTC open API routes over real sockets: documented shapes and types, signatures, values equal to the truth."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from sim_support import FIXED_T, SCENARIOS

from simulator import truth
from simulator.pools.viabtc import BEIJING_OFFSET_S, payment_id
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

API = "/res/openapi/v1/"
TODAY = datetime.fromtimestamp(FIXED_T, UTC).date()  # 2026-11-25


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIOS / "viabtc.toml")


@pytest.fixture(scope="module")
def server(scenario: Scenario) -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario, clock=lambda: FIXED_T) as running:
        yield running


@pytest.fixture
def irk(scenario: Scenario) -> Account:
    return scenario.account("viabtc", "irk_main")


def call(
    server: SimulatorServer,
    account: Account,
    endpoint: str,
    params: list[tuple[str, str]] | None = None,
    *,
    sign: bool = False,
    tonce_ms: int = FIXED_T * 1000,
    secret: str | None = None,
    key: str | None = None,
) -> requests.Response:
    """GET an endpoint with the account's key; `sign` appends tonce and sends X-SIGNATURE over the query."""
    pairs = list(params or [])
    headers = {"X-API-KEY": account.secret if key is None else key}
    if sign:
        pairs.append(("tonce", str(tonce_ms)))
    query = urlencode(pairs)
    if sign:
        signing_key = (secret if secret is not None else account.api_secret) or ""
        headers["X-SIGNATURE"] = hmac.new(signing_key.encode(), query.encode(), hashlib.sha256).hexdigest()
    return requests.get(f"{server.url}{API}{endpoint}" + (f"?{query}" if query else ""), headers=headers, timeout=5)


def body(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def ok_data(response: requests.Response) -> Any:
    payload = body(response)
    assert payload["code"] == 0
    assert payload["message"] == "OK"
    return payload["data"]


def test_hashrate_windows_and_counts(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    data = ok_data(call(server, irk, "hashrate", [("coin", "BTC")]))
    assert set(data) == {
        "coin",
        "hashrate_10min",
        "hashrate_1hour",
        "hashrate_24hour",
        "active_workers",
        "unactive_workers",
    }
    assert data["coin"] == "BTC"
    for name, window in (("hashrate_10min", 600), ("hashrate_1hour", 3600), ("hashrate_24hour", 86_400)):
        assert isinstance(data[name], str)
        assert data[name].isdigit()  # whole H/s as a string
        assert int(data[name]) == round(truth.account_hashrate(scenario, irk, FIXED_T, window))
    assert 300e12 < int(data["hashrate_10min"]) < 500e12  # H/s, not TH/s: two 200 TH/s machines hash
    assert (data["active_workers"], data["unactive_workers"]) == (2, 1)  # s19_r2_01 is off since 06:30


def test_account_balance_and_withdrawal_address(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    data = ok_data(call(server, irk, "account"))
    assert data["account"]["account"] == "irk_main"
    assert data["account"]["parent_user_id"] is None
    assert data["observer"] == []
    assert data["withdraw_address"] == [{"coin": "BTC", "address": irk.payout_address}]
    assert data["balance"] == [{"coin": "BTC", "amount": _btc(truth.balance_sats(scenario, irk, FIXED_T))}]
    other = scenario.account("viabtc", "brt_sub")
    assert ok_data(call(server, other, "account"))["withdraw_address"] == []  # no address configured


def test_workers_page_by_page(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    first = ok_data(call(server, irk, "hashrate/worker", [("coin", "BTC"), ("page", "1"), ("limit", "2")]))
    second = ok_data(call(server, irk, "hashrate/worker", [("coin", "BTC"), ("page", "2"), ("limit", "2")]))
    assert {k: first[k] for k in ("count", "curr_page", "has_next", "total", "total_page")} == {
        "count": 2,
        "curr_page": 1,
        "has_next": True,
        "total": 3,
        "total_page": 2,
    }
    assert (second["count"], second["curr_page"], second["has_next"]) == (1, 2, False)
    rows = first["data"] + second["data"]
    states = {w.name: w for w in truth.workers(scenario, irk, FIXED_T)}
    assert [r["worker_name"] for r in rows] == ["s21_r1_01", "s21_r1_02", "s19_r2_01"]
    for row, spec in zip(rows, irk.workers, strict=True):
        state = states[row["worker_name"]]
        assert row["worker_status"] == ("active" if state.online else "unactive")
        assert row["coin"] == "BTC"
        assert row["group_id"] is None
        assert row["group_name"] is None
        assert int(row["hashrate_10min"]) == round(truth.worker_hashrate(scenario, irk, spec, FIXED_T, 600))
        assert int(row["hashrate_1hour"]) == round(state.hashrate.h1h)
        assert int(row["hashrate_24hour"]) == round(state.hashrate.h24h)
        assert row["last_active"] == state.last_share_ts
        assert isinstance(row["reject_rate"], str)
    assert rows[2]["worker_status"] == "unactive"
    assert rows[2]["hashrate_10min"] == "0"
    assert int(rows[2]["hashrate_24hour"]) > 0  # off this morning: the 24 h mean still remembers it


def test_profit_history_in_utc_days_equals_the_truth(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    params = [("coin", "BTC"), ("start_date", "2026-11-01"), ("end_date", "2026-11-25"), ("utc", "true")]
    data = ok_data(call(server, irk, "profit/history", [*params, ("page", "1"), ("limit", "100")]))
    expected = [e for e in truth.daily_earnings(scenario, irk, FIXED_T) if e.day >= date(2026, 11, 1)]
    assert data["total"] == len(expected) == 24  # 1–24 November: the 25th is not complete
    assert [r["date"] for r in data["data"]] == [e.day.isoformat() for e in reversed(expected)]
    for row, earning in zip(data["data"], reversed(expected), strict=True):
        assert row["total_profit"] == row["pps_profit"] == _btc(earning.amount_sats)
        assert (row["pplns_profit"], row["solo_profit"], row["coin"]) == ("0", "0", "BTC")


def test_profit_history_defaults_to_beijing_days(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    params = [("coin", "BTC"), ("start_date", "2026-11-20"), ("end_date", "2026-11-25")]
    beijing = ok_data(call(server, irk, "profit/history", params))["data"]
    utc = ok_data(call(server, irk, "profit/history", [*params, ("utc", "true")]))["data"]
    # At 12:34 UTC it is 20:34 in Beijing: both calendars have completed the 24th, not the 25th.
    assert [r["date"] for r in beijing] == [r["date"] for r in utc] == [f"2026-11-{d}" for d in range(24, 19, -1)]
    start = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp()) - BEIJING_OFFSET_S
    hashes = truth.account_hashes(scenario, irk, start, start + 86_400)
    assert beijing[0]["total_profit"] == _btc(truth.hashes_to_sats(scenario, hashes))
    assert beijing[0]["total_profit"] != utc[0]["total_profit"]


def test_payment_history_needs_a_signature(server: SimulatorServer, irk: Account) -> None:
    params = [("coin", "BTC"), ("utc", "true")]
    assert body(call(server, irk, "wallet/payment/history", params)) == {
        "code": 12002,
        "data": None,
        "message": "signature error",
    }
    assert body(call(server, irk, "wallet/payment/history", params, sign=True, secret="0" * 64))["code"] == 12002
    stale = FIXED_T * 1000 - 61_000
    assert body(call(server, irk, "wallet/payment/history", params, sign=True, tonce_ms=stale))["code"] == 12003
    ahead = FIXED_T * 1000 + 5_000
    assert body(call(server, irk, "wallet/payment/history", params, sign=True, tonce_ms=ahead))["code"] == 12003
    # Up to a second ahead of the floored server clock is the same second: accepted.
    assert (
        body(call(server, irk, "wallet/payment/history", params, sign=True, tonce_ms=FIXED_T * 1000 + 999))["code"] == 0
    )


def test_payment_history_in_the_wiki_shape(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    params = [("coin", "BTC"), ("start_date", "2026-10-01"), ("end_date", "2026-11-25"), ("utc", "true")]
    payload = body(call(server, irk, "wallet/payment/history", [*params, ("page", "1"), ("limit", "100")], sign=True))
    assert payload["code"] == 0
    assert set(payload) == {"code", "count", "curr_page", "data", "has_next", "total", "total_page", "message"}
    assert isinstance(payload["data"], list)
    payouts = list(reversed(truth.payout_schedule(scenario, irk, FIXED_T)))
    assert payload["total"] == len(payouts) == 6
    for row, payout in zip(payload["data"], payouts, strict=True):
        assert row["id"] == payment_id(scenario, irk, payout.index)
        assert row["amount"] == _btc(payout.amount_sats)
        assert row["address"] == payout.address
        assert row["create_time"] == payout.requested_at
        assert row["tx"] == (payout.txid if payout.status == "confirmed" else "")
    assert payload["data"][0]["tx"] == "", "irk_main's newest payout is waiting at FIXED_T"


def test_a_payment_keeps_its_id_and_time_once_sent(scenario: Scenario, irk: Account) -> None:
    queued = truth.payout_schedule(scenario, irk, FIXED_T)[-1]
    later = queued.requested_at + 121 * 3600
    params = [("coin", "BTC"), ("start_date", "2026-11-20"), ("end_date", "2026-12-05"), ("utc", "true")]
    rows = {}
    for t in (FIXED_T, later):
        with SimulatorServer(scenario, clock=lambda t=t: t) as running:
            payload = body(call(running, irk, "wallet/payment/history", params, sign=True, tonce_ms=t * 1000))
        rows[t] = next(r for r in payload["data"] if r["id"] == payment_id(scenario, irk, queued.index))
    assert rows[FIXED_T]["tx"] == ""
    assert rows[later]["tx"] == queued.txid
    assert rows[FIXED_T]["create_time"] == rows[later]["create_time"] == queued.requested_at


def test_a_signature_on_an_unsigned_endpoint_is_checked_too(server: SimulatorServer, irk: Account) -> None:
    assert ok_data(call(server, irk, "hashrate", [("coin", "BTC")], sign=True))["coin"] == "BTC"
    assert body(call(server, irk, "hashrate", [("coin", "BTC")], sign=True, secret="f" * 64))["code"] == 12002
    assert body(call(server, irk, "account", sign=True, tonce_ms=1))["code"] == 12003


@pytest.mark.parametrize(
    "endpoint", ["account", "hashrate", "hashrate/worker", "profit/history", "wallet/payment/history"]
)
@pytest.mark.parametrize("key", ["nope", "618ECDCEFF1259866D46BAFF42D4A840", ""])
def test_an_unknown_key_is_code_12001_with_http_200(
    server: SimulatorServer, irk: Account, endpoint: str, key: str
) -> None:
    assert body(call(server, irk, endpoint, [("coin", "BTC")], key=key)) == {
        "code": 12001,
        "data": None,
        "message": "invalid api key",
    }


def test_a_missing_key_header_is_code_12001(server: SimulatorServer) -> None:
    assert body(requests.get(f"{server.url}{API}hashrate?coin=BTC", timeout=5))["code"] == 12001


def test_arguments_are_checked(server: SimulatorServer, irk: Account) -> None:
    assert body(call(server, irk, "hashrate"))["code"] == 2  # coin is required
    assert body(call(server, irk, "hashrate", [("coin", "XYZ")]))["code"] == 5001
    assert body(call(server, irk, "hashrate/worker", [("coin", "BTC"), ("limit", "1000")]))["code"] == 2
    assert body(call(server, irk, "hashrate/worker", [("coin", "BTC"), ("page", "x")]))["code"] == 2
    assert body(call(server, irk, "profit/history", [("coin", "BTC"), ("start_date", "25-11-2026")]))["code"] == 2


def test_another_known_coin_has_the_shapes_empty(server: SimulatorServer, irk: Account) -> None:
    data = ok_data(call(server, irk, "hashrate", [("coin", "LTC")]))
    assert (data["hashrate_10min"], data["active_workers"]) == ("0", 0)
    assert ok_data(call(server, irk, "hashrate/worker", [("coin", "LTC")]))["data"] == []
    assert ok_data(call(server, irk, "profit/history", [("coin", "LTC"), ("utc", "true")]))["data"] == []


def test_default_range_is_the_last_30_days(server: SimulatorServer, scenario: Scenario, irk: Account) -> None:
    data = ok_data(call(server, irk, "profit/history", [("coin", "BTC"), ("utc", "true"), ("limit", "100")]))
    first = TODAY - timedelta(days=29)
    expected = [e for e in truth.daily_earnings(scenario, irk, FIXED_T) if e.day >= first]
    assert len(data["data"]) == len(expected) == 29


def test_unknown_paths_and_methods_are_not_served(server: SimulatorServer, irk: Account) -> None:
    headers = {"X-API-KEY": irk.secret}
    for path in ("profit", "hashrate/history", "account/sub", "wallet/payment"):
        assert requests.get(f"{server.url}{API}{path}", headers=headers, timeout=5).status_code == 404, path
    assert requests.post(f"{server.url}{API}hashrate?coin=BTC", headers=headers, timeout=5).status_code == 404


def test_faults(server: SimulatorServer, irk: Account) -> None:
    try:
        server.set_fault("viabtc", "irk_main", "auth")
        assert body(call(server, irk, "hashrate", [("coin", "BTC")]))["code"] == 12001
        server.set_fault("viabtc", "irk_main", "rate_limit")
        limited = call(server, irk, "hashrate", [("coin", "BTC")])
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "30"
        assert limited.json()["code"] == 429
        server.set_fault("viabtc", "irk_main", "server_error")
        assert call(server, irk, "hashrate", [("coin", "BTC")]).status_code == 500
        server.set_fault("viabtc", "irk_main", "malformed")
        cut = call(server, irk, "hashrate", [("coin", "BTC")])
        assert cut.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(cut.text)
    finally:
        server.reset_faults()
    assert ok_data(call(server, irk, "hashrate", [("coin", "BTC")]))["coin"] == "BTC"


def _btc(sats: int) -> str:
    return f"{sats // 100_000_000}.{sats % 100_000_000:08d}"
