"""InfluxQL text for the dashboards: Grafana's macros, the group filter, and a check of every name against CATALOGUE.

Queries are written as plain InfluxQL (they read like what Grafana's query inspector shows) with measurement
names taken from `collector.sinks.points`; `checked()` then refuses any quoted identifier that is neither a tag
or field of a measurement the query reads nor an alias the query defines. A typo therefore fails the build,
not a panel in production.
"""

from __future__ import annotations

import re

from collector.sinks.points import CATALOGUE

# Grafana's InfluxQL macros: the dashboard's time range, and the interval it computes for the panel (the
# datasource's `timeInterval`, 60 s, is its floor).
TIME_FILTER = "$timeFilter"
INTERVAL = "time($__interval)"
# The template variable every dashboard has. Grafana regex-escapes each selected value and joins several as
# `(a|b)`, so the anchored regex matches exactly the selected groups (All selects every value).
GROUP_VARIABLE = "group_id"
GROUP_MATCH = f'"group_id" =~ /^${GROUP_VARIABLE}$/'
WHERE = f"WHERE {TIME_FILTER} AND {GROUP_MATCH}"
# Network feeds (the mempool chain feed) belong to no group: their `source_health` points have no group_id tag,
# which InfluxQL compares as ''. Collector health shows them whatever groups are selected.
WHERE_OR_NETWORK = f"WHERE {TIME_FILTER} AND ({GROUP_MATCH} OR \"group_id\" = '')"

_FROM = re.compile(r'\bFROM\s+"([^"]+)"', re.IGNORECASE)
_ALIAS = re.compile(r'\bAS\s+"([^"]+)"', re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]+)"')


class UnknownName(ValueError):
    """A query names a measurement, tag or field that `collector.sinks.points.CATALOGUE` does not have."""


def measurements_of(query: str) -> list[str]:
    """Every measurement a query reads (subqueries included), in order of appearance."""
    return _FROM.findall(query)


def unknown_names(query: str) -> list[str]:
    """The quoted names in `query` that are not measurements, tags or fields of CATALOGUE, nor aliases it defines."""
    measurements = measurements_of(query)
    missing = [name for name in measurements if name not in CATALOGUE]
    read = {name for name in measurements if name in CATALOGUE}
    known = set(read)
    for name in read:
        known |= set(CATALOGUE[name].tags) | set(CATALOGUE[name].fields)
    known |= set(_ALIAS.findall(query))
    return missing + [name for name in _QUOTED.findall(query) if name not in known and name not in missing]


def checked(query: str) -> str:
    """`query` once every name in it is known (see the module doc); raises UnknownName otherwise."""
    unknown = unknown_names(query)
    if not measurements_of(query):
        raise UnknownName(f'no FROM "measurement" in {query!r}')
    if unknown:
        raise UnknownName(f"unknown names {unknown} in {query!r}")
    return " ".join(query.split())
