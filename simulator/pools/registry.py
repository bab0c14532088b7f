"""Every simulated pool API, in one explicit list: the server asks each in turn whether a path is its own."""

from __future__ import annotations

from simulator.pools.antpool import AntpoolApi
from simulator.pools.base import PoolApi
from simulator.pools.braiins import BraiinsApi
from simulator.pools.emcd import EmcdApi
from simulator.pools.f2pool import F2PoolApi
from simulator.pools.viabtc import ViabtcApi
from simulator.scenario import Scenario


def pool_apis(scenario: Scenario) -> tuple[PoolApi, ...]:
    """One renderer per simulated pool API, each serving that pool's accounts of `scenario`."""
    return (
        AntpoolApi(scenario),
        BraiinsApi(scenario),
        EmcdApi(scenario),
        F2PoolApi(scenario),
        ViabtcApi(scenario),
    )
