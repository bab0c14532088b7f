"""Injected faults: each one behaves as documented, per account, from the scenario or switched at run time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from sim_support import FIXED_T, SCENARIOS

from simulator.scenario import Scenario, load_scenario, parse_scenario
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
