"""Collector health: does every source answer, how fast, how fresh is its data, and how hard do pools throttle us."""

from __future__ import annotations

from collector.errors import RateLimited
from collector.runner import BACKOFF
from collector.sinks.points import SOURCE_HEALTH
from dashboards.influxql import INTERVAL, WHERE_OR_NETWORK
from dashboards.panels import OK, VIOLATION, WARNING, at, steps, target, time_series
from dashboards.panels import dashboard as minewatch_dashboard

RATE_LIMITED = RateLimited.kind
# Group first, so the legend sorts by group; a network feed (no group) reads "mempool · BTC".
SOURCE = "$tag_group_id $tag_kind · $tag_target"
THROTTLED = f"^({RATE_LIMITED}|{BACKOFF})$"

success = time_series(
    "Poll success by source",
    "Share of each source's polls that succeeded. A gap means the source was not polled at all.",
    [
        target(
            f'SELECT mean("success") FROM "{SOURCE_HEALTH}" {WHERE_OR_NETWORK} '
            f'GROUP BY {INTERVAL}, "group_id", "kind", "target" fill(null)',
            "A",
            alias=SOURCE,
        )
    ],
    at(0, 0, 12, 9),
    unit="percentunit",
    thresholds=steps(VIOLATION, (0.5, WARNING), (0.99, OK)),
    soft_max=1.0,
)

duration = time_series(
    "Poll duration",
    "The slowest poll of each source per interval; the per-poll timeout is the ceiling.",
    [
        target(
            f'SELECT max("duration_s") FROM "{SOURCE_HEALTH}" {WHERE_OR_NETWORK} '
            f'GROUP BY {INTERVAL}, "group_id", "kind", "target" fill(null)',
            "A",
            alias=SOURCE,
        )
    ],
    at(12, 0, 12, 9),
    unit="s",
)

data_age = time_series(
    "Data age",
    "How old each source's last good data is: it grows while polls fail, and drops to 0 on a success.",
    [
        target(
            f'SELECT max("data_age_s") FROM "{SOURCE_HEALTH}" {WHERE_OR_NETWORK} '
            f'GROUP BY {INTERVAL}, "group_id", "kind", "target" fill(null)',
            "A",
            alias=SOURCE,
        )
    ],
    at(0, 9, 12, 9),
    unit="s",
)

# Per source, the polls a pool refused for its rate limit or the collector skipped while backing off. A share
# per source would need each throttled series divided by the same source's poll count: InfluxQL cannot join two
# filtered counts, and Grafana's calculateField divides one named pair of fields, not every series by its match.
# So the panel counts throttled polls per source (the share of failed polls is "Poll success by source"). The
# count is filled with 0 on purpose: it counts events, and an interval without a throttled poll is a true 0;
# a source that was never throttled in the range has no series at all.
rate_limit_pressure = time_series(
    "Rate-limit pressure",
    f"Throttled polls per source and interval: refused by the pool for its rate limit ({RATE_LIMITED}) or "
    f"skipped by the collector while it backs off ({BACKOFF}). A source is polled once per poll interval (60 s "
    "unless configured otherwise), so at a 1-minute interval a bar of 1 means every poll was throttled; at a "
    "10-minute interval, 10. Sources never throttled in the range are not listed. The share of all failed "
    "polls per source is in Poll success by source.",
    [
        target(
            f'SELECT count("success") FROM "{SOURCE_HEALTH}" {WHERE_OR_NETWORK} '
            f'AND "error_kind" =~ /{THROTTLED}/ GROUP BY {INTERVAL}, "group_id", "kind", "target" fill(0)',
            "A",
            alias=SOURCE,
        ),
    ],
    at(12, 9, 12, 9),
    unit="none",
    decimals=0,
    bars=True,
    stacked=True,
)

dashboard = minewatch_dashboard(
    "minewatch-collector-health",
    "minewatch · Collector health",
    "Per source: poll success, duration, data age and rate-limit pressure.",
    [success, duration, data_age, rate_limit_pressure],
    multi_group=True,
)
