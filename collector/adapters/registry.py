"""The explicit registry of sources: kind -> class, for pools, miners and chains. Nothing registers itself."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from collector.adapters.base import Source
from collector.ratelimit import RateBudget

if TYPE_CHECKING:
    from collector.config import RateBudgetOverride
    from collector.devices.cgminer.adapter import CgminerSource

HttpSourceClass = type[Source[Any]]
DeviceSourceClass = type["CgminerSource"]


class SourceRegistry(Mapping[str, HttpSourceClass]):
    """Pool sources by kind (the mapping itself), plus `devices` (miner APIs) and `networks` (chain stats)."""

    def __init__(
        self,
        pools: Mapping[str, HttpSourceClass],
        *,
        devices: Mapping[str, DeviceSourceClass] | None = None,
        networks: Mapping[str, HttpSourceClass] | None = None,
    ) -> None:
        for sources in (pools, devices or {}, networks or {}):
            for kind, source in sources.items():
                if source.kind != kind:
                    raise ValueError(f"source {source.__name__} has kind {source.kind!r}, registered as {kind!r}")
        self._sources = dict(pools)
        self.devices: Mapping[str, DeviceSourceClass] = MappingProxyType(dict(devices or {}))
        self.networks: Mapping[str, HttpSourceClass] = MappingProxyType(dict(networks or {}))

    def __getitem__(self, kind: str) -> HttpSourceClass:
        return self._sources[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def budget_for(self, kind: str, override: RateBudgetOverride | None) -> RateBudget:
        """The pool's (or chain API's) documented budget, or the configured override at the same scope."""
        default = (self._sources.get(kind) or self.networks[kind]).default_budget
        if override is None:
            return default
        return RateBudget(per_minute=override.requests_per_minute, burst=override.burst, scope=default.scope)


def source_registry() -> SourceRegistry:
    """Every source minewatch ships."""
    from collector.devices.cgminer.adapter import CgminerSource
    from collector.network.mempool.adapter import MempoolSource
    from collector.pools.antpool.adapter import AntpoolSource
    from collector.pools.braiins.adapter import BraiinsSource
    from collector.pools.emcd.adapter import EmcdSource
    from collector.pools.f2pool.adapter import F2PoolSource
    from collector.pools.viabtc.adapter import ViabtcSource

    return SourceRegistry(
        {
            AntpoolSource.kind: AntpoolSource,
            BraiinsSource.kind: BraiinsSource,
            EmcdSource.kind: EmcdSource,
            F2PoolSource.kind: F2PoolSource,
            ViabtcSource.kind: ViabtcSource,
        },
        devices={CgminerSource.kind: CgminerSource},
        networks={MempoolSource.kind: MempoolSource},
    )
