"""Hashrate-history parsers and points: only the bins a pool returns become points, never a made-up 0."""

from __future__ import annotations

from typing import Any

import pytest

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
