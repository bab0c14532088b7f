"""Which regional bans and blackout windows apply to a site at a moment, judged in the site's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector.config import Ban, PermitVersion, Site


@dataclass(frozen=True, slots=True)
class SiteRestrictions:
    """`banned`: a full ban covers the site; `blackout`: a seasonal ban or the permit's own window does."""

    banned: bool
    blackout: bool
    ban_ids: tuple[str, ...]


def _in_season(day: date, start: str, end: str) -> bool:
    """Whether `day` lies in the yearly window start..end (MM-DD, both inclusive), which may wrap New Year."""
    key = day.strftime("%m-%d")
    return start <= key <= end if start <= end else key >= start or key <= end


def _covers(ban: Ban, site: Site, day: date) -> bool:
    if ban.status != "in_force" or site.region not in ban.regions:
        return False
    if ban.municipal_only and not (site.oktmo and any(site.oktmo.startswith(code) for code in ban.oktmo)):
        return False
    if day < ban.valid_from or (ban.valid_to is not None and day > ban.valid_to):
        return False
    if ban.kind == "seasonal":
        return _in_season(day, ban.season_start or "", ban.season_end or "")
    return True


def site_restrictions(site: Site, bans: list[Ban], permit: PermitVersion | None, at: datetime) -> SiteRestrictions:
    """The bans and windows in force for `site` at `at` (an aware datetime)."""
    local = at.astimezone(ZoneInfo(site.timezone))
    day = local.date()
    active = [ban for ban in bans if _covers(ban, site, day)]
    banned = any(ban.kind == "full" for ban in active)
    seasonal = any(ban.kind == "seasonal" for ban in active)
    own_window = permit is not None and any(
        (not window.sites or site.id in window.sites) and _local(window.start, site) <= local < _local(window.end, site)
        for window in permit.blackouts
    )
    return SiteRestrictions(banned=banned, blackout=seasonal or own_window, ban_ids=tuple(b.id for b in active))


def _local(moment: datetime, site: Site) -> datetime:
    """A window bound written without an offset is the site's local time."""
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(site.timezone))
