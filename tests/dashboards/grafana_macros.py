"""Substitute Grafana's InfluxQL macros and template variables the way Grafana does before it sends a query.

Where this comes from:
- `$timeFilter`, `$interval`, `$__interval_ms`, `$__interval`: Grafana's InfluxQL backend,
  grafana/grafana `pkg/tsdb/influxdb/models/query.go` (`Build`, `renderTimeFilter`, `epochMStoInfluxTime`):
  `time >= <from>ms and time <= <to>ms`, the interval written by `gtime.FormatInterval`, replaced in that order.
- the interval itself: the query runner divides the time range by the panel's max data points, rounds the
  result with `rangeutil.roundInterval` and raises it to the datasource's "Min time interval"
  (`timeInterval`, 60 s in our provisioning) — grafana `packages/grafana-data/src/datetime/rangeutil.ts`.
- multi-value variables: Grafana's docs, "Formatting multi-value variables": InfluxDB variables are
  interpolated as `(a|b|c)` with every value regex-escaped (`escapeRegex` of `@grafana/data`, which escapes
  `\\ ^ $ * + ? . ( ) | [ ] { } /`); All without a custom all value selects every value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MS_PER_S = 1000
# The datasource's "Min time interval" (`timeInterval` in dashboards/provisioning/datasources/minewatch.yaml).
DATASOURCE_MIN_INTERVAL_MS = 60_000
# rangeutil.roundInterval: (upper bound of the raw interval in ms, the interval it rounds to in ms).
_ROUNDING: tuple[tuple[int, int], ...] = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (870_000, 600_000),
    (1_350_000, 900_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000
_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range in unix milliseconds."""

    from_ms: int
    to_ms: int


def round_interval(raw_ms: float) -> int:
    """Grafana's rangeutil.roundInterval: snap a raw interval to a readable one."""
    for bound, rounded in _ROUNDING:
        if raw_ms < bound:
            return rounded
    return _YEAR_MS


def panel_interval_ms(time_range: TimeRange, max_data_points: int, min_interval_ms: int) -> int:
    """`$__interval_ms` for a panel: the range over its max data points, rounded, at least the minimum."""
    raw = (time_range.to_ms - time_range.from_ms) / max(max_data_points, 1)
    return max(round_interval(raw), min_interval_ms)


def format_interval(ms: int) -> str:
    """gtime.FormatInterval: the largest whole unit among d, h, m, s, else ms."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def regex_escape(value: str) -> str:
    """@grafana/data's escapeRegex."""
    return _REGEX_SPECIALS.sub(lambda match: "\\" + match.group(0), value)


def regex_value(selected: Sequence[str]) -> str:
    """A query variable's value inside an InfluxQL regex: one value escaped, several as `(a|b)`."""
    escaped = [regex_escape(value) for value in selected]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate_variables(query: str, variables: Mapping[str, Sequence[str]]) -> str:
    """Replace `$name` and `${name}` of each template variable by its selected values (the frontend's step)."""
    for name, selected in variables.items():
        pattern = re.compile(r"\$\{" + re.escape(name) + r"\}|\$" + re.escape(name) + r"\b")
        query = pattern.sub(regex_value(selected).replace("\\", "\\\\"), query)  # a literal replacement
    return query


def interpolate_macros(query: str, time_range: TimeRange, interval_ms: int) -> str:
    """Replace the macros as Grafana's InfluxQL backend does, in its order (`$interval` before `$__interval_ms`)."""
    text = format_interval(interval_ms)
    query = query.replace("$timeFilter", f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms")
    query = query.replace("$interval", text)
    query = query.replace("$__interval_ms", str(interval_ms))
    return query.replace("$__interval", text)


def interpolate(
    query: str,
    *,
    time_range: TimeRange,
    interval_ms: int,
    variables: Mapping[str, Sequence[str]],
) -> str:
    """The query Grafana would send to InfluxDB: variables first (frontend), then macros (backend)."""
    return interpolate_macros(interpolate_variables(query, variables), time_range, interval_ms)
