"""Injected faults: each one behaves as documented, per account, from the scenario or switched at run time."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
from sim_support import FIXED_T, SCENARIOS

from collector.pools.antpool.parse import signature
from simulator.mutations import SHAPES, WRONG_VALUES, JsonShape, is_numeric_string, missing_fields, wrong_types
from simulator.mutations import mutate_response as mutate
from simulator.pools.base import Response, json_response, text_response
from simulator.scenario import POOLS, Account, Scenario, ScenarioError, load_scenario, parse_scenario
from simulator.server import SimulatorServer

BRAIINS_PROFILE = "/accounts/profile/json/btc/"


@pytest.fixture(scope="module")
def faults_scenario() -> Scenario:
    return load_scenario(SCENARIOS / "faults.toml")


@pytest.fixture(scope="module")
def faults_server(faults_scenario: Scenario) -> Iterator[SimulatorServer]:
    with SimulatorServer(faults_scenario, clock=lambda: FIXED_T, hang_seconds=2.0) as server:
        yield server


def braiins(server: SimulatorServer, token: str, timeout: float = 5) -> requests.Response:
    return requests.get(server.url + BRAIINS_PROFILE, headers={"Pool-Auth-Token": token}, timeout=timeout)


def emcd(server: SimulatorServer, key: str, timeout: float = 5) -> requests.Response:
    return requests.get(f"{server.url}/v1/btc/workers/{key}", timeout=timeout)


def call(server: SimulatorServer, secret: str, timeout: float = 5) -> requests.Response:
    """One request for the account behind `secret` (the faults scenario prefixes secrets with the pool)."""
    return braiins(server, secret, timeout) if secret.startswith("braiins") else emcd(server, secret, timeout)


def test_healthy_accounts_are_unaffected(faults_server: SimulatorServer) -> None:
    assert braiins(faults_server, "braiins-healthy").json()["username"] == "healthy"
    assert "details" in emcd(faults_server, "emcd-healthy").json()


def test_auth_fault(faults_server: SimulatorServer) -> None:
    response = braiins(faults_server, "braiins-auth")
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    response = emcd(faults_server, "emcd-auth")
    assert response.status_code == 200
    assert response.json()["code"] == 403


def test_server_error_fault(faults_server: SimulatorServer) -> None:
    assert braiins(faults_server, "braiins-server-error").status_code == 500
    assert emcd(faults_server, "emcd-server-error").status_code == 500


def test_rate_limit_fault(faults_server: SimulatorServer) -> None:
    response = braiins(faults_server, "braiins-rate-limit")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    response = emcd(faults_server, "emcd-rate-limit")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert response.json()["code"] == 429


@pytest.mark.parametrize("secret", ["braiins-malformed", "emcd-malformed"])
def test_malformed_fault(faults_server: SimulatorServer, secret: str) -> None:
    response = call(faults_server, secret)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


@pytest.mark.parametrize("secret", ["braiins-hang", "emcd-hang"])
def test_hang_fault_times_the_client_out(faults_server: SimulatorServer, secret: str) -> None:
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        call(faults_server, secret, timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_hang_then_answers(faults_scenario: Scenario) -> None:
    with SimulatorServer(faults_scenario, clock=lambda: FIXED_T, hang_seconds=0.3) as server:
        started = time.monotonic()
        response = braiins(server, "braiins-hang", timeout=5)
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3


def test_stop_releases_hanging_requests(faults_scenario: Scenario) -> None:
    server = SimulatorServer(faults_scenario, clock=lambda: FIXED_T, hang_seconds=30)
    server.start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            braiins(server, "braiins-hang", timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    caller.join(timeout=5)
    assert not caller.is_alive()
    assert time.monotonic() - started < 3
    assert errors  # the connection was dropped, not answered


def test_set_fault_overrides_and_resets(faults_scenario: Scenario) -> None:
    with SimulatorServer(faults_scenario, clock=lambda: FIXED_T) as server:
        server.set_fault("braiins", "healthy", "server_error")
        assert braiins(server, "braiins-healthy").status_code == 500
        server.set_fault("braiins", "healthy", "rate_limit")
        assert braiins(server, "braiins-healthy").status_code == 429
        server.set_fault("emcd", "server_error", None)  # heal a scenario fault
        assert emcd(server, "emcd-server-error").status_code == 200
        server.reset_faults()
        assert braiins(server, "braiins-healthy").status_code == 200
        assert emcd(server, "emcd-server-error").status_code == 500
        with pytest.raises(KeyError):
            server.set_fault("emcd", "nobody", "auth")


def test_fault_window_follows_the_clock() -> None:
    scenario = parse_scenario(
        {
            "seed": 1,
            "history_start": "2026-11-01",
            "sats_per_phs_day": 45000,
            "accounts": [
                {
                    "group_id": "g",
                    "pool": "emcd",
                    "username": "u",
                    "secret": "k",
                    "fault": "server_error",
                    "fault_from": FIXED_T,
                    "fault_until": FIXED_T + 600,
                    "workers": [{"name": "w", "nominal_ths": 100.0}],
                }
            ],
        }
    )
    now = [FIXED_T - 1]
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        statuses = []
        for t in (FIXED_T - 1, FIXED_T, FIXED_T + 599, FIXED_T + 600):
            now[0] = t
            statuses.append(emcd(server, "k").status_code)
        assert statuses == [200, 500, 500, 200]


def test_requests_are_counted(faults_scenario: Scenario) -> None:
    with SimulatorServer(faults_scenario, clock=lambda: FIXED_T) as server:
        for _ in range(3):
            braiins(server, "braiins-healthy")
        braiins(server, "braiins-rate-limit")
        braiins(server, "not-a-token")
        assert server.request_counts() == {"braiins:healthy": 3, "braiins:rate_limit": 1}


# --- latency, refused, truncated ---


@pytest.fixture
def quick_server(faults_scenario: Scenario) -> Iterator[SimulatorServer]:
    """A server of its own (tests may set faults on it) with short hang and latency."""
    with SimulatorServer(faults_scenario, clock=lambda: FIXED_T, hang_seconds=0.3, latency_seconds=0.3) as server:
        yield server


def test_latency_answers_correctly_after_the_delay(quick_server: SimulatorServer) -> None:
    started = time.monotonic()
    slow = braiins(quick_server, "braiins-latency")
    assert time.monotonic() - started >= 0.3
    quick_server.set_fault("braiins", "latency", None)
    started = time.monotonic()
    prompt = braiins(quick_server, "braiins-latency")
    assert time.monotonic() - started < 0.3
    assert (slow.status_code, slow.content) == (prompt.status_code, prompt.content)
    assert slow.json()["username"] == "latency"


@pytest.mark.parametrize("secret", ["braiins-latency", "emcd-latency"])
def test_latency_longer_than_the_client_timeout_is_a_timeout(faults_server: SimulatorServer, secret: str) -> None:
    assert faults_server.scenario.latency_seconds == 2.0
    with pytest.raises(requests.Timeout):
        call(faults_server, secret, timeout=0.3)


def _raw_get(server: SimulatorServer, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("secret", ["braiins-refused", "emcd-refused"])
def test_refused_resets_the_connection_without_an_answer(faults_server: SimulatorServer, secret: str) -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        call(faults_server, secret)
    assert "ConnectionResetError" in repr(caught.value)


def test_refused_sends_no_byte_but_an_rst(faults_server: SimulatorServer) -> None:
    with (
        _raw_get(faults_server, BRAIINS_PROFILE, {"Pool-Auth-Token": "braiins-refused"}) as sock,
        pytest.raises(ConnectionResetError),
    ):
        sock.recv(65536)  # b"" would be an orderly close (FIN), data an answer: only a reset raises


def test_truncated_announces_the_whole_body_and_sends_half(quick_server: SimulatorServer) -> None:
    with _raw_get(quick_server, BRAIINS_PROFILE, {"Pool-Auth-Token": "braiins-truncated"}) as sock:
        received = _read_until_closed(sock)  # returns: the server closes after the half body
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    announced = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
    quick_server.set_fault("braiins", "truncated", None)
    whole = braiins(quick_server, "braiins-truncated").content
    assert announced == len(whole)
    assert body == whole[: len(whole) // 2]


@pytest.mark.parametrize("secret", ["braiins-truncated", "emcd-truncated"])
def test_truncated_is_a_body_cut_short_for_a_client(faults_server: SimulatorServer, secret: str) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
        call(faults_server, secret)
    assert "IncompleteRead" in repr(caught.value)


def test_new_faults_can_be_set_and_are_counted(quick_server: SimulatorServer) -> None:
    quick_server.set_fault("emcd", "healthy", "refused")
    with pytest.raises(requests.ConnectionError):
        emcd(quick_server, "emcd-healthy")
    quick_server.set_fault("emcd", "healthy", "missing_fields")
    assert emcd(quick_server, "emcd-healthy").json()["details"] == [{"user": "healthy", "worker": "w1"}]
    quick_server.reset_faults()
    assert "hashrate" in emcd(quick_server, "emcd-healthy").json()["details"][0]
    assert quick_server.request_counts()["emcd:healthy"] == 3


def test_latency_seconds_in_the_scenario() -> None:
    base: dict[str, Any] = {
        "seed": 1,
        "history_start": "2026-11-01",
        "sats_per_phs_day": 45000,
        "accounts": [{"group_id": "g", "pool": "emcd", "username": "u", "secret": "k"}],
    }
    assert parse_scenario(base).latency_seconds == 2.0
    assert parse_scenario(base | {"latency_seconds": 0.5}).latency_seconds == 0.5
    with pytest.raises(ScenarioError, match="latency_seconds"):
        parse_scenario(base | {"latency_seconds": 0})


# --- wrong_types and missing_fields, over the wire for every pool ---

_NONCES = itertools.count(1_800_000_000_000)


def fetch(server: SimulatorServer, account: Account) -> requests.Response:
    """The account's worker list, the endpoint each pool has with rows, identifiers and numbers."""
    if account.pool == "braiins":
        headers = {"Pool-Auth-Token": account.secret}
        return requests.get(f"{server.url}/accounts/workers/json/btc/", headers=headers, timeout=5)
    if account.pool == "emcd":
        return requests.get(f"{server.url}/v1/btc/workers/{account.secret}", timeout=5)
    if account.pool == "f2pool":
        body = {"mining_user_name": account.username, "currency": "bitcoin"}
        headers = {"F2P-API-SECRET": account.secret}
        return requests.post(f"{server.url}/v2/hash_rate/worker/list", json=body, headers=headers, timeout=5)
    if account.pool == "viabtc":
        url = f"{server.url}/res/openapi/v1/hashrate/worker?coin=BTC"
        return requests.get(url, headers={"X-API-KEY": account.secret}, timeout=5)
    assert account.api_secret is not None
    nonce = next(_NONCES)
    form = {
        "key": account.secret,
        "nonce": str(nonce),
        "signature": signature(account.username, account.secret, account.api_secret, nonce),
        "coinType": "BTC",
    }
    return requests.post(f"{server.url}/api/userWorkerList.htm", data=form, timeout=5)


@pytest.fixture(scope="module")
def twin_server(faults_scenario: Scenario) -> Iterator[SimulatorServer]:
    """The faults scenario with every fault removed: the answers the mutations start from."""
    twin = replace(faults_scenario, accounts=tuple(replace(a, fault=None) for a in faults_scenario.accounts))
    with SimulatorServer(twin, clock=lambda: FIXED_T) as server:
        yield server


def _pair(faults: SimulatorServer, twin: SimulatorServer, pool: str, fault: str) -> tuple[Any, Any]:
    account = next(a for a in faults.scenario.accounts if a.pool == pool and a.fault == fault)
    mutated, healthy = fetch(faults, account), fetch(twin, account)
    assert (mutated.status_code, mutated.headers["Content-Type"]) == (200, "application/json")
    assert healthy.status_code == 200
    return mutated.json(), healthy.json()


def _data_part(document: Any, shape: JsonShape) -> Any:
    return {k: v for k, v in document.items() if k not in shape.envelope} if isinstance(document, dict) else document


def _scalars(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """(key, value) of every leaf; a wrong-typed replacement ([1], {"v": 1}) counts as one leaf."""
    if value in WRONG_VALUES:
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _scalars(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item, key)
    else:
        yield key, value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.parametrize("pool", POOLS)
def test_wrong_types_over_the_wire(faults_server: SimulatorServer, twin_server: SimulatorServer, pool: str) -> None:
    mutated, healthy = _pair(faults_server, twin_server, pool, "wrong_types")
    shape = SHAPES[pool]
    assert mutated == wrong_types(healthy, shape)
    for key in shape.envelope & set(healthy):
        assert mutated[key] == healthy[key]  # code 0 / "OK" still say success
    leaves = list(_scalars(_data_part(mutated, shape)))
    assert leaves
    numbers = [(k, v) for k, v in leaves if _is_number(v) or (isinstance(v, str) and is_numeric_string(v))]
    assert [(k, v) for k, v in numbers if k not in shape.identifiers] == []
    assert {json.dumps(v) for _, v in leaves if v in WRONG_VALUES} == {json.dumps(v) for v in WRONG_VALUES}


@pytest.mark.parametrize("pool", POOLS)
def test_missing_fields_over_the_wire(faults_server: SimulatorServer, twin_server: SimulatorServer, pool: str) -> None:
    mutated, healthy = _pair(faults_server, twin_server, pool, "missing_fields")
    shape = SHAPES[pool]
    assert mutated == missing_fields(healthy, shape)
    for key in shape.envelope & set(healthy):
        assert mutated[key] == healthy[key]
    kept = [(k, v) for k, v in _scalars(_data_part(mutated, shape)) if not isinstance(v, dict | list)]
    assert all(k in shape.identifiers for k, _ in kept), kept
    assert not any(_is_number(v) for _, v in kept)


# --- the mutations themselves ---

SHAPE = JsonShape(envelope=frozenset({"code", "message"}), identifiers=frozenset({"worker"}))


def test_wrong_types_keeps_the_envelope_and_identifiers_and_cycles_the_wrong_values() -> None:
    document = {
        "code": 0,
        "message": "OK",
        "data": {
            "rows": [{"worker": "17", "rate": "123.5", "count": 3, "share": 0.5, "on": True, "tx": None}],
            "unit": "TH/s",
            "day": "2026-11-24",
            "total": -2,
        },
    }
    assert wrong_types(document, SHAPE) == {
        "code": 0,
        "message": "OK",
        "data": {
            "rows": [{"worker": "17", "rate": [1], "count": {"v": 1}, "share": "n/a", "on": True, "tx": None}],
            "unit": "TH/s",
            "day": "2026-11-24",
            "total": [1],
        },
    }
    assert WRONG_VALUES == ([1], {"v": 1}, "n/a")


def test_missing_fields_keeps_containers_identifiers_and_the_envelope() -> None:
    document = {
        "code": 0,
        "message": "OK",
        "data": {"rows": [{"worker": "w1", "rate": 1.0}, 5, "x"], "total": 3, "names": {"w1": 17}},
    }
    assert missing_fields(document, SHAPE) == {
        "code": 0,
        "message": "OK",
        "data": {"rows": [{"worker": "w1"}], "names": {}},
    }


@pytest.mark.parametrize(
    ("text", "numeric"),
    [
        ("0.00021038", True),
        ("-5", True),
        ("1e-3", True),
        ("12.", True),
        ("2026-11-24", False),
        ("3f2a", False),
        ("306.23 TH/s", False),
        ("1.5%", False),
        ("", False),
        ("n/a", False),
    ],
)
def test_numeric_strings(text: str, numeric: bool) -> None:
    assert is_numeric_string(text) is numeric


def test_mutating_a_response_keeps_status_type_and_headers() -> None:
    headers = (("Retry-After", "30"),)
    response = json_response({"code": 0, "data": {"n": 1}}, headers=headers)
    changed = mutate(response, "wrong_types", SHAPE)
    assert (changed.status, changed.content_type, changed.headers) == (200, "application/json", headers)
    assert json.loads(changed.body) == {"code": 0, "data": {"n": [1]}}
    assert json.loads(mutate(response, "missing_fields", SHAPE).body) == {"code": 0, "data": {}}


def test_mutating_plain_text() -> None:
    tip = text_response("942367", 200)
    assert mutate(tip, "wrong_types", JsonShape()).body == b"n/a"
    assert mutate(tip, "missing_fields", JsonShape()).body == b""
    error = text_response("Not Found\n", 404)
    assert mutate(error, "wrong_types", JsonShape()) is error
    cut = Response(200, b'{"a": ', "application/json")
    assert mutate(cut, "missing_fields", JsonShape()) is cut
