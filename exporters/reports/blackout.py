"""The intervals of a month during which a site was under a blackout window or a regional ban (pure).

The restrictions themselves come from `collector.compliance.calendar.site_restrictions`, the function the
`site` points and the blackout rule use, so the report and the alerts can never disagree about a window.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from collector.compliance.calendar import site_restrictions
from collector.config import Ban, Group, Site
from exporters.reports.period import MonthWindow

Interval = tuple[datetime, datetime]


def _midnights(window: MonthWindow, zone: str) -> list[datetime]:
    tz = ZoneInfo(zone)
    day: date = window.start.astimezone(tz).date()
    last = window.end.astimezone(tz).date()
    found = []
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        if window.start < midnight < window.end:
            found.append(midnight)
        day += timedelta(days=1)
    return found


def restricted_intervals(group: Group, site: Site, bans: list[Ban], window: MonthWindow) -> list[Interval]:
    """Merged, ordered UTC intervals inside `window` where the site was blacked out or banned.

    Restrictions can only change at a local midnight of the site (bans go by the site's day), a midnight of the
    group's zone (the permit in force goes by the group's day) or a bound of one of the permit's own windows;
    judging each span between consecutive such instants at its start is therefore exact.
    """
    cuts = {window.start, window.end}
    cuts.update(_midnights(window, site.timezone))
    cuts.update(_midnights(window, group.spec.timezone))
    site_zone = ZoneInfo(site.timezone)
    for permit in group.spec.permits:
        for own in permit.blackouts:
            if own.sites and site.id not in own.sites:
                continue
            for bound in (own.start, own.end):
                moment = bound.replace(tzinfo=site_zone)
                if window.start < moment < window.end:
                    cuts.add(moment)
    ordered = sorted(cuts)
    merged: list[Interval] = []
    for begin, finish in pairwise(ordered):
        restriction = site_restrictions(site, bans, group.permit_at(begin), begin)
        if not (restriction.blackout or restriction.banned):
            continue
        if merged and merged[-1][1] == begin:
            merged[-1] = (merged[-1][0], finish)
        else:
            merged.append((begin, finish))
    return merged
