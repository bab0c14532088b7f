"""What the runner polls: a pool account, a miner or a chain feed, each with its source and its transport.

A target knows its identity in `source_health`, its interval and timeout, how to start a poll's deadline on
its transport, and how its snapshot becomes line protocol; the runner does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from collector.adapters.base import Source
from collector.adapters.http import HttpClient
from collector.addresses import normalize_address
from collector.config import Group, PoolAccount, declared_addresses
from collector.devices.cgminer.adapter import CgminerSource
from collector.devices.cgminer.client import MinerRpc
from collector.models import DeviceSnapshot, NetworkSnapshot, PoolAccountSnapshot, SectionIssue
from collector.sinks.lineprotocol import LineProtocolError
from collector.sinks.points import DeviceTags, PoolAccountTags, device_lines, network_lines, pool_account_lines


class Snapshot(Protocol):
    """What every source's snapshot has: its sections that failed."""

    @property
    def issues(self) -> tuple[SectionIssue, ...]: ...


class Target(Protocol):
    """One thing to poll (a pool account, a miner, a chain), with its identity in `source_health`."""

    @property
    def key(self) -> str:
        """Unique in the process: "<group>/<kind>/<target>"."""
        ...

    @property
    def health_tags(self) -> tuple[str, str, str]:
        """(group_id, kind, target) of its `source_health` points; group_id "" for targets of no group."""
        ...

    @property
    def interval_s(self) -> float: ...

    @property
    def timeout_s(self) -> float: ...

    def start_poll(self) -> None:
        """Start the poll's deadline (`timeout_s` from now) on the target's transport."""
        ...

    def collect(self) -> Any:
        """One snapshot (with `issues`), or a SourceError."""
        ...

    def lines(self, snapshot: Any) -> Sequence[str]:
        """The snapshot's points as line protocol."""
        ...

    def rollback(self) -> None:
        """Undo the history bookmarks the last `collect()` moved: its snapshot could not become points."""
        ...


@dataclass(frozen=True)
class PoolTarget:
    """One pool account ready to poll: its group, its source instance and its HTTP client."""

    group: Group
    account: PoolAccount
    source: Source[PoolAccountSnapshot]
    http: HttpClient
    interval_s: float
    timeout_s: float

    @property
    def key(self) -> str:
        return f"{self.group.id}/{self.account.kind}/{self.account.id}"

    @property
    def health_tags(self) -> tuple[str, str, str]:
        return (self.account.group_id, self.account.kind, self.account.id)

    def start_poll(self) -> None:
        self.http.start_poll(self.timeout_s)

    def collect(self) -> PoolAccountSnapshot:
        return self.source.collect()

    def rollback(self) -> None:
        # Sources that read dated histories (or backfill) move bookmarks in `collect()` and can undo them.
        undo = getattr(self.source, "rollback", None)
        if callable(undo):
            undo()

    def lines(self, snapshot: PoolAccountSnapshot) -> list[str]:
        group = self.group

        def is_declared(address: str, at: int) -> bool:
            try:
                moment = datetime.fromtimestamp(at, UTC)
            except (OverflowError, OSError, ValueError):
                raise LineProtocolError(f"time {at} is not a date") from None
            return normalize_address(address) in declared_addresses(group.permit_at(moment))

        account = self.account
        tags = PoolAccountTags(group_id=account.group_id, pool=account.kind, account=account.id, coin=account.coin)
        return list(pool_account_lines(snapshot, tags, is_declared))


@dataclass(frozen=True)
class DeviceTarget:
    """One miner of a fleet: its source instance and its RPC client."""

    group_id: str
    site: str
    fleet: str
    device: str
    source: CgminerSource
    rpc: MinerRpc
    interval_s: float
    timeout_s: float

    @property
    def key(self) -> str:
        return f"{self.group_id}/{self.source.kind}/{self.device}"

    @property
    def health_tags(self) -> tuple[str, str, str]:
        return (self.group_id, self.source.kind, self.device)

    def start_poll(self) -> None:
        self.rpc.start_poll(self.timeout_s)

    def collect(self) -> DeviceSnapshot:
        return self.source.collect()

    def rollback(self) -> None:
        pass  # a miner's reading keeps no bookmarks

    def lines(self, snapshot: DeviceSnapshot) -> list[str]:
        return list(device_lines(snapshot, DeviceTags(self.group_id, self.site, self.device)))


@dataclass(frozen=True)
class NetworkTarget:
    """A chain's network statistics (no group): difficulty, network hashrate, block reward."""

    kind: str
    coin: str
    source: Source[NetworkSnapshot]
    http: HttpClient
    interval_s: float
    timeout_s: float

    @property
    def key(self) -> str:
        return f"network/{self.kind}/{self.coin}"

    @property
    def health_tags(self) -> tuple[str, str, str]:
        return ("", self.kind, self.coin)

    def start_poll(self) -> None:
        self.http.start_poll(self.timeout_s)

    def collect(self) -> NetworkSnapshot:
        return self.source.collect()

    def rollback(self) -> None:
        pass  # a chain feed keeps no bookmarks

    def lines(self, snapshot: NetworkSnapshot) -> list[str]:
        return list(network_lines(snapshot))
