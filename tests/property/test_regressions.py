"""The minimal inputs the hostile-input properties found, kept as plain tests (one per bug fixed)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.adapters.parsing import integer, record_id, required_integer, scaled, unix_time
from collector.devices.cgminer.parse import parse_pools, whatsminer_readings
from collector.errors import BadResponse
from collector.models import SectionIssue
from collector.network.mempool.parse import parse_reward_stats
from collector.pools import antpool, braiins, emcd, viabtc
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
    """Was: with the `account` section failed, "farmop.rack2x05" was written as a second worker series; then
    one such name failed the whole workers section. Now only the ambiguous worker is left out, with an issue."""
    row = {"worker_name": "farmop.rack2x05", "worker_status": "active", "hashrate_10min": "1"}
    plain = {**row, "worker_name": "rack1"}
    issues: list[SectionIssue] = []
    assert [w.name for w in parse_workers([row, plain], None, issues)] == ["rack1"]
    assert [(i.section, i.kind) for i in issues] == [("workers", "bad_response")]
    assert "1 worker name(s) with a dot" in issues[0].message
    assert parse_workers([row], "farmop")[0].name == "rack2x05"
    assert parse_workers([plain], None)[0].name == "rack1"
    extra: list[SectionIssue] = []
    parse_workers([plain], None, extra)
    assert extra == []


def test_viabtc_poll_with_a_broken_account_answer_writes_no_prefixed_worker() -> None:
    case: HttpCase = next(c for c in http_cases("viabtc") if c.case.name == "worker-names")
    outcome = case.run({"account": b""})
    assert outcome.points is not None
    workers = [tags for measurement, tags, _ in outcome.points if measurement == "pool_worker"]
    assert workers, "the workers without a dot are still written"
    assert not any("worker=farmop" in tags for tags in workers), workers  # none under a made-up name


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


# --- junk read as a value (review of issue 7) -----------------------------------------------------------------

EMCD_WORKER = {"worker": "rig1", "hashrate": 1, "lastbeat": 1700000123, "active": 1}
EMCD_COUNTS = {"active": 1, "inactive": 0, "dead_count": 0}


def _emcd_workers(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"total_count": dict(EMCD_COUNTS), "total_hashrate": {"hashrate": 1}, "details": []}
    body["details"] = [{**EMCD_WORKER, **changes}]
    return body


@pytest.mark.parametrize(("value", "online"), [(1, True), ("1", True), (0, False), (-1, False), (2, False)])
def test_emcd_documented_active_states(value: Any, online: bool) -> None:
    assert emcd.parse.parse_workers(_emcd_workers(active=value)).workers[0].online is online


@pytest.mark.parametrize("value", [7, pytest.param(10**400, id="10**400"), "7", "-2", "yes", 3])
def test_emcd_undocumented_active_state_is_a_bad_response(value: Any) -> None:
    """Was: `int(value) == 1`, so 7 or 10**400 was written as online=0."""
    with pytest.raises(BadResponse, match="unknown state"):
        emcd.parse.parse_workers(_emcd_workers(active=value))


def test_negative_money_owed_is_a_bad_response() -> None:
    """Was: -1 BTC of earnings or balance written as -100000000i."""
    with pytest.raises(BadResponse, match="negative"):
        antpool.parse.parse_earnings([{"timestamp": "1700000000000", "amount": "-1"}])
    with pytest.raises(BadResponse, match="negative"):
        antpool.parse.parse_balance({"code": 0, "data": {"balance": "-0.5"}})
    profile = {"btc": {"hash_rate_unit": "Gh/s", "current_balance": "-1"}}
    with pytest.raises(BadResponse, match="negative"):
        braiins.parse.parse_profile(profile)
    with pytest.raises(BadResponse, match="negative"):
        braiins.parse.parse_daily_rewards({"btc": {"daily_rewards": [{"date": 1700000000, "total_reward": "-1"}]}})
    with pytest.raises(BadResponse, match="negative"):
        emcd.parse.parse_income({"income": [{"timestamp": 1569456000, "income": -1, "type": "fpps"}]})
    with pytest.raises(BadResponse, match="negative"):
        emcd.parse.parse_info({"bitcoin": {"balance": -1, "address": None}}, "BTC")
    with pytest.raises(BadResponse, match="negative"):
        viabtc.parse.parse_profit_history([{"date": "2023-11-13", "total_profit": "-1"}])
    account = {"code": 0, "data": {"balance": [{"coin": "BTC", "amount": "-1"}]}}
    with pytest.raises(BadResponse, match="negative"):
        viabtc.parse.parse_account(account, "BTC")
    # A zero is a real zero.
    assert emcd.parse.parse_income({"income": [{"timestamp": 1, "income": 0, "type": "fpps"}]})[0].amount_sats == 0


def test_a_last_share_of_zero_is_unknown_not_1970() -> None:
    viabtc_row = {"worker_name": "rig1", "worker_status": "active", "last_active": 0}
    assert viabtc.parse.parse_workers([viabtc_row], "farmop")[0].last_share_ts is None
    braiins_workers = {"btc": {"workers": {"u.rig1": {"hash_rate_unit": "Gh/s", "state": "ok", "last_share": 0}}}}
    assert braiins.parse.parse_workers(braiins_workers, "u")[0].last_share_ts is None
    assert emcd.parse.parse_workers(_emcd_workers(lastbeat=0)).workers[0].last_share_ts is None
    dead = {**_emcd_workers(), "detailsDead": {"rig9": 0}}
    assert [w.last_share_ts for w in emcd.parse.parse_workers(dead).workers] == [1700000123, None]
    antpool_row = {"workerId": "rig1", "workerStatus": 1, "shareLastTime": "0"}
    assert antpool.parse.parse_user_workers([antpool_row], "u")[0].last_share_ts is None


@pytest.mark.parametrize(
    "value",
    [-1, 0, pytest.param(10**400, id="10**400"), 2**63, "1e999", "-1", "", " 12", "12.0", 12.0, True, None, "١٢"],
)
def test_a_junk_record_id_is_a_bad_response(value: Any) -> None:
    """Was: a ViaBTC payment `id` of -1, 10**400 or "1e999" became a new event id (a second payout point)."""
    with pytest.raises(BadResponse, match="'id' is not a positive whole-number id"):
        record_id({"id": value}, "id", "x")
    row = {"id": value, "tx": "aa", "create_time": 1700000000, "amount": "0.1"}
    with pytest.raises(BadResponse, match="id"):
        viabtc.parse.parse_payments([row])


def test_a_record_id_as_digits_or_integer_is_the_same_event() -> None:
    assert record_id({"id": "998877"}, "id", "x") == record_id({"id": 998877}, "id", "x") == 998877
    assert record_id({"id": 2**63 - 1}, "id", "x") == 2**63 - 1
    row = {"id": "998877", "tx": "aa", "create_time": 1700000000, "amount": "0.1"}
    assert viabtc.parse.parse_payments([row])[0].event_id == "viabtc:payment:998877"


def test_braiins_empty_tx_id_is_absent() -> None:
    """Was: written as txid=""."""
    row = {"status": "confirmed", "requested_at_ts": 1775000000, "amount_sats": 1, "destination": "bc1q", "tx_id": ""}
    assert braiins.parse.parse_payouts({"onchain": [row]})[0].txid is None


def test_a_missing_worker_category_makes_the_total_unknown() -> None:
    """Was: a missing category counted as 0, so the total was smaller than the pool's."""
    overview: dict[str, Any] = {"code": 0, "data": {"activeWorkerNum": "9", "inactiveWorkerNum": "1"}}
    assert antpool.parse.parse_overview(overview).workers_inactive is None
    overview["data"]["invalidWorkerNum"] = "2"
    assert antpool.parse.parse_overview(overview).workers_inactive == 3
    body = _emcd_workers()
    del body["total_count"]["dead_count"]
    assert emcd.parse.parse_workers(body).workers_inactive is None
    assert emcd.parse.parse_workers(_emcd_workers()).workers_inactive == 0
    counts = {"ok_workers": 2, "off_workers": 1, "dis_workers": 0}
    profile = braiins.parse.parse_profile({"btc": {"hash_rate_unit": "Gh/s", **counts}})
    assert (profile.workers_active, profile.workers_inactive) == (None, 1)
    profile = braiins.parse.parse_profile({"btc": {"hash_rate_unit": "Gh/s", "low_workers": 1, **counts}})
    assert (profile.workers_active, profile.workers_inactive) == (3, 1)
