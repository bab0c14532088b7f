"""The explicit registry of sources: kind -> class. Nothing registers itself at import time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from collector.adapters.base import Source
from collector.models import PoolAccountSnapshot
from collector.ratelimit import RateBudget

if TYPE_CHECKING:
    from collector.config import RateBudgetOverride

PoolSourceClass = type[Source[PoolAccountSnapshot]]


class SourceRegistry(Mapping[str, PoolSourceClass]):
    """An immutable mapping of source kind to source class, with each class's rate budget."""

    def __init__(self, sources: Mapping[str, PoolSourceClass]) -> None:
        for kind, source in sources.items():
            if source.kind != kind:
                raise ValueError(f"source {source.__name__} has kind {source.kind!r}, registered as {kind!r}")
        self._sources = dict(sources)

    def __getitem__(self, kind: str) -> PoolSourceClass:
        return self._sources[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def budget_for(self, kind: str, override: RateBudgetOverride | None) -> RateBudget:
        """The pool's documented budget, or the configured override at the same scope."""
        default = self._sources[kind].default_budget
        if override is None:
            return default
        return RateBudget(per_minute=override.requests_per_minute, burst=override.burst, scope=default.scope)


def pool_sources() -> SourceRegistry:
    """Every pool source minewatch ships."""
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
        }
    )
