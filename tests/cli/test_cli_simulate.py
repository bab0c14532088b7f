"""`minewatch simulate`: serves the scenario on loopback until SIGTERM; refuses other addresses and bad scenarios."""

from __future__ import annotations

from pathlib import Path

import requests
from cli_support import DEMO_SCENARIO, CliRunner, wait_for

from simulator.local_servers import free_port, free_port_block
from simulator.scenario import Scenario

PROFILE = "/accounts/profile/json/btc/"


def test_simulate_serves_the_scenario_until_sigterm(cli: CliRunner, scenario: Scenario) -> None:
    port = free_port_block(1 + len(scenario.miners))
    server = cli.start("simulate", "--scenario", str(DEMO_SCENARIO), "--listen", f"127.0.0.1:{port}")
    token = scenario.account("braiins", "sibgaz_main").secret

    def profile(token: str) -> requests.Response | None:
        assert server.is_running(), f"simulate exited early:\n{server.err}"
        try:
            return requests.get(f"http://127.0.0.1:{port}{PROFILE}", headers={"Pool-Auth-Token": token}, timeout=2)
        except requests.ConnectionError:
            return None  # not listening yet

    answer = wait_for("the simulator to answer", lambda: profile(token), timeout_s=15, interval_s=0.1)
    refused = profile("not-a-demo-token")
    server.terminate()
    run = server.wait(timeout_s=10)

    assert answer.status_code == 200
    assert answer.json()["username"] == "sibgaz_main"
    assert refused is not None
    assert refused.status_code == 403
    assert run.code == 0, str(run)
    assert "Traceback" not in run.err
    assert token not in run.err


def test_simulate_refuses_a_non_loopback_address_without_allow_external(cli: CliRunner) -> None:
    run = cli.run("simulate", "--scenario", str(DEMO_SCENARIO), "--listen", "0.0.0.0:1234", timeout_s=20)

    assert run.code == 2, str(run)
    assert "0.0.0.0" in run.err
    assert "Traceback" not in run.err


def test_simulate_names_the_file_and_key_of_a_broken_scenario(cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    text = DEMO_SCENARIO.read_text(encoding="utf-8")
    assert text.count("nominal_ths = 201.0") == 1
    broken.write_text(text.replace("nominal_ths = 201.0", 'nominal_ths = "201"'), encoding="utf-8")

    run = cli.run("simulate", "--scenario", str(broken), "--listen", f"127.0.0.1:{free_port()}", timeout_s=20)

    assert run.code == 2, str(run)
    assert "broken.toml" in run.err
    assert "accounts[0].workers[0].nominal_ths" in run.err
    assert "Traceback" not in run.err
