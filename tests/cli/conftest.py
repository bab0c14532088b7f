"""Fixtures for the CLI tests: a CLI runner, the demo scenario served on a free port, config copies, databases."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from cli_support import DEMO_SCENARIO, CliRunner, MakeConfig, NewDatabase, unique_name
from demo_config import DemoConfig, copy_demo_config

from collector.errors import StorageError
from collector.sinks.influx import V1Transport, quote_ident
from simulator.local_servers import InfluxdServer, free_port
from simulator.miners.fleet import MinerFleet
from simulator.scenario import Scenario, load_scenario
from simulator.server import SimulatorServer


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CliRunner]:
    """Runs `minewatch`; whatever a test leaves running is stopped afterwards."""
    with CliRunner(tmp_path) as runner:
        yield runner


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario(DEMO_SCENARIO)


@pytest.fixture
def simulator(scenario: Scenario) -> Iterator[SimulatorServer]:
    """The demo scenario on a free loopback port, on the wall clock (the CLI polls in real time)."""
    with SimulatorServer(scenario, port=0) as server:
        yield server


@pytest.fixture
def fleet(scenario: Scenario) -> Iterator[MinerFleet]:
    """The demo scenario's miners on free loopback ports, on the wall clock."""
    with MinerFleet(scenario) as miners:
        yield miners


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_config(tmp_path: Path, simulator: SimulatorServer, closed_url: str) -> MakeConfig:
    """`make_config(**overrides)`: the demo config pointed at this test's simulator.

    By default InfluxDB is a closed port (so `--print` runs prove they never need it); pass `influx_url` and
    `database` for runs that write.
    """

    def make(
        *,
        influx_url: str = closed_url,
        database: str = "unused",
        influx: Mapping[str, str] | None = None,
        schedule: Mapping[str, str] | None = None,
        exporter: Mapping[str, str] | None = None,
        extra: str = "",
        miners: Mapping[str, tuple[str, int]] | None = None,
        network: bool = False,
    ) -> DemoConfig:
        dest = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}"
        return copy_demo_config(
            dest,
            simulator_url=simulator.url,
            influx_url=influx_url,
            database=database,
            influx=influx,
            schedule=schedule,
            exporter=exporter,
            extra=extra,
            miners=miners,
            network=network,
        )

    return make


@pytest.fixture
def new_database(influxd: InfluxdServer) -> Iterator[NewDatabase]:
    """`new_database()`: a query client for a database name that does not exist yet; dropped afterwards."""
    created: list[V1Transport] = []

    def new() -> V1Transport:
        transport = V1Transport(influxd.url, unique_name("t_cli"), timeout_s=5.0)
        created.append(transport)
        return transport

    yield new
    for transport in created:
        try:
            transport.query(f"DROP DATABASE {quote_ident(transport.database)}", epoch=None)
        except StorageError as exc:  # pragma: no cover - only when influxd is broken
            print(f"could not drop {transport.database}: {exc}")
        transport.close()
