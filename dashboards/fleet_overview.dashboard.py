"""Fleet overview: is every group inside its permit, how close is it to its quota, and which sources are blind."""

from __future__ import annotations

from collector.sinks.points import COMPLIANCE, COMPLIANCE_RULE, SOURCE_HEALTH
from dashboards.influxql import GROUP_MATCH, TIME_FILTER, WHERE
from dashboards.panels import (
    OK,
    STATUS_MAPPING,
    VIOLATION,
    WARNING,
    at,
    bar_gauge,
    by_name,
    cell,
    hide_columns,
    steps,
    table,
    target,
    value_mapping,
)
from dashboards.panels import dashboard as minewatch_dashboard

DATA_AGE = "data age"
STATUS_COLUMN = by_name(
    "status", mappings=[value_mapping(STATUS_MAPPING)], custom__cellOptions=cell("color-background")
)

group_status = table(
    "Compliance status by group",
    "Each group's last compliance round: its worst permit rule (ok, unknown = data missing or stale, violation) "
    "and how many rules are in violation or unknown. Worst first.",
    [
        target(
            f'SELECT last("status_code") AS "status", last("violations") AS "violations", '
            f'last("unknowns") AS "unknowns" FROM "{COMPLIANCE}" {WHERE} GROUP BY "group_id"',
            "A",
            table=True,
        )
    ],
    at(0, 0, 10, 9),
    overrides=[STATUS_COLUMN],
    sort_by=("status", True),
    transformations=[hide_columns("Time")],
)

rule_status = table(
    "Rule status by group",
    "Every permit rule of every group at the last round, worst rule first: which rule makes a group red.",
    [
        target(
            f'SELECT last("status_code") AS "status", last("violations") AS "violations", '
            f'last("unknowns") AS "unknowns" FROM "{COMPLIANCE_RULE}" {WHERE} '
            f'GROUP BY "group_id", "rule", "severity"',
            "A",
            table=True,
        )
    ],
    at(10, 0, 14, 9),
    overrides=[STATUS_COLUMN],
    sort_by=("status", True),
    transformations=[hide_columns("Time")],
)

quota_use = bar_gauge(
    "Hashrate against quota",
    "Pool-reported hashrate as a share of the permitted quota, per group (last round). Amber from 70 %, red "
    "from 90 %; above 100 % the group mines beyond its permit.",
    [
        target(
            f'SELECT last("quota_utilisation") FROM "{COMPLIANCE}" {WHERE} GROUP BY "group_id"',
            "A",
            alias="$tag_group_id",
        )
    ],
    at(0, 9, 10, 9),
    unit="percentunit",
    thresholds=steps(OK, (0.7, WARNING), (0.9, VIOLATION)),
    minimum=0.0,
    maximum=1.2,
)

stale_sources = table(
    "Stale sources",
    "Sources whose last poll failed or whose data is too old (stale = 1): the rules cannot judge what they "
    "cannot see, so these groups show unknown rather than ok.",
    [
        target(
            'SELECT "stale", "data_age_s", "last_error" FROM ('
            f'SELECT last("stale") AS "stale", last("data_age_s") AS "data_age_s", last("error_kind") AS "last_error" '
            f'FROM "{SOURCE_HEALTH}" {WHERE} GROUP BY "group_id", "kind", "target"'
            f') WHERE {TIME_FILTER} AND "stale" = 1 AND {GROUP_MATCH} GROUP BY "group_id", "kind", "target"',
            "A",
            table=True,
        )
    ],
    at(10, 9, 14, 9),
    overrides=[
        by_name("data_age_s", unit="s", displayName=DATA_AGE),
        by_name("stale", mappings=[value_mapping({1: ("stale", VIOLATION)})], custom__cellOptions=cell("color-text")),
    ],
    sort_by=(DATA_AGE, True),  # a table sorts by the displayed name, after the override renamed the column
    transformations=[hide_columns("Time")],
)

dashboard = minewatch_dashboard(
    "minewatch-fleet-overview",
    "minewatch · Fleet overview",
    "Every group against its permit: compliance status, quota use and blind sources.",
    [group_status, rule_status, quota_use, stale_sources],
    multi_group=True,
)
