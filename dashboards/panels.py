"""Shared builders for the dashboards: the datasource, InfluxQL targets, panels, thresholds, mappings, overrides.

grafanalib 0.7.1 emits some pre-Grafana-7 keys; where it has no type (value mappings, field overrides,
thresholds with a null base step) the modern JSON is given as raw dicts through `extraJson`, and
`pluginVersion` is set so Grafana does not run its pre-7 migrations over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Panel,
    Stat,
    StateTimeline,
    Table,
    Template,
    Templating,
    Time,
    TimeSeries,
)
from grafanalib.influxdb import InfluxDBTarget

from collector.sinks.points import PERMIT
from dashboards.influxql import GROUP_VARIABLE, checked

JSON = dict[str, Any]

DATASOURCE_UID = "minewatch-influxdb"
DATASOURCE: JSON = {"type": "influxdb", "uid": DATASOURCE_UID}
TAGS = ["minewatch"]
REFRESH = "1m"
# The JSON below is written for this Grafana generation; older keys grafanalib adds are ignored by it.
SCHEMA_VERSION = 39
PLUGIN_VERSION = "10.4.0"
# Every dashboard's default view: the last day, wide enough for daily production and the alert history.
DEFAULT_TIME = Time("now-24h", "now")

# Grafana unit ids (`valueFormats/categories.ts`): hashrate is "Hs" (H/s, kH/s, ... scaled); "H/s" is unknown to it.
HASHRATE = "Hs"
# An amount of some coin (the coin is in the series name or a column, never assumed to be BTC): a plain number
# with 8 decimals, the satoshi precision, and no currency symbol.
COIN_UNIT, COIN_DECIMALS = "none", 8

# Colours (Grafana's named palette).
OK, UNKNOWN, WARNING, VIOLATION, NEUTRAL = "green", "#8e8e8e", "orange", "red", "blue"

# Compliance status codes as `compliance.status_code` and `compliance_rule.status_code` write them.
STATUS_MAPPING: Mapping[int, tuple[str, str]] = {0: ("ok", OK), 1: ("unknown", UNKNOWN), 2: ("violation", VIOLATION)}


# --- targets and variables ---


def target(query: str, ref_id: str, *, alias: str = "", table: bool = False) -> InfluxDBTarget:
    """A raw InfluxQL target on the minewatch datasource; every name in `query` is checked against CATALOGUE."""
    return InfluxDBTarget(
        query=checked(query),
        refId=ref_id,
        alias=alias,
        format="table" if table else "time_series",
        datasource=DATASOURCE,
        rawQuery=True,
    )


def group_variable(*, multi: bool) -> Template:
    """`$group_id`: every group that has a permit point. Detail views pick one group; overviews pick any."""
    return Template(
        name=GROUP_VARIABLE,
        label="Group",
        query=checked(f'SHOW TAG VALUES FROM "{PERMIT}" WITH KEY = "group_id"'),
        dataSource=DATASOURCE,
        multi=multi,
        includeAll=multi,
        default="$__all" if multi else None,
        refresh=2,  # on time-range change: a group added to the config shows up without a reload
    )


# --- field config pieces ---


def steps(base: str, *above: tuple[float, str]) -> JSON:
    """Absolute thresholds: `base` colour from -inf (Grafana wants a null value there), then (value, colour)."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}, *({"color": c, "value": v} for v, c in above)],
    }


def value_mapping(texts: Mapping[int, tuple[str, str]] | Mapping[str, tuple[str, str]]) -> JSON:
    """A value mapping: each raw value shown as a text in a colour."""
    return {
        "type": "value",
        "options": {
            str(value): {"text": text, "color": color, "index": index}
            for index, (value, (text, color)) in enumerate(texts.items())
        },
    }


def by_name(name: str, **properties: Any) -> JSON:
    """A field override matching the field (column or series) called `name`."""
    return _override({"id": "byName", "options": name}, properties)


def by_regexp(pattern: str, **properties: Any) -> JSON:
    """A field override matching every field whose display name matches `pattern`."""
    return _override({"id": "byRegexp", "options": pattern}, properties)


def _override(matcher: JSON, properties: Mapping[str, Any]) -> JSON:
    # Grafana property ids contain dots ("custom.axisPlacement"); keyword arguments use "__" for them.
    return {
        "matcher": matcher,
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in sorted(properties.items())],
    }


def fixed(color: str) -> JSON:
    """A `color` property value: one fixed colour."""
    return {"mode": "fixed", "fixedColor": color}


def cell(kind: str) -> JSON:
    """A table `custom.cellOptions` value (e.g. "color-background", "color-text")."""
    return {"type": kind}


def at(x: int, y: int, w: int, h: int) -> GridPos:
    """Where a panel sits on Grafana's 24-column grid."""
    return GridPos(h=h, w=w, x=x, y=y)


def _extra(
    *,
    unit: str,
    thresholds: JSON | None,
    mappings: Sequence[JSON],
    overrides: Sequence[JSON],
    defaults: JSON | None = None,
    options: JSON | None = None,
    transformations: Sequence[JSON] = (),
) -> JSON:
    extra: JSON = {
        "pluginVersion": PLUGIN_VERSION,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "mappings": list(mappings),
                "thresholds": thresholds or steps(OK),
                **(defaults or {}),
            },
            "overrides": list(overrides),
        },
    }
    if options:
        extra["options"] = options
    if transformations:
        extra["transformations"] = list(transformations)
    return extra


def hide_columns(*names: str) -> JSON:
    """A transformation that drops columns a table does not need (the Time of an aggregate over the range)."""
    return {"id": "organize", "options": {"excludeByName": dict.fromkeys(names, True)}}


# --- panels ---


def time_series(
    title: str,
    description: str,
    targets: Sequence[InfluxDBTarget],
    grid: GridPos,
    *,
    unit: str,
    overrides: Sequence[JSON] = (),
    thresholds: JSON | None = None,
    bars: bool = False,
    stacked: bool = False,
    transformations: Sequence[JSON] = (),
    soft_max: float | None = None,
    decimals: int | None = None,
) -> TimeSeries:
    """A time series; gaps in the data stay gaps (`spanNulls` off): a failed poll is not a flat line."""
    custom: JSON = {"spanNulls": False, "stacking": {"mode": "normal" if stacked else "none", "group": "A"}}
    if soft_max is not None:
        custom["axisSoftMax"] = soft_max
    defaults: JSON = {"custom": custom}
    if decimals is not None:
        defaults["decimals"] = decimals
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        gridPos=grid,
        unit=unit,
        drawStyle="bars" if bars else "line",
        fillOpacity=80 if bars else 10,
        showPoints="never" if bars else "auto",
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        extraJson=_extra(
            unit=unit,
            thresholds=thresholds,
            mappings=(),
            overrides=overrides,
            defaults=defaults,
            transformations=transformations,
        ),
    )


def stat(
    title: str,
    description: str,
    targets: Sequence[InfluxDBTarget],
    grid: GridPos,
    *,
    unit: str = "none",
    thresholds: JSON | None = None,
    no_value: str | None = None,
) -> Stat:
    """One number: the last non-null value over the range; `no_value` is shown when the query returns nothing
    (only where nothing means a known value, e.g. "0" for a count of events)."""
    return Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        gridPos=grid,
        format=unit,
        graphMode="none",
        reduceCalc="lastNotNull",
        extraJson=_extra(
            unit=unit,
            thresholds=thresholds,
            mappings=(),
            overrides=(),
            defaults=None if no_value is None else {"noValue": no_value},
        ),
    )


def table(
    title: str,
    description: str,
    targets: Sequence[InfluxDBTarget],
    grid: GridPos,
    *,
    overrides: Sequence[JSON] = (),
    sort_by: tuple[str, bool] | None = None,
    transformations: Sequence[JSON] = (),
) -> Table:
    """A table of InfluxQL rows; `sort_by` = (column, descending)."""
    options: JSON = {"showHeader": True, "cellHeight": "sm"}
    if sort_by is not None:
        options["sortBy"] = [{"displayName": sort_by[0], "desc": sort_by[1]}]
    return Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        gridPos=grid,
        filterable=True,
        extraJson=_extra(
            unit="none",
            thresholds=None,
            mappings=(),
            overrides=overrides,
            options=options,
            transformations=transformations,
        ),
    )


class _BarGauge(BarGauge):  # type: ignore[misc]  # grafanalib is untyped
    """grafanalib's BarGauge without its pre-Grafana-7 `options.fieldOptions`: a second, stale set of thresholds
    (red from 80) next to the real `fieldConfig` that a reader of the JSON could take for the panel's own."""

    def to_json_data(self) -> JSON:
        data: JSON = super().to_json_data()
        data["options"].pop("fieldOptions", None)
        return data


def bar_gauge(
    title: str,
    description: str,
    targets: Sequence[InfluxDBTarget],
    grid: GridPos,
    *,
    unit: str,
    thresholds: JSON,
    minimum: float,
    maximum: float,
) -> BarGauge:
    """Horizontal bars, one per series, coloured by `thresholds`; the last non-null value of each series."""
    return _BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        gridPos=grid,
        format=unit,
        min=minimum,
        max=maximum,
        calc="lastNotNull",
        displayMode="gradient",
        extraJson=_extra(
            unit=unit,
            thresholds=thresholds,
            mappings=(),
            overrides=(),
            defaults={"min": minimum, "max": maximum},
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": True,
                "valueMode": "color",
                "namePlacement": "auto",
                "sizing": "auto",
            },
        ),
    )


def state_timeline(
    title: str,
    description: str,
    targets: Sequence[InfluxDBTarget],
    grid: GridPos,
    *,
    mappings: Sequence[JSON],
) -> StateTimeline:
    """States over time, one row per series, coloured by `mappings`; a state lasts until the next point."""
    return StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        gridPos=grid,
        mergeValues=True,
        colorMode="fixed",
        extraJson=_extra(unit="none", thresholds=None, mappings=mappings, overrides=()),
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Sequence[Panel],
    *,
    multi_group: bool,
) -> Dashboard:
    """A minewatch dashboard: stable uid, the `minewatch` tag, `$group_id`, refresh every minute, UTC."""
    return Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=TAGS,
        panels=list(panels),
        templating=Templating(list=[group_variable(multi=multi_group)]),
        time=DEFAULT_TIME,
        refresh=REFRESH,
        timezone="utc",
        editable=False,  # provisioned from code: edits in the UI would be lost on the next build
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=1,  # shared crosshair: the same moment across the hashrate, power and blackout panels
    )
