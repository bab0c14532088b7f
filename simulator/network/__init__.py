"""Simulated public network APIs (no account, no credential): one explicit list, asked before the pools."""

from __future__ import annotations

from typing import Protocol

from simulator.network.mempool import MempoolApi
from simulator.pools.base import Request, Response, Route
from simulator.scenario import Fault, Scenario


class NetworkApi(Protocol):
    """One unauthenticated API: claims its paths, renders them, has its own fault schedule.

    `name` keys its faults and request counts ("<name>:network") and selects its JSON shape for the
    `wrong_types` / `missing_fields` faults (`simulator.mutations.SHAPES`).
    """

    @property
    def name(self) -> str:
        """Short API name, e.g. "mempool"."""
        ...

    def route(self, request: Request) -> Route | None:
        """The endpoint for `request` (its `account` is always None), or None if the path is not this API's."""
        ...

    def render(self, route: Route, t: int) -> Response:
        """The endpoint's response at unix time `t`."""
        ...

    def auth_error(self) -> Response:
        """What the API answers a client it refuses (there is no credential: a ban)."""
        ...

    def rate_limited(self) -> Response:
        """What the API answers when the caller is over its request budget."""
        ...

    def fault_at(self, t: float) -> Fault | None:
        """The fault the scenario schedules for this API at unix time `t`, if any."""
        ...


def network_apis(scenario: Scenario) -> tuple[NetworkApi, ...]:
    """Every network API the scenario describes: mempool.space when it has a `[network]` table."""
    if scenario.network is None:
        return ()
    return (MempoolApi(scenario, scenario.network),)
