"""The `permit` and `site` points of a group at a moment: what it may do and which restrictions apply."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.compliance.calendar import site_restrictions
from collector.config import Ban, Group
from collector.sinks.points import permit_line, site_line

NO_PERMIT = "none"


def group_fact_lines(group: Group, bans: list[Ban], at: int) -> list[str]:
    """One `permit` point for the version in force (or "none") and one `site` point per site."""
    moment = datetime.fromtimestamp(at, UTC)
    permit = group.permit_at(moment)
    valid = permit is not None and group.spec.register_status == "active"
    lines = [
        permit_line(
            group.id,
            permit.version if permit else NO_PERMIT,
            max_hashrate_hs=permit.max_hashrate if permit else None,
            max_power_w=permit.max_power if permit else None,
            valid=valid,
            at=at,
        )
    ]
    for site in group.spec.sites:
        restrictions = site_restrictions(site, bans, permit, moment)
        lines.append(
            site_line(
                group.id,
                site.id,
                site.region,
                capacity_w=site.capacity,
                blackout=restrictions.blackout,
                banned=restrictions.banned,
                at=at,
            )
        )
    return lines
