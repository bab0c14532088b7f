"""The HTTP server: demo accounts all answer, answers are deterministic, loopback only, clean start and stop."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sim_support import FIXED_T, SCENARIOS

from simulator.local_servers import free_port_block
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
BRAIINS_PATHS = (
    "/accounts/profile/json/btc/",
    "/accounts/workers/json/btc/",
    "/accounts/rewards/json/btc?from=2026-10-01&to=2026-11-30",
    "/accounts/payouts/json/btc?from=2026-10-01&to=2026-11-30",
    "/stats/json/btc/",
)
EMCD_PATHS = ("/v1/info/{key}", "/v1/btc/workers/{key}", "/v1/btc/income/{key}", "/v1/btc/payouts/{key}")


def fetch_all(server: SimulatorServer, account: Account) -> list[requests.Response]:
    """Every route of the account's pool."""
    if account.pool == "braiins":
        headers = {"Pool-Auth-Token": account.secret}
        return [requests.get(server.url + p, headers=headers, timeout=5) for p in BRAIINS_PATHS]
    return [requests.get(server.url + p.format(key=account.secret), timeout=5) for p in EMCD_PATHS]


def test_every_demo_account_answers(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    for account in demo_scenario.accounts:
        for response in fetch_all(demo_server, account):
            assert response.status_code == 200, (account.username, response.url)
            body = response.json()
            assert "code" not in body, (account.username, body)
            if account.pool == "braiins" and "workers" in response.url:
                assert all(k.startswith(account.username + ".") for k in body["btc"]["workers"])


def test_two_loads_give_identical_responses() -> None:
    bodies = []
    for _ in range(2):
        scenario = load_scenario(SCENARIOS / "demo.toml")
        with SimulatorServer(scenario, clock=lambda: FIXED_T) as server:
            bodies.append([r.content for a in scenario.accounts for r in fetch_all(server, a)])
    assert bodies[0] == bodies[1]
    assert len(bodies[0]) == 3 * len(EMCD_PATHS) + 4 * len(BRAIINS_PATHS)  # 3 EMCD and 4 Braiins accounts


_DIGEST_SCRIPT = """
import hashlib, sys
from pathlib import Path
import requests
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer
scenario = load_scenario(Path(sys.argv[1]))
digest = hashlib.sha256()
with SimulatorServer(scenario, clock=lambda: int(sys.argv[2])) as server:
    for account in scenario.accounts:
        if account.pool == "braiins":
            for path in sys.argv[3].split():
                digest.update(requests.get(server.url + path, headers={"Pool-Auth-Token": account.secret}).content)
        else:
            for path in sys.argv[4].split():
                digest.update(requests.get(server.url + path.format(key=account.secret)).content)
print(digest.hexdigest())
"""


def test_fresh_processes_give_identical_responses(demo_server: SimulatorServer, demo_scenario: Scenario) -> None:
    # Separate interpreters with different hash seeds: nothing may depend on hash() or set order.
    expected = hashlib.sha256()
    for account in demo_scenario.accounts:
        for response in fetch_all(demo_server, account):
            expected.update(response.content)
    args = [str(SCENARIOS / "demo.toml"), str(FIXED_T), " ".join(BRAIINS_PATHS), " ".join(EMCD_PATHS)]
    for hash_seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, *args],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout.strip() == expected.hexdigest()


def test_answers_follow_the_injected_clock(demo_scenario: Scenario) -> None:
    now = [float(FIXED_T)]
    account = demo_scenario.account("braiins", "baikal")
    with SimulatorServer(demo_scenario, clock=lambda: now[0]) as server:
        first = fetch_all(server, account)[0].json()
        now[0] += 86_400
        later = fetch_all(server, account)[0].json()
    assert later["btc"]["all_time_reward"] > first["btc"]["all_time_reward"]


def test_keep_alive_and_http_1_1(demo_server: SimulatorServer) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.get(f"{demo_server.url}/v1/info/9b2d4c61-7a8e-4f10-b3c5-2d9e8f7a6b02", timeout=5)
            assert response.raw.version == 11
            assert response.headers.get("Connection", "").lower() != "close"


def test_stop_closes_idle_connections(demo_scenario: Scenario) -> None:
    server = SimulatorServer(demo_scenario, clock=lambda: FIXED_T)
    server.start()
    with requests.Session() as session:
        assert session.get(server.url + "/v1/info/nope", timeout=5).status_code == 200
        server.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(server.url + "/v1/info/nope", timeout=2)


def test_get_only_apis_do_not_answer_a_post(demo_server: SimulatorServer) -> None:
    key = demo_server.scenario.account("emcd", "tverpower").secret
    assert requests.post(demo_server.url + f"/v1/info/{key}", timeout=5).status_code == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::1", "example.com", ""])
def test_only_loopback_hosts(demo_scenario: Scenario, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(demo_scenario, host=host)


def test_localhost_and_url(demo_scenario: Scenario) -> None:
    server = SimulatorServer(demo_scenario, host="localhost")
    try:
        assert server.url == f"http://localhost:{server.port}"
        assert server.port > 0
    finally:
        server.stop()
    with pytest.raises(RuntimeError, match="already started"), SimulatorServer(demo_scenario) as started:
        started.start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_until_signalled(sig: signal.Signals) -> None:
    miners = len(load_scenario(SCENARIOS / "demo.toml").miners)
    port = free_port_block(1 + miners)
    code = (
        "from pathlib import Path; from simulator.server import run; "
        f"run(Path({str(SCENARIOS / 'demo.toml')!r}), '127.0.0.1', {port})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"http://127.0.0.1:{port}" in line
        assert f"{miners} miners on 127.0.0.1:{port + 1}-{port + miners}" in process.stderr.readline()
        response = requests.get(f"http://127.0.0.1:{port}/v1/info/9b2d4c61-7a8e-4f10-b3c5-2d9e8f7a6b02", timeout=5)
        assert response.json()["username"] == "tverpower"
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # the port is free again
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        except requests.ConnectionError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("simulator still answering after the signal")
