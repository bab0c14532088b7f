"""Braiins Pool routes over real sockets: documented shapes and types, values equal to the ground truth."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from sim_support import FIXED_T

from simulator import truth
from simulator.pools.base import btc_string
from simulator.scenario import Scenario
from simulator.server import SimulatorServer

BTC_STRING = re.compile(r"^\d+\.\d{8}$")
SIBGAZ = "demo-braiins-token-sibgaz-0001"
URALHASH = "demo-braiins-token-uralhash-0002"
UNIT = {"Gh/s": 1e9, "Th/s": 1e12}


def get(server: SimulatorServer, path: str, token: str | None = SIBGAZ, header: str = "Pool-Auth-Token") -> Any:
    headers = {header: token} if token is not None else {}
    response = requests.get(server.url + path, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def assert_rate(value: object, expected_hs: float, unit: str) -> None:
    assert is_number(value)
    assert isinstance(value, int | float)
    assert value * UNIT[unit] == pytest.approx(expected_hs, abs=0.0005 * UNIT[unit] + 1e-9 * expected_hs)


@pytest.mark.parametrize("token", [SIBGAZ, URALHASH])
def test_profile(demo_server: SimulatorServer, demo_scenario: Scenario, token: str) -> None:
    account = next(a for a in demo_scenario.accounts if a.secret == token)
    body = get(demo_server, "/accounts/profile/json/btc/", token)
    assert body["username"] == account.username
    btc = body["btc"]
    assert set(btc) == {
        "all_time_reward", "hash_rate_unit", "hash_rate_5m", "hash_rate_60m", "hash_rate_24h",
        "hash_rate_yesterday", "low_workers", "off_workers", "ok_workers", "dis_workers", "current_balance",
        "today_reward", "estimated_reward", "shares_5m", "shares_60m", "shares_24h", "shares_yesterday",
    }  # fmt: skip
    for key in ("all_time_reward", "current_balance", "today_reward", "estimated_reward"):
        assert isinstance(btc[key], str), key
        assert BTC_STRING.match(btc[key]), key
    for key in ("low_workers", "off_workers", "ok_workers", "dis_workers", "shares_5m", "shares_24h"):
        assert type(btc[key]) is int, key
    unit = account.hash_rate_unit
    assert btc["hash_rate_unit"] == unit
    windows = truth.account_windows(demo_scenario, account, FIXED_T)
    assert_rate(btc["hash_rate_5m"], windows.h5m, unit)
    assert_rate(btc["hash_rate_60m"], windows.h1h, unit)
    assert_rate(btc["hash_rate_24h"], windows.h24h, unit)
    assert btc["all_time_reward"] == btc_string(truth.earned_sats(demo_scenario, account, FIXED_T))
    assert btc["current_balance"] == btc_string(truth.balance_sats(demo_scenario, account, FIXED_T))
    assert btc["today_reward"] == btc_string(truth.today_accrual_sats(demo_scenario, account, FIXED_T))
    workers = truth.workers(demo_scenario, account, FIXED_T)
    assert btc["ok_workers"] == sum(w.online for w in workers)
    assert btc["off_workers"] == sum(not w.online for w in workers)


def test_th_s_unit_is_honoured(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    # uralhash reports in Th/s: ~6 × 270 Th/s, so the number is ~1620, not ~1.6 million.
    btc = get(demo_server, "/accounts/profile/json/btc/", URALHASH)["btc"]
    assert btc["hash_rate_unit"] == "Th/s"
    assert 1_500 < btc["hash_rate_5m"] < 1_750
    gh = get(demo_server, "/accounts/profile/json/btc/", SIBGAZ)["btc"]
    assert gh["hash_rate_unit"] == "Gh/s"
    assert 550_000 < gh["hash_rate_5m"] < 650_000


@pytest.mark.parametrize(("token", "unit"), [(SIBGAZ, "Gh/s"), (URALHASH, "Th/s")])
def test_workers(demo_server: SimulatorServer, demo_scenario: Scenario, token: str, unit: str) -> None:
    account = next(a for a in demo_scenario.accounts if a.secret == token)
    rows = get(demo_server, "/accounts/workers/json/btc", token)["btc"]["workers"]
    expected = {f"{account.username}.{w.name}": w for w in truth.workers(demo_scenario, account, FIXED_T)}
    assert set(rows) == set(expected)
    for key, row in rows.items():
        w = expected[key]
        assert row["state"] == ("ok" if w.online else "off")
        assert type(row["last_share"]) is int
        assert row["last_share"] == w.last_share_ts
        assert row["hash_rate_unit"] == unit
        assert_rate(row["hash_rate_5m"], w.hashrate.h5m, unit)
        assert_rate(row["hash_rate_60m"], w.hashrate.h1h, unit)
        assert_rate(row["hash_rate_24h"], w.hashrate.h24h, unit)
        assert all(type(row[k]) is int for k in ("shares_5m", "shares_60m", "shares_24h"))


def test_worker_states_dis_and_off(features_server: SimulatorServer) -> None:
    rows = get(features_server, "/accounts/workers/json/btc/", "tok-ths")["btc"]["workers"]
    assert {k: v["state"] for k, v in rows.items()} == {"thsuser.a1": "ok", "thsuser.a2": "dis", "thsuser.a3": "off"}
    btc = get(features_server, "/accounts/profile/json/btc/", "tok-ths")["btc"]
    assert (btc["ok_workers"], btc["dis_workers"], btc["off_workers"], btc["low_workers"]) == (1, 1, 1, 0)


def test_rewards_range_is_inclusive(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    body = get(demo_server, "/accounts/rewards/json/btc?from=2026-11-20&to=2026-11-22")
    rows = body["btc"]["daily_rewards"]
    by_day = {e.day_start_ts: e for e in truth.daily_earnings(demo_scenario, account, FIXED_T)}
    assert [r["date"] for r in rows] == [1_795_305_600, 1_795_219_200, 1_795_132_800]  # 22, 21, 20 Nov
    for row in rows:
        earning = by_day[row["date"]]
        assert row["total_reward"] == row["mining_reward"] == btc_string(earning.amount_sats)
        for key in ("bos_plus_reward", "referral_bonus", "referral_reward"):
            assert row[key] == "0.00000000"
        assert type(row["shares"]) is int
        assert row["shares"] > 0
        assert row["calculation_date"] == earning.credited_at
        (price,) = row["share_prices"]
        assert (price["from_ts"], price["to_ts"]) == (row["date"], row["date"] + 86_400)
        assert isinstance(price["share_price"], str)
        assert Decimal(price["share_price"]) > 0


def test_rewards_default_range_and_total(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    rows = get(demo_server, "/accounts/rewards/json/btc/")["btc"]["daily_rewards"]
    assert len(rows) == 46  # everything since history_start lies within the default 90 days
    total = sum(Decimal(r["total_reward"]) for r in rows)
    assert total == Decimal(btc_string(truth.earned_sats(demo_scenario, account, FIXED_T)))
    today = truth.utc_day(FIXED_T)
    # Today is not complete, so asking for it alone gives nothing; yesterday gives one credit.
    assert get(demo_server, f"/accounts/rewards/json/btc?from={today}&to={today}")["btc"]["daily_rewards"] == []
    yesterday = today - timedelta(days=1)
    one = get(demo_server, f"/accounts/rewards/json/btc?from={yesterday}&to={yesterday}")["btc"]["daily_rewards"]
    assert len(one) == 1
    assert get(demo_server, "/accounts/rewards/json/btc?from=2026-11-22&to=2026-11-20")["btc"]["daily_rewards"] == []


@pytest.mark.parametrize("query", ["from=2026/11/20", "to=yesterday", "from=20261120"])
def test_bad_dates_are_rejected(demo_server: SimulatorServer, query: str) -> None:
    for endpoint in ("rewards", "payouts"):
        response = requests.get(
            f"{demo_server.url}/accounts/{endpoint}/json/btc?{query}", headers={"Pool-Auth-Token": SIBGAZ}, timeout=5
        )
        assert response.status_code == 400
        assert response.headers["Content-Type"].startswith("text/plain")


def _payout_rows(server: SimulatorServer, token: str, query: str = "from=2026-01-01") -> list[dict[str, Any]]:
    body = get(server, f"/accounts/payouts/json/btc?{query}", token)
    assert set(body) == {"onchain", "lightning"}
    assert body["lightning"] == []
    rows: list[dict[str, Any]] = body["onchain"]
    return rows


def test_payouts(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    rows = _payout_rows(demo_server, SIBGAZ)
    expected = list(reversed(truth.payout_schedule(demo_scenario, account, FIXED_T)))
    assert len(rows) == len(expected) >= 5
    for row, p in zip(rows, expected, strict=True):
        assert type(row["amount_sats"]) is int
        assert row["amount_sats"] == p.amount_sats
        assert type(row["fee_sats"]) is int
        assert row["destination"] == p.address
        assert row["requested_at_ts"] == p.requested_at
        assert row["financial_account_name"] == "Bitcoin Account"
        if p.status == "queued":
            assert row["status"] == "queued"
            assert row["tx_id"] is None
            assert row["resolved_at_ts"] is None
        else:
            assert row["status"] == "confirmed"
            assert row["tx_id"] == p.txid
            assert row["resolved_at_ts"] == p.sent_at
    assert rows[0]["status"] == "queued"  # sibgaz_main's newest payout is still queued at FIXED_T


def test_payouts_range(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "baikal")
    token = account.secret
    everything = _payout_rows(demo_server, token)
    first_day = truth.utc_day(everything[-1]["requested_at_ts"])
    only_first = _payout_rows(demo_server, token, f"from={first_day}&to={first_day}")
    assert only_first == [everything[-1]]
    assert _payout_rows(demo_server, token, "from=2026-01-01&to=2026-10-10") == []
    assert {r["destination"] for r in everything} == set(account.payout_addresses)


def test_stats(demo_server: SimulatorServer) -> None:
    btc = get(demo_server, "/stats/json/btc/", URALHASH)["btc"]
    assert btc["hash_rate_unit"] == "Th/s"
    assert type(btc["pool_active_workers"]) is int
    assert 13e6 < btc["pool_5m_hash_rate"] < 15e6  # ~14 EH/s in Th/s
    assert btc["update_ts"] <= FIXED_T
    assert btc["blocks"] == {}
    assert is_number(btc["fpps_rate"])


@pytest.mark.parametrize(
    "header",
    ["Pool-Auth-Token", "X-Pool-Auth-Token", "SlushPool-Auth-Token", "X-SlushPool-Auth-Token", "pool-auth-token"],
)
def test_every_token_header_is_accepted(demo_server: SimulatorServer, header: str) -> None:
    assert get(demo_server, "/accounts/profile/json/btc/", SIBGAZ, header)["username"] == "sibgaz_main"


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/profile/json/btc",
        "/accounts/workers/json/btc/",
        "/accounts/rewards/json/btc/",
        "/accounts/payouts/json/btc/",
        "/stats/json/btc",
    ],
)
def test_trailing_slash_is_optional(demo_server: SimulatorServer, path: str) -> None:
    with_slash = path if path.endswith("/") else path + "/"
    assert get(demo_server, with_slash) == get(demo_server, with_slash.rstrip("/"))


@pytest.mark.parametrize("token", [None, "", "wrong-token", "5f0c7a52-1d3e-4a4b-9c1e-0e6b1f3a7d01"])
@pytest.mark.parametrize("path", ["/accounts/profile/json/btc/", "/accounts/payouts/json/btc", "/stats/json/btc/"])
def test_bad_token_gives_403_text(demo_server: SimulatorServer, token: str | None, path: str) -> None:
    headers = {"Pool-Auth-Token": token} if token is not None else {}
    response = requests.get(demo_server.url + path, headers=headers, timeout=5)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "sibgaz" not in response.text


def test_unknown_paths_are_404(demo_server: SimulatorServer) -> None:
    for path in ("/", "/accounts/profile/json/eth/", "/accounts/profile/json/BTC/", "/api/v1/whatever"):
        response = requests.get(demo_server.url + path, headers={"Pool-Auth-Token": SIBGAZ}, timeout=5)
        assert response.status_code == 404, path
