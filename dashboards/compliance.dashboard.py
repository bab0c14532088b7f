"""Compliance: violations across the selected groups over time, by rule, with when each alert opened and closed."""

from __future__ import annotations

from collector.sinks.points import COMPLIANCE, COMPLIANCE_RULE, VIOLATION
from dashboards.influxql import GROUP_MATCH, INTERVAL, TIME_FILTER, WHERE
from dashboards.panels import (
    OK,
    UNKNOWN,
    WARNING,
    at,
    by_name,
    cell,
    stat,
    state_timeline,
    steps,
    table,
    target,
    time_series,
    value_mapping,
)
from dashboards.panels import VIOLATION as VIOLATION_COLOUR
from dashboards.panels import dashboard as minewatch_dashboard

ALERT_STATES = value_mapping(
    {
        "pending": ("pending", WARNING),
        "firing": ("firing", VIOLATION_COLOUR),
        "resolved": ("resolved", OK),
        "excused": ("excused", UNKNOWN),
    }
)

groups_in_violation = stat(
    "Groups in violation",
    "Selected groups whose last compliance round found at least one permit rule violated.",
    [
        target(
            'SELECT count("status") FROM ('
            f'SELECT last("status_code") AS "status" FROM "{COMPLIANCE}" {WHERE} GROUP BY "group_id"'
            f') WHERE {TIME_FILTER} AND "status" = 2',
            "A",
        )
    ],
    at(0, 0, 6, 6),
    thresholds=steps(OK, (1, VIOLATION_COLOUR)),
    no_value="0",  # no group with status 2 returns no row: that is zero groups, not missing data
)

alerts_opened = stat(
    "Alerts opened",
    "Alerts that started firing in the time range, across the selected groups.",
    [target(f'SELECT count("state") FROM "{VIOLATION}" {WHERE} AND "state" = \'firing\'', "A")],
    at(6, 0, 6, 6),
    thresholds=steps(OK, (1, VIOLATION_COLOUR)),
    no_value="0",  # no firing transition in the range returns no row: zero alerts opened
)

violations_by_rule = time_series(
    "Violations by rule",
    "How many subjects (pools, sites, addresses...) violate each rule, summed over the selected groups, at "
    "each compliance round.",
    [
        target(
            'SELECT sum("violations") FROM ('
            f'SELECT max("violations") AS "violations" FROM "{COMPLIANCE_RULE}" {WHERE} '
            f'GROUP BY {INTERVAL}, "group_id", "rule"'
            f') WHERE {TIME_FILTER} AND {GROUP_MATCH} GROUP BY {INTERVAL}, "rule" fill(none)',
            "A",
            alias="$tag_rule",
        )
    ],
    at(12, 0, 12, 12),
    unit="none",
    bars=True,
    stacked=True,
)

alert_timeline = state_timeline(
    "Alerts by group and rule",
    "Each alert's transitions: it opens pending, fires after the rule's hold time and closes when resolved.",
    [
        target(
            f'SELECT "state" FROM "{VIOLATION}" {WHERE} GROUP BY "group_id", "rule"',
            "A",
            alias="$tag_group_id · $tag_rule",
        )
    ],
    at(0, 6, 12, 6),
    mappings=[ALERT_STATES],
)

transitions = table(
    "Alert transitions",
    "Every transition, newest first: the time an alert opened (pending, firing) or closed (resolved, excused), "
    "its subject, the measured value against the threshold, and the evidence.",
    [
        target(
            'SELECT "group_id", "rule", "severity", "subject", "state", "value", "threshold", "message" '
            f'FROM "{VIOLATION}" {WHERE} ORDER BY time DESC',
            "A",
            table=True,
        )
    ],
    at(0, 12, 24, 12),
    overrides=[
        by_name("Time", unit="dateTimeAsIso"),
        by_name("state", mappings=[ALERT_STATES], custom__cellOptions=cell("color-background")),
    ],
)

dashboard = minewatch_dashboard(
    "minewatch-compliance",
    "minewatch · Compliance",
    "Violations across groups over time, by rule, with the open and close time of every alert.",
    [groups_in_violation, alerts_opened, violations_by_rule, alert_timeline, transitions],
    multi_group=True,
)
