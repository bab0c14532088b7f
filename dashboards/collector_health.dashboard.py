"""Collector health: does every source answer, how fast, how fresh is its data, and how hard do pools throttle us."""

from __future__ import annotations

from collector.errors import RateLimited
from collector.runner import BACKOFF
from collector.sinks.points import SOURCE_HEALTH
from dashboards.influxql import INTERVAL, WHERE
from dashboards.panels import OK, VIOLATION, WARNING, at, steps, target, time_series
from dashboards.panels import dashboard as minewatch_dashboard

RATE_LIMITED = RateLimited.kind
SOURCE = "$tag_group_id · $tag_kind · $tag_target"

success = time_series(
    "Poll success by source",
    "Share of each source's polls that succeeded. A gap means the source was not polled at all.",
    [
        target(
            f'SELECT mean("success") FROM "{SOURCE_HEALTH}" {WHERE} '
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
            f'SELECT max("duration_s") FROM "{SOURCE_HEALTH}" {WHERE} '
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
            f'SELECT max("data_age_s") FROM "{SOURCE_HEALTH}" {WHERE} '
            f'GROUP BY {INTERVAL}, "group_id", "kind", "target" fill(null)',
            "A",
            alias=SOURCE,
        )
    ],
    at(0, 9, 12, 9),
    unit="s",
)

# InfluxQL has no conditional count, so the share is computed by Grafana from two counts joined on time. The
# throttled count is filled with 0 on purpose: it counts events, and an interval with polls but none throttled
# is a true 0; an interval without any poll has no total, so the share stays a gap there.
rate_limit_pressure = time_series(
    "Rate-limit pressure",
    "Share of polls a pool refused for its rate limit or the collector skipped while backing off.",
    [
        target(
            f'SELECT count("success") AS "throttled" FROM "{SOURCE_HEALTH}" {WHERE} '
            f"AND (\"error_kind\" = '{RATE_LIMITED}' OR \"error_kind\" = '{BACKOFF}') "
            f"GROUP BY {INTERVAL} fill(0)",
            "A",
        ),
        target(
            f'SELECT count("success") AS "polls" FROM "{SOURCE_HEALTH}" {WHERE} GROUP BY {INTERVAL} fill(none)',
            "B",
        ),
    ],
    at(12, 9, 12, 9),
    unit="percentunit",
    thresholds=steps(OK, (0.1, WARNING), (0.5, VIOLATION)),
    transformations=[
        {"id": "joinByField", "options": {"byField": "Time", "mode": "outer"}},
        {
            "id": "calculateField",
            "options": {
                "alias": "rate-limited share",
                "mode": "binary",
                "binary": {"left": "throttled", "operator": "/", "right": "polls"},
                "replaceFields": True,
            },
        },
    ],
)

dashboard = minewatch_dashboard(
    "minewatch-collector-health",
    "minewatch · Collector health",
    "Per source: poll success, duration, data age and rate-limit pressure.",
    [success, duration, data_age, rate_limit_pressure],
    multi_group=True,
)
