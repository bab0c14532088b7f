"""The minimal inputs the hostile-input properties found, kept as plain tests (one per bug fixed)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.adapters.parsing import integer, required_integer, scaled, unix_time
from collector.devices.cgminer.parse import parse_pools, whatsminer_readings
from collector.errors import BadResponse
from collector.network.mempool.parse import parse_reward_stats
from collector.pools.antpool.parse import parse_hashrate_legacy, parse_overview, unix_seconds
from collector.pools.braiins.parse import parse_payouts, parse_profile
from collector.pools.emcd.parse import parse_income
from collector.pools.f2pool.parse import parse_transactions
from collector.pools.viabtc.parse import parse_workers
from property.support import HttpCase, http_cases


@pytest.mark.parametrize("value", [2**63, 10**400, 1e308, "1e300", "99999999999999999999"])
def test_a_count_beyond_int64_is_a_bad_response(value: Any) -> None:
    """Was: `integer` returned it, and the line-protocol writer failed the poll later ("outside int64")."""
    with pytest.raises(BadResponse, match=r"out of range|not a number"):
        integer({"n": value}, "n", "x")
    with pytest.raises(BadResponse):
        parse_overview({"code": 0, "data": {"activeWorkerNum": value}})


def test_the_largest_int64_is_still_a_count() -> None:
    assert required_integer({"n": 2**63 - 1}, "n", "x") == 2**63 - 1


def test_a_hashrate_that_overflows_its_unit_is_a_bad_response() -> None:
    """Was: 1e308 Gh/s became `inf` H/s, refused only by the line-protocol writer."""
    with pytest.raises(BadResponse, match="out of range"):
        scaled(1e308, 1e9)
    profile = {"btc": {"hash_rate_unit": "Gh/s", "hash_rate_5m": 1e308}}
    with pytest.raises(BadResponse):
        parse_profile(profile)


@pytest.mark.parametrize("value", [10**20, 7_258_118_401, 1e300])
def test_a_time_after_2200_is_a_bad_response(value: Any) -> None:
    """Was: a timestamp of 10**400 reached the writer ("timestamp ... outside int64")."""
    with pytest.raises(BadResponse):
        unix_time({"t": value}, "t", "x")
    with pytest.raises(BadResponse):
        parse_income({"income": [{"timestamp": value, "income": 0.1, "type": "fpps"}]})
    with pytest.raises(BadResponse):
        parse_transactions({"transactions": [{"id": 1, "type": "revenue", "created_at": value, "changed_balance": 1}]})


def test_antpool_times_in_ms_are_bounded_too() -> None:
    assert unix_seconds(1_700_000_000_000, "t") == 1_700_000_000
    with pytest.raises(BadResponse):
        unix_seconds(10**400, "t")


def test_viabtc_worker_names_are_not_guessed_without_the_account() -> None:
    """Was: with the `account` section failed, "farmop.rack2x05" was written as a second worker series."""
    row = {"worker_name": "farmop.rack2x05", "worker_status": "active", "hashrate_10min": "1"}
    with pytest.raises(BadResponse, match="account prefix"):
        parse_workers([row], None)
    assert parse_workers([row], "farmop")[0].name == "rack2x05"
    assert parse_workers([{**row, "worker_name": "rack1"}], None)[0].name == "rack1"


def test_viabtc_poll_with_a_broken_account_answer_writes_no_prefixed_worker() -> None:
    case: HttpCase = next(c for c in http_cases("viabtc") if c.case.name == "worker-names")
    outcome = case.run({"account": b""})
    assert outcome.points is not None
    workers = [tags for measurement, tags, _ in outcome.points if measurement == "pool_worker"]
    assert workers == []  # the section is missing (an issue), not written under made-up names


def test_emcd_income_without_a_type_is_refused() -> None:
    """Was: written as type "unknown", a second point for the same credit (its id and time come from the type)."""
    with pytest.raises(BadResponse, match="type"):
        parse_income({"income": [{"timestamp": 1569456000, "income": 0.00830608}]})
    with pytest.raises(BadResponse, match="type"):
        parse_income({"income": [{"timestamp": 1569456000, "income": 0.00830608, "type": ""}]})


def test_mempool_names_a_huge_reward_total_as_such() -> None:
    body = {"startBlock": 1, "endBlock": 144, "totalReward": 10**30, "totalFee": 0}
    with pytest.raises(BadResponse, match="more than all bitcoin"):
        parse_reward_stats(body, 144)


def test_braiins_confirmed_payout_without_destination_is_refused() -> None:
    """Was: written with event id `...:None`, so at another sub-second time than the same payout with its address."""
    row = {"status": "confirmed", "requested_at_ts": 1775000000, "amount_sats": 1500000, "tx_id": "aa"}
    with pytest.raises(BadResponse, match="destination"):
        parse_payouts({"onchain": [row]})
    assert parse_payouts({"onchain": [{**row, "destination": "bc1q"}]})[0].address == "bc1q"
    assert parse_payouts({"onchain": [{**row, "status": "queued"}]}) == ()


def test_antpool_code_false_is_not_success() -> None:
    """`false == 0` in Python: an envelope with `"code": false` was read as a success."""
    with pytest.raises(BadResponse, match="error code False"):
        parse_overview({"code": False, "message": "", "data": {}})


def test_antpool_legacy_inactive_is_unknown_when_active_exceeds_total() -> None:
    """Was: max(total - active, 0), a made-up 0 for an answer that contradicts itself."""
    body = {"code": 0, "data": {"totalWorkers": "5", "activeWorkers": "9", "last10m": "1"}}
    assert parse_hashrate_legacy(body).workers_inactive is None
    assert parse_hashrate_legacy({"code": 0, "data": {"totalWorkers": 10, "activeWorkers": 9}}).workers_inactive == 1


def test_cgminer_active_pool_is_unknown_when_a_priority_is_missing() -> None:
    """Was: a missing `Priority` read as 0, so a pool could be reported active that may not be."""
    status = {"STATUS": [{"STATUS": "S"}]}
    pools = [
        {"POOL": 0, "URL": "stratum+tcp://a:3333", "Status": "Alive", "Priority": 1},
        {"POOL": 1, "URL": "stratum+tcp://b:3333", "Status": "Alive"},
    ]
    assert [p.active for p in parse_pools({**status, "POOLS": pools})] == [None, None]
    pools[1]["Priority"] = 0
    assert [p.active for p in parse_pools({**status, "POOLS": pools})] == [False, True]


def test_cgminer_hashrate_that_overflows_its_unit_is_a_bad_response() -> None:
    """Was: "MHS 5s": 1e308 became inf H/s, refused only by the line-protocol writer."""
    with pytest.raises(BadResponse, match="out of range"):
        whatsminer_readings({"MHS 5s": 1e308})
