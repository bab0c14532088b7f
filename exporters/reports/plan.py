"""Which rows a group's report has and what each row draws on, from the config alone (pure).

A row is group × site × coin. Pool-side columns (production, payouts, pools) come from the pool accounts that
name the row's site in the config; accounts without a site make the group-level row (`site_id` None), whose
month is bounded in the group's time zone. Site-side columns (energy, power, devices, blackout) belong to a
site, not to a coin: they go on one row per site, the row of the site's primary coin (the first coin of the
permit in force at the start of the month when the site mines it, else the site's first coin in order).
A site with no pool account of its own still gets a row, for the primary coin, so its energy is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.config import Group, PermitVersion, PoolAccount, Site
from exporters.reports.period import Month, MonthWindow


@dataclass(frozen=True, slots=True)
class SourceKey:
    """A polled source as `source_health` tags it: (kind, target)."""

    kind: str
    target: str


@dataclass(frozen=True)
class RowPlan:
    """One report row before any data: identity, month window, and the sources its figures come from."""

    group: Group
    site: Site | None
    coin: str
    zone: str
    window: MonthWindow
    accounts: tuple[PoolAccount, ...]
    carries_site: bool
    miners: tuple[str, ...]
    permits: tuple[PermitVersion, ...]

    @property
    def group_id(self) -> str:
        return self.group.id

    @property
    def site_id(self) -> str | None:
        return self.site.id if self.site is not None else None

    @property
    def sources(self) -> tuple[SourceKey, ...]:
        """The sources whose polls count toward this row's data completeness."""
        pools = tuple(SourceKey(a.kind, a.id) for a in self.accounts)
        devices = tuple(SourceKey(kind, name) for kind, name in self._miner_sources()) if self.carries_site else ()
        return pools + devices

    def _miner_sources(self) -> list[tuple[str, str]]:
        site = self.site_id
        return [
            (fleet.kind, miner.name)
            for fleet in self.group.fleets
            if fleet.site == site
            for miner in fleet.settings.addresses
        ]


def permits_in_month(group: Group, month: Month) -> tuple[PermitVersion, ...]:
    """The permit versions whose validity (inclusive days) overlaps the month, oldest first."""
    first, last = month.first_day, month.last_day
    overlapping = [
        permit
        for permit in group.spec.permits
        if permit.valid_from <= last and (permit.valid_to is None or permit.valid_to >= first)
    ]
    return tuple(sorted(overlapping, key=lambda p: p.valid_from))


def primary_coin(group: Group, month: Month) -> str:
    """The first coin of the permit in force on the month's first day (else of the earliest permit)."""
    permits = permits_in_month(group, month) or tuple(sorted(group.spec.permits, key=lambda p: p.valid_from))
    return permits[0].coins[0]


def plan_group(group: Group, month: Month) -> list[RowPlan]:
    """The rows of one group: the group-level row(s) first (only if some account has no site), then each site."""
    permits = permits_in_month(group, month)
    primary = primary_coin(group, month)
    rows: list[RowPlan] = []
    siteless = [a for a in group.accounts if a.site is None]
    for coin in sorted({a.coin for a in siteless}):
        rows.append(
            RowPlan(
                group=group,
                site=None,
                coin=coin,
                zone=group.spec.timezone,
                window=month.window(group.spec.timezone),
                accounts=tuple(a for a in siteless if a.coin == coin),
                carries_site=False,
                miners=(),
                permits=permits,
            )
        )
    for site in group.spec.sites:
        here = [a for a in group.accounts if a.site == site.id]
        coins = sorted({a.coin for a in here}) or [primary]
        carrier = primary if primary in coins else coins[0]
        miners = tuple(m.name for f in group.fleets if f.site == site.id for m in f.settings.addresses)
        for coin in coins:
            rows.append(
                RowPlan(
                    group=group,
                    site=site,
                    coin=coin,
                    zone=site.timezone,
                    window=month.window(site.timezone),
                    accounts=tuple(a for a in here if a.coin == coin),
                    carries_site=coin == carrier,
                    miners=miners if coin == carrier else (),
                    permits=permits,
                )
            )
    return rows
