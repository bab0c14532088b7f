"""Scenario loading: the demo's contract with config/demo, defaults, and errors that name the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sim_support import SCENARIOS

from simulator.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

# The demo accounts another part of the repo (config/demo) relies on, exactly.
DEMO_ACCOUNTS = [
    ("sibgaz", "braiins", "sibgaz_main", "demo-braiins-token-sibgaz-0001"),
    ("sibgaz", "emcd", "sibgaz_emcd", "5f0c7a52-1d3e-4a4b-9c1e-0e6b1f3a7d01"),
    ("uralhash", "braiins", "uralhash", "demo-braiins-token-uralhash-0002"),
    ("uralhash", "braiins", "uralhash_b", "demo-braiins-token-uralhash-0003"),
    ("tverpower", "emcd", "tverpower", "9b2d4c61-7a8e-4f10-b3c5-2d9e8f7a6b02"),
    ("baikal", "braiins", "baikal", "demo-braiins-token-baikal-0004"),
    ("baikal", "emcd", "baikal_x", "0c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e04"),
]


def test_demo_accounts_match_the_contract(demo_scenario: Scenario) -> None:
    got = [(a.group_id, a.pool, a.username, a.secret) for a in demo_scenario.accounts]
    assert got == DEMO_ACCOUNTS
    assert demo_scenario.history_start == date(2026, 10, 10)


def test_demo_account_details(demo_scenario: Scenario) -> None:
    sibgaz = demo_scenario.account("braiins", "sibgaz_main")
    assert len(sibgaz.workers) == 4
    assert [w.offline_from is not None for w in sibgaz.workers].count(True) == 1
    assert sibgaz.payout_address is None  # Braiins shows no configured address
    uralhash = demo_scenario.account("braiins", "uralhash")
    assert uralhash.hash_rate_unit == "Th/s"
    assert len(uralhash.workers) == 6
    assert demo_scenario.account("braiins", "uralhash_b").hash_rate_unit == "Gh/s"
    baikal = demo_scenario.account("braiins", "baikal")
    assert baikal.payout_addresses == (
        "bc1qavy4wx445z06wul8fu98wz88ekcfqt6l7f3xl5",
        "bc1qtrqx57y9lz6hq4jwlvm26sqzp38d09z0j49v0c",
    )
    tver = demo_scenario.account("emcd", "tverpower")
    assert tver.payout_address == "bc1qqz4tggvt9hn0ecpk7npk8ydyjjzmn0e46tzw79"
    assert len(tver.workers) == 5
    assert sum(w.offline_from is not None for w in tver.workers) == 1
    assert all(a.coin == "BTC" for a in demo_scenario.accounts)


def test_secrets_stay_out_of_repr(demo_scenario: Scenario) -> None:
    assert "demo-braiins-token" not in repr(demo_scenario)


def test_every_shipped_scenario_loads() -> None:
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert load_scenario(path).accounts, path


def _minimal() -> dict[str, Any]:
    return {
        "seed": 1,
        "history_start": date(2026, 11, 1),
        "sats_per_phs_day": 45000,
        "accounts": [
            {
                "group_id": "g",
                "pool": "braiins",
                "username": "u",
                "secret": "s",
                "workers": [{"name": "w", "nominal_ths": 100.0}],
            }
        ],
    }


def test_defaults() -> None:
    scenario = parse_scenario(_minimal())
    account = scenario.accounts[0]
    assert account.hash_rate_unit == "Gh/s"
    assert account.payout_every_days == 7
    assert account.fault is None
    assert account.details_dead_empty == "object"
    assert account.workers[0].variation == 0.03
    assert account.workers[0].offline_from is None
    assert scenario.hang_seconds == 30.0


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path like "accounts.0.workers.0.nominal_ths" (value None deletes the key)."""
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("seed", None, "seed: required key is missing"),
        ("seed", "x", "seed: expected an integer"),
        ("history_start", "2026-13-01", "history_start: expected a date"),
        ("sats_per_phs_day", -1, "sats_per_phs_day: must be greater than 0"),
        ("typo", 1, "typo: unknown key"),
        ("accounts", [], "accounts: at least one"),
        ("accounts.0.pool", "slushpool", "accounts[0].pool: expected one of 'braiins', 'emcd'"),
        ("accounts.0.secret", None, "accounts[0].secret: required key is missing"),
        ("accounts.0.hash_rate_unit", "GH", "accounts[0].hash_rate_unit: expected one of"),
        ("accounts.0.coin", "LTC", "accounts[0].coin: only 'BTC'"),
        ("accounts.0.fault", "explode", "accounts[0].fault: expected one of"),
        ("accounts.0.payout_every_days", 0, "accounts[0].payout_every_days: must be a positive integer"),
        ("accounts.0.payout_addresses", "bc1q", "accounts[0].payout_addresses: expected a list"),
        ("accounts.0.payut_addresses", [], "accounts[0].payut_addresses: unknown key"),
        ("accounts.0.workers.0.nominal_ths", "200", "accounts[0].workers[0].nominal_ths: expected a finite number"),
        ("accounts.0.workers.0.variation", 0.9, "accounts[0].workers[0].variation: must be between"),
        ("accounts.0.workers.0.online", "no", "accounts[0].workers[0].online: expected true or false"),
        ("accounts.0.workers.0.offline_from", "soon", "accounts[0].workers[0].offline_from: expected a date-time"),
        ("accounts.0.workers.0.name", " w", "accounts[0].workers[0].name: must be non-empty"),
    ],
)
def test_bad_input_names_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_set(_minimal(), path, value), source="x.toml")
    assert str(caught.value).startswith("x.toml: ")
    assert message in str(caught.value)


def test_hash_rate_unit_is_braiins_only() -> None:
    data = _set(_set(_minimal(), "accounts.0.pool", "emcd"), "accounts.0.hash_rate_unit", "Th/s")
    with pytest.raises(ScenarioError, match=r"accounts\[0\]\.hash_rate_unit: only Braiins"):
        parse_scenario(data)


def test_duplicate_secret_and_username_and_worker() -> None:
    data = _minimal()
    data["accounts"].append(dict(data["accounts"][0], username="other"))
    with pytest.raises(ScenarioError, match=r"accounts\[1\]\.secret: another braiins account"):
        parse_scenario(data)
    data["accounts"][1]["secret"] = "s2"
    data["accounts"][1]["username"] = "u"
    with pytest.raises(ScenarioError, match=r"accounts\[1\]\.username: duplicate braiins username 'u'"):
        parse_scenario(data)
    data = _minimal()
    data["accounts"][0]["workers"].append({"name": "w", "nominal_ths": 1.0})
    with pytest.raises(ScenarioError, match=r"accounts\[0\]\.workers: duplicate worker name 'w'"):
        parse_scenario(data)


def test_online_false_and_offline_from_are_exclusive() -> None:
    data = _set(_minimal(), "accounts.0.workers.0.online", False)
    assert parse_scenario(data).accounts[0].workers[0].offline_from == 1_793_491_200  # 2026-11-01 00:00 UTC
    _set(data, "accounts.0.workers.0.offline_from", 1_793_500_000)
    with pytest.raises(ScenarioError, match="either online = false or offline_from"):
        parse_scenario(data)


def test_fault_window() -> None:
    data = _minimal()
    data["accounts"][0].update(fault="server_error", fault_from=100, fault_until=200)
    account = parse_scenario(data).accounts[0]
    assert [account.fault_at(t) for t in (99, 100, 199, 200)] == [None, "server_error", "server_error", None]
    data["accounts"][0].update(fault_until=100)
    with pytest.raises(ScenarioError, match=r"accounts\[0\]\.fault_until: must be later"):
        parse_scenario(data)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read scenario"):
        load_scenario(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = = 1\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: invalid TOML"):
        load_scenario(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('seed = 1\nhistory_start = 2026-11-01\nsats_per_phs_day = 1\naccounts = "none"\n')
    with pytest.raises(ScenarioError, match=r"wrong\.toml: accounts: expected an array of tables"):
        load_scenario(wrong)
