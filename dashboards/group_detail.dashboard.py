"""Group detail: one group's output against its permit — hashrate, pools, power, blackouts, payouts, alerts."""

from __future__ import annotations

from grafanalib.influxdb import InfluxDBTarget

from collector.sinks.points import (
    COMPLIANCE,
    COMPLIANCE_POOL,
    COMPLIANCE_RULE,
    PERMIT,
    POOL_EARNING,
    POOL_HASHRATE_HISTORY,
    POOL_PAYOUT,
    SITE,
    VIOLATION,
)
from dashboards.influxql import INTERVAL, WHERE
from dashboards.panels import (
    COIN_DECIMALS,
    COIN_UNIT,
    HASHRATE,
    NEUTRAL,
    OK,
    STATUS_MAPPING,
    UNKNOWN,
    WARNING,
    at,
    by_name,
    by_regexp,
    cell,
    fixed,
    state_timeline,
    table,
    target,
    time_series,
    value_mapping,
)
from dashboards.panels import VIOLATION as VIOLATION_COLOUR
from dashboards.panels import dashboard as minewatch_dashboard

SATS_PER_COIN = 100_000_000  # `amount_sats` counts 1e-8 of the coin (satoshis for BTC)
BLACKOUT = "blackout"
# A blackout (regional ban or the permit's own window) drawn as a shaded band behind the measured series: a
# stepped 0/1 series on its own hidden axis, so it never rescales the hashrate or power axis.
BLACKOUT_BAND = by_name(
    BLACKOUT,
    color=fixed("dark-red"),
    custom__axisPlacement="hidden",
    custom__fillOpacity=25,
    custom__lineWidth=0,
    custom__lineInterpolation="stepAfter",
    custom__showPoints="never",
    min=0,
    max=1,
    unit="none",
)
# Grafana names an InfluxQL series `measurement.column` unless the target has an alias, so every target whose
# series an override refers to by name gets the alias "$col": the series is then called by its `AS` name.
BY_COLUMN = "$col"
QUOTA_LINE = {"custom__lineStyle": {"fill": "dash", "dash": [10, 10]}, "custom__fillOpacity": 0, "custom__lineWidth": 2}


def blackout_target(ref_id: str) -> InfluxDBTarget:
    """1 while any site of the group is inside a blackout or ban window, per interval."""
    return target(
        f'SELECT max("blackout") AS "{BLACKOUT}" FROM "{SITE}" {WHERE} GROUP BY {INTERVAL} fill(none)',
        ref_id,
        alias=BY_COLUMN,
    )


hashrate = time_series(
    "Hashrate against the permitted quota",
    "What the pools credit (all pools, and permitted pools only) and what the miners themselves report, against "
    "the quota of the permit in force (dashed). Shaded: blackout or ban windows.",
    [
        target(
            f'SELECT mean("pool_total_hs") AS "pool-side, all pools", '
            f'mean("pool_permitted_hs") AS "pool-side, permitted pools", mean("device_hs") AS "device-side" '
            f'FROM "{COMPLIANCE}" {WHERE} GROUP BY {INTERVAL} fill(null)',
            "A",
            alias=BY_COLUMN,
        ),
        target(
            f'SELECT max("max_hashrate_hs") AS "permitted quota" FROM "{PERMIT}" {WHERE} '
            f"GROUP BY {INTERVAL} fill(none)",
            "B",
            alias=BY_COLUMN,
        ),
        blackout_target("C"),
    ],
    at(0, 0, 16, 9),
    unit=HASHRATE,
    overrides=[by_name("permitted quota", color=fixed(VIOLATION_COLOUR), **QUOTA_LINE), BLACKOUT_BAND],
)

unaccounted = time_series(
    "Unaccounted hashrate",
    "Hashrate the miners report beyond what permitted pools credit: output that goes somewhere the permit "
    "does not see. Sustained, it is a violation.",
    [
        target(
            f'SELECT mean("unaccounted_hs") AS "unaccounted" FROM "{COMPLIANCE}" {WHERE} '
            f"GROUP BY {INTERVAL} fill(null)",
            "A",
            alias=BY_COLUMN,
        )
    ],
    at(16, 0, 8, 9),
    unit=HASHRATE,
    overrides=[by_name("unaccounted", color=fixed(WARNING))],
)

POOL_HISTORY_SUFFIX = "(pool's own history)"
# The pool's own 10-minute bins, read after a gap in polling (F2Pool, ViaBTC): drawn unstacked, dashed and with
# points over the stacked live series, so a gap the pool could fill shows its figures, and one it could not
# stays a gap.
POOL_HISTORY_LINE = {
    "custom__stacking": {"mode": "none", "group": "A"},
    "custom__lineStyle": {"fill": "dash", "dash": [4, 4]},
    "custom__fillOpacity": 0,
    "custom__showPoints": "always",
    "custom__pointSize": 3,
}

by_pool = time_series(
    "Hashrate by pool",
    "What each pool credits the group (stacked). Pools the permit does not list are red, permitted pools green. "
    "Dashed, with points: each account's hashrate from the pool's own 10-minute history, read after a gap in "
    "polling (F2Pool and ViaBTC keep one), so a collector or pool-API outage the pool could fill is not blank.",
    [
        target(
            f'SELECT mean("hashrate_hs") FROM "{COMPLIANCE_POOL}" {WHERE} '
            f'GROUP BY {INTERVAL}, "pool", "permitted" fill(null)',
            "A",
            alias="$tag_pool (permitted: $tag_permitted)",
        ),
        target(
            f'SELECT mean("hashrate_hs") FROM "{POOL_HASHRATE_HISTORY}" {WHERE} '
            f'GROUP BY {INTERVAL}, "pool", "account" fill(none)',
            "B",
            alias=f"$tag_pool $tag_account {POOL_HISTORY_SUFFIX}",
        ),
    ],
    at(0, 9, 12, 9),
    unit=HASHRATE,
    stacked=True,
    overrides=[
        by_regexp(r".*\(permitted: no\)$", color=fixed(VIOLATION_COLOUR)),
        by_regexp(r".*\(permitted: yes\)$", color=fixed(OK)),
        by_regexp(r".*\(pool's own history\)$", **POOL_HISTORY_LINE),
    ],
)

power = time_series(
    "Power against capacity",
    "The miners' power draw against each site's connected capacity and the permit's power quota. Shaded: "
    "blackout or ban windows.",
    [
        target(
            f'SELECT mean("power_w") AS "power draw" FROM "{COMPLIANCE}" {WHERE} GROUP BY {INTERVAL} fill(null)',
            "A",
            alias=BY_COLUMN,
        ),
        target(
            f'SELECT max("capacity_w") FROM "{SITE}" {WHERE} GROUP BY {INTERVAL}, "site" fill(none)',
            "B",
            alias="capacity $tag_site",
        ),
        target(
            f'SELECT max("max_power_w") AS "permitted power" FROM "{PERMIT}" {WHERE} GROUP BY {INTERVAL} fill(none)',
            "C",
            alias=BY_COLUMN,
        ),
        blackout_target("D"),
    ],
    at(12, 9, 12, 9),
    unit="watt",
    overrides=[
        by_regexp("^capacity .*", color=fixed(NEUTRAL), **QUOTA_LINE),
        by_name("permitted power", color=fixed(VIOLATION_COLOUR), **QUOTA_LINE),
        BLACKOUT_BAND,
    ],
)

payouts = table(
    "Payouts",
    "Every payout that left a pool account, newest first: the amount in its coin and the address it went to. "
    "Undeclared: the permit in force at the payout's time does not list the address.",
    [
        target(
            f'SELECT "amount_sats" / {SATS_PER_COIN} AS "amount", "coin", "address", "declared", "txid", "pool", '
            f'"account" FROM "{POOL_PAYOUT}" {WHERE} ORDER BY time DESC',
            "A",
            table=True,
        )
    ],
    at(0, 18, 16, 9),
    overrides=[
        by_name("Time", unit="dateTimeAsIso"),
        by_name("amount", unit=COIN_UNIT, decimals=COIN_DECIMALS),
        by_name(
            "declared",
            mappings=[value_mapping({1: ("declared", OK), 0: ("UNDECLARED", VIOLATION_COLOUR)})],
            custom__cellOptions=cell("color-background"),
        ),
    ],
)

production = time_series(
    "Daily production",
    "Credits to the group's pool accounts per UTC day (a day's accrual or block rewards), one series per coin.",
    [
        target(
            f'SELECT sum("amount_sats") / {SATS_PER_COIN} AS "credited" FROM "{POOL_EARNING}" {WHERE} '
            'GROUP BY time(1d), "coin" fill(none)',
            "A",
            alias="$tag_coin",
        )
    ],
    at(16, 18, 8, 9),
    unit=COIN_UNIT,
    decimals=COIN_DECIMALS,
    bars=True,
)

RULE_STATES = value_mapping(STATUS_MAPPING)
rule_timeline = state_timeline(
    "Rule status over time",
    "Each permit rule's verdict at every compliance round: ok, unknown (data missing) or violation.",
    [
        target(
            f'SELECT last("status_code") FROM "{COMPLIANCE_RULE}" {WHERE} GROUP BY {INTERVAL}, "rule" fill(null)',
            "A",
            alias="$tag_rule",
        )
    ],
    at(0, 27, 24, 9),
    mappings=[RULE_STATES],
)

ALERT_STATES = value_mapping(
    {
        "pending": ("pending", WARNING),
        "firing": ("firing", VIOLATION_COLOUR),
        "resolved": ("resolved", OK),
        "excused": ("excused", UNKNOWN),
    }
)
violation_timeline = state_timeline(
    "Violation timeline",
    "Alert transitions by rule: an alert is pending, then firing after the rule's hold time, until it resolves "
    "(or a notice excuses it).",
    [
        target(
            f'SELECT "state" FROM "{VIOLATION}" {WHERE} GROUP BY "rule"',
            "A",
            alias="$tag_rule",
        )
    ],
    at(0, 36, 24, 8),
    mappings=[ALERT_STATES],
)

dashboard = minewatch_dashboard(
    "minewatch-group-detail",
    "minewatch · Group detail",
    "One group against its permit: hashrate and power against quota, pools, blackouts, payouts, production, alerts.",
    [hashrate, unaccounted, by_pool, power, payouts, production, rule_timeline, violation_timeline],
    multi_group=False,
)
