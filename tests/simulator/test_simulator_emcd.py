"""EMCD v1 routes over real sockets: documented shapes and types, values equal to the ground truth."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sim_support import FIXED_T

from simulator import truth
from simulator.scenario import Scenario
from simulator.server import SimulatorServer

TVER = "9b2d4c61-7a8e-4f10-b3c5-2d9e8f7a6b02"
GMT = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$")


def get(server: SimulatorServer, path: str) -> Any:
    response = requests.get(server.url + path, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def assert_btc_float(value: object, sats: int) -> None:
    assert type(value) is float
    assert round(value * 1e8) == sats
    assert len(repr(value).split(".")[-1]) <= 8 or "e" in repr(value)


def test_info(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "tverpower")
    body = get(demo_server, f"/v1/info/{TVER}")
    assert body["username"] == "tverpower"
    btc = body["bitcoin"]
    assert set(btc) == {"balance", "total_paid", "address", "min_payout"}
    assert_btc_float(btc["balance"], truth.balance_sats(demo_scenario, account, FIXED_T))
    assert_btc_float(btc["total_paid"], truth.total_paid_sats(demo_scenario, account, FIXED_T))
    assert btc["address"] == "bc1qqz4tggvt9hn0ecpk7npk8ydyjjzmn0e46tzw79"
    assert_btc_float(btc["min_payout"], account.min_payout_sats)
    for coin in ("bitcoin_cash", "bitcoin_sv", "litecoin", "dash", "eth", "etc"):
        assert body[coin]["balance"] == 0.0
        assert body[coin]["total_paid"] == 0.0
        assert body[coin]["address"] is None
        assert type(body[coin]["min_payout"]) is float
    assert body["notifications"] == {"email": 0, "telegram": 0}


def test_info_without_a_configured_address(features_server: SimulatorServer) -> None:
    assert get(features_server, "/v1/info/key-emcd-2")["bitcoin"]["address"] is None


def test_workers(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "tverpower")
    body = get(demo_server, f"/v1/btc/workers/{TVER}")
    states = {w.name: w for w in truth.workers(demo_scenario, account, FIXED_T)}
    assert body["total_count"] == {"all": 5, "active": 4, "inactive": 0, "dead_count": 1}
    totals = truth.account_windows(demo_scenario, account, FIXED_T)
    assert body["total_hashrate"] == {
        "hashrate": round(totals.h5m),
        "hashrate1h": round(totals.h1h),
        "hashrate24h": round(totals.h24h),
    }
    assert [d["worker"] for d in body["details"]] == ["t21_01", "t21_02", "t21_03", "t21_04"]
    for row in body["details"]:
        w = states[row["worker"]]
        assert row["user"] == "tverpower"
        assert type(row["hashrate"]) is int
        assert row["hashrate"] == round(w.hashrate.h5m)
        assert row["hashrate1h"] == round(w.hashrate.h1h)
        assert row["hashrate24h"] == round(w.hashrate.h24h)
        assert 100e12 < row["hashrate"] < 140e12  # H/s, not TH/s
        assert type(row["reject"]) is float
        assert row["lastbeat"] == w.last_share_ts
        assert row["active"] == 1
    # The dead worker appears only in detailsDead, as {name: lastbeat}.
    assert body["detailsDead"] == {"t21_05": states["t21_05"].last_share_ts}


def test_inactive_versus_dead(features_server: SimulatorServer) -> None:
    body = get(features_server, "/v1/btc/workers/key-emcd-1")
    assert body["total_count"] == {"all": 3, "active": 1, "inactive": 1, "dead_count": 1}
    rows = {d["worker"]: d for d in body["details"]}
    assert set(rows) == {"e1", "e2"}
    assert rows["e2"]["active"] == 0
    assert rows["e2"]["hashrate"] == 0
    assert rows["e2"]["hashrate24h"] > 0  # went off this morning: the 24 h average still remembers it
    assert list(body["detailsDead"]) == ["e3"]


def test_details_dead_forms(features_server: SimulatorServer, demo_server: SimulatorServer) -> None:
    # details_dead_empty = "list": the older (PHP-style) `[]` when no worker is dead.
    assert get(features_server, "/v1/btc/workers/key-emcd-2")["detailsDead"] == []
    # Default: an empty object.
    assert get(demo_server, "/v1/btc/workers/5f0c7a52-1d3e-4a4b-9c1e-0e6b1f3a7d01")["detailsDead"] == {}


def test_income(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "tverpower")
    rows = get(demo_server, f"/v1/btc/income/{TVER}")["income"]
    earnings = truth.daily_earnings(demo_scenario, account, FIXED_T)
    assert len(rows) == len(earnings) == 46
    assert [r["timestamp"] for r in rows] == sorted((r["timestamp"] for r in rows), reverse=True)
    for row, earning in zip(rows, reversed(earnings), strict=True):
        assert row["timestamp"] == earning.day_start_ts
        assert row["gmt_time"] == datetime.fromtimestamp(earning.day_start_ts, UTC).strftime("%d-%m-%Y 00:00:00")
        assert_btc_float(row["income"], earning.amount_sats)
        assert row["type"] == "fpps"
        assert type(row["total_hashrate"]) is int
        assert row["total_hashrate"] == round(earning.mean_hashrate_hs)
    assert rows[0]["gmt_time"] == "24-11-2026 00:00:00"


def test_payouts(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "tverpower")
    rows = get(demo_server, f"/v1/btc/payouts/{TVER}")["payouts"]
    payouts = list(reversed(truth.payout_schedule(demo_scenario, account, FIXED_T)))
    assert len(rows) == len(payouts) >= 5
    for row, p in zip(rows, payouts, strict=True):
        assert_btc_float(row["amount"], p.amount_sats)
        assert GMT.match(row["gmt_time"])
        if p.sent_at is None:
            assert row["txid"] is None
            assert row["timestamp"] == p.requested_at
        else:
            assert row["txid"] == p.txid
            assert row["timestamp"] == p.sent_at
    assert rows[0]["txid"] is None  # tverpower's newest payout is pending at FIXED_T


@pytest.mark.parametrize(
    "path", ["/v1/info/{key}", "/v1/btc/workers/{key}", "/v1/btc/income/{key}", "/v1/btc/payouts/{key}"]
)
@pytest.mark.parametrize("key", ["nope", "demo-braiins-token-sibgaz-0001", TVER.upper()])
def test_unknown_key_is_a_code_403_body(demo_server: SimulatorServer, path: str, key: str) -> None:
    body = get(demo_server, path.format(key=key))
    assert set(body) == {"code", "message"}
    assert body["code"] == 403
    assert isinstance(body["message"], str)


def test_other_coins(demo_server: SimulatorServer) -> None:
    assert get(demo_server, f"/v1/ltc/income/{TVER}") == {"income": []}
    assert get(demo_server, f"/v1/ltc/workers/{TVER}")["details"] == []
    assert get(demo_server, f"/v1/xyz/payouts/{TVER}")["code"] == 404
    # The path ticker is lower case; "BTC" is not a coin EMCD knows.
    assert get(demo_server, f"/v1/BTC/income/{TVER}")["code"] == 404


def test_unknown_paths_are_404(demo_server: SimulatorServer) -> None:
    for path in (f"/v1/btc/hashrate/{TVER}", f"/v2/info/{TVER}", "/v1/info/", "/v1/btc/workers/"):
        assert requests.get(demo_server.url + path, timeout=5).status_code == 404, path
