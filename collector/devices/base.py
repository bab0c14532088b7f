"""What a device source is given: its miner's RPC client, the clock, a logger and the miner's name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from collector.devices.cgminer.client import MinerRpc


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """The injected dependencies of one device source instance (one miner)."""

    rpc: MinerRpc
    clock: Callable[[], float]
    log: logging.Logger
    target: str
