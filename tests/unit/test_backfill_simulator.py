"""The simulator's hashrate-history endpoints: F2Pool `/v2/hash_rate/history`, ViaBTC `hashrate/chart`.

Requests go through `SimulatorServer.handle` (no socket I/O): the wire format (F2Pool doubles under `history` or
`hash_rate_list`, ViaBTC strings in an envelope), the bins (complete, aligned, each stamped with its start, the
mean of the ground-truth curve), bins during an outage of the pool's API, and the parameter checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from simulator import truth
from simulator.pools.base import Request
from simulator.pools.f2pool import F2PoolApi
from simulator.pools.viabtc import ViabtcApi
from simulator.scenario import Scenario, parse_scenario
from simulator.server import SimulatorServer

T = 1_795_608_000 + 123  # 2026-11-25 12:02:03 UTC: not on a bin boundary
F2_TOKEN, VIA_KEY = "bf-sim-f2pool", "fedcba9876543210fedcba9876543210"


def _scenario() -> Scenario:
    workers = [{"name": "w1", "nominal_ths": 200.0}, {"name": "w2", "nominal_ths": 90.0, "offline_from": T - 3600}]
    common = {"group_id": "g", "workers": workers, "fault": "server_error", "fault_from": T - 7200}
    return parse_scenario(
        {
            "seed": 3,
            "history_start": date(2026, 11, 24),
            "sats_per_phs_day": 45000,
            "accounts": [
                {"pool": "f2pool", "username": "f2u", "secret": F2_TOKEN, **common},
                {"pool": "viabtc", "username": "via", "secret": VIA_KEY, **common},
            ],
        }
    )


@pytest.fixture(scope="module")
def world() -> Scenario:
    return _scenario()


@pytest.fixture(scope="module")
def server(world: Scenario) -> Iterator[SimulatorServer]:
    instance = SimulatorServer(world, clock=lambda: float(T))  # not started: handle() is called directly
    yield instance
    instance.stop()


def _f2pool(server: SimulatorServer, body: dict[str, Any]) -> tuple[int, Any]:
    server.set_fault("f2pool", "f2u", None)  # the API is back; the pool kept its record through the outage
    request = Request(
        path="/v2/hash_rate/history",
        headers={"f2p-api-secret": F2_TOKEN, "content-type": "application/json"},
        method="POST",
        body=json.dumps({"mining_user_name": "f2u", "currency": "bitcoin", **body}).encode(),
    )
    response = server.handle(request)
    return response.status, json.loads(response.body)


def _viabtc(server: SimulatorServer, query: dict[str, str]) -> Any:
    server.set_fault("viabtc", "via", None)
    request = Request(path="/res/openapi/v1/hashrate/chart", query=query, headers={"x-api-key": VIA_KEY})
    return json.loads(server.handle(request).body)


def test_f2pool_history_serves_complete_bins_of_the_truth(server: SimulatorServer, world: Scenario) -> None:
    status, body = _f2pool(server, {"interval": 600, "duration": 3 * 3600})

    assert status == 200
    rows = body["history"]
    newest = T // 600 * 600 - 600
    assert [r["timestamp"] for r in rows] == list(range(newest - 17 * 600, newest + 1, 600))
    account = world.account("f2pool", "f2u")
    for row in rows:
        exact = truth.account_hashes(world, account, row["timestamp"], row["timestamp"] + 600) / 600
        assert row["hash_rate"] == pytest.approx(exact, abs=1e-3)
        assert isinstance(row["hash_rate"], float)
    # w2 went offline an hour ago: the bins after it count one worker.
    assert {r["online_miners"] for r in rows if r["timestamp"] >= T - 3600} == {1}


def test_f2pool_history_stops_at_the_history_start(server: SimulatorServer, world: Scenario) -> None:
    _, body = _f2pool(server, {"interval": 600, "duration": 30 * 86_400})
    assert min(r["timestamp"] for r in body["history"]) == world.history_start_ts


@pytest.mark.parametrize(
    "body",
    [
        {"interval": 300, "duration": 3600},
        {"interval": 600},
        {"interval": 600, "duration": 31 * 86_400},
        {"interval": "600", "duration": 600},
    ],
)
def test_f2pool_history_checks_its_parameters(server: SimulatorServer, body: dict[str, Any]) -> None:
    status, answer = _f2pool(server, body)
    assert status == 200
    assert answer["code"] == 5001


def test_f2pool_history_can_answer_in_the_tether_shape(world: Scenario) -> None:
    api = F2PoolApi(world, history_key="hash_rate_list")
    request = Request(
        path="/v2/hash_rate/history",
        headers={"f2p-api-secret": F2_TOKEN, "content-type": "application/json"},
        method="POST",
        body=json.dumps({"mining_user_name": "f2u", "currency": "bitcoin", "interval": 600, "duration": 1200}).encode(),
    )
    route = api.route(request)
    assert route is not None
    body = json.loads(api.render(route, T).body)
    assert list(body) == ["hash_rate_list"]
    assert len(body["hash_rate_list"]) == 2


def test_viabtc_chart_serves_string_hashrates_in_an_envelope(server: SimulatorServer, world: Scenario) -> None:
    body = _viabtc(server, {"coin": "BTC", "interval": "min", "period": "6"})

    assert body["code"] == 0
    newest = T // 600 * 600 - 600
    assert [p["timestamp"] for p in body["data"]] == list(range(newest - 5 * 600, newest + 1, 600))
    account = world.account("viabtc", "via")
    for point in body["data"]:
        assert isinstance(point["hashrate"], str)
        exact = truth.account_hashes(world, account, point["timestamp"], point["timestamp"] + 600) / 600
        assert int(point["hashrate"]) == round(exact)


def test_viabtc_chart_defaults_and_caps_the_period(server: SimulatorServer) -> None:
    assert len(_viabtc(server, {"coin": "BTC", "interval": "min"})["data"]) == 144
    assert len(_viabtc(server, {"coin": "BTC", "interval": "hour", "period": "5"})["data"]) == 5
    # One day of history (from 2026-11-24): no more points than the pool has.
    assert len(_viabtc(server, {"coin": "BTC", "interval": "min", "period": "100000"})["data"]) == 216


@pytest.mark.parametrize(
    "query",
    [
        {"coin": "BTC"},
        {"coin": "BTC", "interval": "sec"},
        {"coin": "BTC", "interval": "min", "period": "x"},
        {"coin": "BTC", "interval": "min", "period": "0"},
    ],
)
def test_viabtc_chart_checks_its_parameters(server: SimulatorServer, query: dict[str, str]) -> None:
    assert _viabtc(server, query)["code"] == 2


def test_viabtc_chart_of_another_coin_is_empty(server: SimulatorServer) -> None:
    assert _viabtc(server, {"coin": "LTC", "interval": "min"})["data"] == []


def test_the_api_fails_during_its_outage(server: SimulatorServer) -> None:
    server.reset_faults()  # the scenario's fault window (from two hours ago, open-ended) applies again
    request = Request(path="/res/openapi/v1/hashrate/chart", query={"coin": "BTC"}, headers={"x-api-key": VIA_KEY})
    assert server.handle(request).status == 500


def test_both_histories_can_also_return_the_bin_in_progress(world: Scenario) -> None:
    """`current_bin=True`: the bin holding `T` comes last, with the mean of its elapsed part (a partial figure)."""
    f2 = F2PoolApi(world, current_bin=True)
    f2_request = Request(
        path="/v2/hash_rate/history",
        headers={"f2p-api-secret": F2_TOKEN, "content-type": "application/json"},
        method="POST",
        body=json.dumps({"mining_user_name": "f2u", "currency": "bitcoin", "interval": 600, "duration": 1200}).encode(),
    )
    via = ViabtcApi(world, current_bin=True)
    via_request = Request(
        path="/res/openapi/v1/hashrate/chart",
        query={"coin": "BTC", "interval": "min", "period": "2"},
        headers={"x-api-key": VIA_KEY},
    )
    f2_route, via_route = f2.route(f2_request), via.route(via_request)
    assert f2_route is not None
    assert via_route is not None

    f2_rows = json.loads(f2.render(f2_route, T).body)["history"]
    via_rows = json.loads(via.render(via_route, T).body)["data"]

    current = T // 600 * 600
    assert [r["timestamp"] for r in f2_rows] == [current - 1200, current - 600, current]
    assert [r["timestamp"] for r in via_rows] == [current - 1200, current - 600, current]
    partial = truth.account_hashes(world, world.account("f2pool", "f2u"), current, T) / (T - current)
    assert f2_rows[-1]["hash_rate"] == pytest.approx(partial, abs=1e-3)
