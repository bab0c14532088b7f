"""Hashrate-history parsers and points: only the bins a pool returns become points, never a made-up 0."""

from __future__ import annotations

from typing import Any

import pytest

from collector.adapters.backfill import bins_between, complete_bins, history_days, history_start
from collector.errors import AuthFailed, BadResponse
from collector.models import HashrateSample, PoolAccountSnapshot
from collector.pools.f2pool import parse as f2pool
from collector.pools.viabtc import parse as viabtc
from collector.sinks.points import CATALOGUE, POOL_HASHRATE_HISTORY, PoolAccountTags, pool_account_lines

T0 = 1_700_000_400


@pytest.mark.parametrize("key", ["history", "hash_rate_list"])
def test_f2pool_history_is_read_from_either_key_and_skips_null_bins(key: str) -> None:
    payload = {
        key: [
            {"timestamp": T0 + 600, "hash_rate": 1.05e15, "online_miners": 10},
            {"timestamp": T0, "hash_rate": 1.04e15},
            {"timestamp": T0 + 1200, "hash_rate": None},  # the pool has no figure: missing, not 0
            {"timestamp": T0 + 1800},
            {"timestamp": T0 + 2400, "hash_rate": 0},  # a real zero the pool reports stays a zero
        ]
    }

    samples = f2pool.parse_hashrate_history(payload, 600)

    assert samples == (
        HashrateSample(T0, 1.04e15, 600),
        HashrateSample(T0 + 600, 1.05e15, 600),
        HashrateSample(T0 + 2400, 0.0, 600),
    )
    assert all(isinstance(s.hashrate_hs, float) for s in samples)


def test_f2pool_history_prefers_the_documented_key() -> None:
    payload = {
        "history": [{"timestamp": T0, "hash_rate": 1.0}],
        "hash_rate_list": [{"timestamp": T0, "hash_rate": 2.0}],
    }
    assert f2pool.parse_hashrate_history(payload, 600) == (HashrateSample(T0, 1.0, 600),)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, BadResponse),
        ({"history": {"timestamp": T0}}, BadResponse),
        ({"history": [{"hash_rate": 1.0}]}, BadResponse),
        ({"history": [{"timestamp": T0, "hash_rate": "fast"}]}, BadResponse),
        ({"history": [{"timestamp": T0, "hash_rate": -1}]}, BadResponse),
        ({"code": 5010, "msg": "permission_denied: no"}, AuthFailed),
    ],
)
def test_f2pool_history_rejects_what_it_cannot_read(payload: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        f2pool.parse_hashrate_history(payload, 600)


def test_f2pool_history_null_list_is_no_bins() -> None:
    assert f2pool.parse_hashrate_history({"history": None}, 600) == ()


def test_viabtc_chart_reads_string_hashrates_and_skips_null_points() -> None:
    payload = {
        "code": 0,
        "data": [
            {"timestamp": T0, "hashrate": "1043210987654321", "reject_rate": "0.0020"},
            {"timestamp": T0 + 600, "hashrate": None, "reject_rate": None},
            {"timestamp": T0 + 1200, "reject_rate": "0"},
            {"timestamp": T0 + 1800, "hashrate": "0", "reject_rate": "0"},
        ],
        "message": "OK",
    }

    assert viabtc.parse_hashrate_chart(payload, 600) == (
        HashrateSample(T0, 1043210987654321.0, 600),
        HashrateSample(T0 + 1800, 0.0, 600),
    )


def test_viabtc_chart_accepts_a_paged_data_object() -> None:
    payload = {"code": 0, "data": {"data": [{"timestamp": T0, "hashrate": "5"}], "has_next": False}, "message": "OK"}
    assert viabtc.parse_hashrate_chart(payload, 600) == (HashrateSample(T0, 5.0, 600),)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"code": 12001, "data": None, "message": "invalid api key"}, AuthFailed),
        ({"code": 0, "message": "OK"}, BadResponse),
        ({"code": 0, "data": [{"hashrate": "5"}], "message": "OK"}, BadResponse),
        ({"code": 0, "data": [{"timestamp": T0, "hashrate": "n/a"}], "message": "OK"}, BadResponse),
    ],
)
def test_viabtc_chart_rejects_what_it_cannot_read(payload: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        viabtc.parse_hashrate_chart(payload, 600)


def test_history_bins_become_points_at_their_own_time() -> None:
    snapshot = PoolAccountSnapshot(
        observed_at=T0 + 3600,
        coin="BTC",
        hashrate_history=(HashrateSample(T0, 1e15, 600), HashrateSample(T0 + 600, 2, 600)),
    )
    tags = PoolAccountTags(group_id="g1", pool="f2pool", account="acct", coin="BTC")

    lines = list(pool_account_lines(snapshot, tags, lambda address, at: True))

    series = "pool_hashrate_history,account=acct,coin=BTC,group_id=g1,pool=f2pool"
    assert lines == [
        f"{series} hashrate_hs=1000000000000000.0,window_s=600i {T0}000000000",
        f"{series} hashrate_hs=2.0,window_s=600i {T0 + 600}000000000",
    ]
    assert CATALOGUE[POOL_HASHRATE_HISTORY].fields == {"hashrate_hs": float, "window_s": int}


def test_a_snapshot_without_history_writes_no_history_point() -> None:
    snapshot = PoolAccountSnapshot(observed_at=T0, coin="BTC", hashrate_hs=1.0)
    tags = PoolAccountTags(group_id="g1", pool="f2pool", account="acct", coin="BTC")
    assert [line for line in pool_account_lines(snapshot, tags, lambda a, t: True) if "history" in line] == []


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (f2pool.parse_hashrate_history, {"history": [{"timestamp": T0 * 1000, "hash_rate": 1.0}]}),
        (viabtc.parse_hashrate_chart, {"code": 0, "data": [{"timestamp": T0 * 1000, "hashrate": "1"}], "message": ""}),
    ],
    ids=["f2pool", "viabtc"],
)
def test_history_in_milliseconds_is_refused_not_filtered_away(parse: Any, payload: Any) -> None:
    with pytest.raises(BadResponse, match="unix seconds"):
        parse(payload, 600)


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (
            f2pool.parse_hashrate_history,
            {"history": [{"timestamp": T0, "hash_rate": 1.0}, {"timestamp": T0, "hash_rate": 2.0}]},
        ),
        (
            viabtc.parse_hashrate_chart,
            {
                "code": 0,
                "data": [{"timestamp": T0, "hashrate": "1"}, {"timestamp": T0, "hashrate": None}],
                "message": "",
            },
        ),
    ],
    ids=["f2pool", "viabtc"],
)
def test_a_bin_stamped_twice_is_refused_not_last_wins(parse: Any, payload: Any) -> None:
    with pytest.raises(BadResponse, match="twice"):
        parse(payload, 600)


def _bins(*starts: int) -> list[HashrateSample]:
    return [HashrateSample(at, 1.0, 600) for at in starts]


def test_complete_bins_keeps_the_window_and_drops_the_bin_in_progress() -> None:
    now = T0 + 3000 + 59  # 59 s into the bin at T0 + 3000

    kept = complete_bins(_bins(T0 - 600, T0, T0 + 600, T0 + 2400, T0 + 3000), oldest=T0, now=now, bin_s=600, where="h")

    assert [s.at for s in kept] == [T0, T0 + 600, T0 + 2400]  # a null bin's hole stays a hole


def test_complete_bins_keeps_a_bin_that_ends_exactly_now() -> None:
    assert [s.at for s in complete_bins(_bins(T0), oldest=T0, now=T0 + 600, bin_s=600, where="h")] == [T0]


def test_no_bins_at_all_is_no_history_not_an_error() -> None:
    assert complete_bins([], oldest=T0, now=T0 + 6000, bin_s=600, where="h") == ()


@pytest.mark.parametrize(
    ("starts", "message"),
    [
        ((T0 - 86_400, T0 - 85_800), "none in the window"),
        ((T0, T0 + 900), "not 600 s steps apart"),
    ],
)
def test_bins_that_do_not_answer_the_window_are_an_error(starts: tuple[int, ...], message: str) -> None:
    with pytest.raises(BadResponse, match=message):
        complete_bins(_bins(*starts), oldest=T0, now=T0 + 6000, bin_s=600, where="h")


@pytest.mark.parametrize(
    ("now", "since", "expected"),
    [(T0 + 3 * 3600, T0, 19), (T0 + 30 * 3600, T0, 36), (T0 + 1, T0, 2), (T0, T0, 1)],
)
def test_bins_between_counts_the_gap_and_the_bin_it_starts_in_capped(now: int, since: int, expected: int) -> None:
    assert bins_between(now, since, 600, 6 * 3600) == expected


DAY = 86_400


@pytest.mark.parametrize(
    ("now", "last_ok", "recent", "cap"),
    [
        (T0, None, 3, 40),
        (T0, T0 - 600, 3, 40),
        (T0 + 10 * DAY, T0, 3, 40),
        (T0 + 60 * DAY, T0, 3, 40),
        (T0, T0 + DAY, 3, 40),  # the clock stepped back
        (T0 + 5 * DAY, T0, 30, 10),  # a cap below the recent window
    ],
)
def test_history_days_is_history_start_in_whole_utc_days(now: int, last_ok: int | None, recent: int, cap: int) -> None:
    start = history_start(now, last_ok, recent, cap)
    days = history_days(now, last_ok, recent, cap)

    assert days == now // DAY - start // DAY
    assert recent <= days <= max(recent, cap)
    if last_ok is None:
        assert start == now - max(cap, recent) * DAY
