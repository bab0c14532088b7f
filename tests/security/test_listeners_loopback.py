"""Every listener minewatch, its simulator and the test servers open binds 127.0.0.1 unless told otherwise.

Where it can, each check reads the socket actually bound (the server object's address, or `ss -ltnp` for a
child process's pid), not only the default in the code.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from collector.config import ExporterConfig
from exporters.prometheus.inputs import CollectorInputs
from exporters.prometheus.server import start_exporter
from simulator.local_servers import (
    AlertmanagerServer,
    InfluxdServer,
    MissingBinary,
    PrometheusServer,
    ServerFailed,
    VictoriaMetricsServer,
)
from simulator.miners.fleet import MinerFleet
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "simulator" / "scenarios" / "demo.toml"
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|::1):\d+$")


def listening_addresses(pid: int) -> list[str]:
    """The local addresses of the TCP sockets `pid` listens on (`ss -ltnp`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=30).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def assert_loopback_only(pid: int | None, what: str, at_least: int = 1) -> None:
    assert pid is not None, f"{what} is not running"
    addresses = listening_addresses(pid)
    assert len(addresses) >= at_least, f"{what} (pid {pid}) listens on {addresses}"
    outside = [address for address in addresses if not LOOPBACK.match(address)]
    assert outside == [], f"{what} listens beyond loopback: {outside}"


def test_the_exporter_defaults_to_loopback() -> None:
    assert str(ExporterConfig().listen_address) == "127.0.0.1"
    # No scrape happens, so the collector inputs are never read.
    with start_exporter(cast(CollectorInputs, object()), port=0) as server:
        assert server.address == "127.0.0.1"
        assert server._server.socket.getsockname()[0] == "127.0.0.1"


def test_the_simulator_and_its_miners_default_to_loopback() -> None:
    scenario = load_scenario(SCENARIO)
    with SimulatorServer(scenario, port=0) as simulator:
        assert simulator._httpd.socket.getsockname()[0] == "127.0.0.1"
        assert simulator.url.startswith("http://127.0.0.1:")
    with MinerFleet(scenario) as fleet:
        assert {host for host, _ in fleet.addresses().values()} == {"127.0.0.1"}
        # The sockets really bound: this process listens on loopback only, miners included (a miner the
        # scenario has switched off listens on nothing).
        mine = listening_addresses(os.getpid())
        assert [address for address in mine if not LOOPBACK.match(address)] == []
        assert any(f"127.0.0.1:{port}" in mine for _, port in fleet.addresses().values())
    for build in (lambda: SimulatorServer(scenario, host="0.0.0.0"), lambda: MinerFleet(scenario, host="0.0.0.0")):
        with pytest.raises(ValueError, match="loopback"):
            build()


def test_minewatch_simulate_listens_on_loopback_by_default() -> None:
    from collector.cli import build_parser

    args = build_parser().parse_args(["simulate"])
    assert args.listen.rpartition(":")[0] == "127.0.0.1"
    assert args.allow_external is False


def test_influxd_http_and_rpc_listen_on_loopback(tmp_path: Path) -> None:
    server = InfluxdServer(tmp_path)
    config = server.config_text()
    binds = re.findall(r'bind-address = "([^"]*)"', config)
    assert binds, config
    assert all(bind.startswith("127.0.0.1:") for bind in binds), binds
    try:
        server.start()
    except (MissingBinary, ServerFailed) as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        assert_loopback_only(server.pid, "influxd", at_least=2)  # HTTP and RPC
    finally:
        server.stop()


@pytest.fixture
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "prometheus":
        server: Any = PrometheusServer(tmp_path, scrape_targets={})
    elif kind == "alertmanager":
        server = AlertmanagerServer(tmp_path, webhook_url="http://127.0.0.1:9/")
    else:
        server = VictoriaMetricsServer(tmp_path)
    try:
        server.start()
    except (MissingBinary, ServerFailed) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("started", ["prometheus", "alertmanager", "victoria-metrics"], indirect=True)
def test_local_test_servers_listen_on_loopback_only(started: Any) -> None:
    command = " ".join(started.command())
    assert "127.0.0.1:" in command
    assert_loopback_only(started.pid, type(started).__name__)


def test_docker_compose_publishes_ports_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    published = [
        (name, str(port)) for name, service in compose["services"].items() for port in service.get("ports", [])
    ]
    assert published, "docker-compose.yml publishes no port"
    outside = [(name, port) for name, port in published if not port.startswith("127.0.0.1:")]
    assert outside == []


def test_no_source_binds_all_interfaces_by_default() -> None:
    """No module defaults a listener to 0.0.0.0 / '' / '::' (explicit opt-ins are checked by the tests above)."""
    pattern = re.compile(r"""(?:host|address|listen)\w*\s*(?::\s*str\s*)?=\s*["'](?:0\.0\.0\.0|::|)["']""")
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for package in ("collector", "exporters", "simulator")
        for path in sorted((REPO / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
