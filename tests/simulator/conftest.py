"""Shared fixtures for the simulator tests: scenarios, a fixed clock and servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_support import FEATURES_TOML, FIXED_T, SCENARIOS

from simulator.scenario import Scenario, load_scenario
from simulator.server import SimulatorServer


@pytest.fixture(scope="session")
def demo_scenario() -> Scenario:
    """The shipped demo scenario."""
    return load_scenario(SCENARIOS / "demo.toml")


@pytest.fixture(scope="session")
def features_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The all-features scenario above, loaded through a real file."""
    path = tmp_path_factory.mktemp("scenario") / "features.toml"
    path.write_text(FEATURES_TOML)
    return load_scenario(path)


@pytest.fixture(scope="module")
def demo_server(demo_scenario: Scenario) -> Iterator[SimulatorServer]:
    """The demo scenario served at FIXED_T."""
    with SimulatorServer(demo_scenario, clock=lambda: FIXED_T) as server:
        yield server


@pytest.fixture(scope="module")
def features_server(features_scenario: Scenario) -> Iterator[SimulatorServer]:
    """The features scenario served at FIXED_T."""
    with SimulatorServer(features_scenario, clock=lambda: FIXED_T) as server:
        yield server
