"""Fresh prometheus_client metric families from catalogue specs, with "unknown means no sample" built in."""

from __future__ import annotations

import math
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from collector.sinks.spool import SpoolStats
from exporters.prometheus import catalogue as m
from exporters.prometheus.catalogue import MetricSpec


class Family:
    """One metric family being built for one scrape: samples are added by label values in the spec's order."""

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        unit = spec.unit if spec.family_name.endswith(f"_{spec.unit}") else ""
        self.metric: CounterMetricFamily | GaugeMetricFamily
        if spec.type == "counter":
            self.metric = CounterMetricFamily(spec.family_name, spec.help, labels=spec.labels, unit=unit)
        else:
            self.metric = GaugeMetricFamily(spec.family_name, spec.help, labels=spec.labels, unit=unit)

    def add(self, labels: Sequence[str], value: float | None) -> None:
        """Add one sample; an unknown value (None or NaN) adds none, never a 0 in its place."""
        if len(labels) != len(self.spec.labels):
            raise ValueError(f"{self.spec.name} takes labels {self.spec.labels}, got {tuple(labels)}")
        if value is None or math.isnan(value):
            return
        # Both family classes take (labels, value) without a timestamp: cached values carry none, by design.
        self.metric.add_metric(list(labels), float(value))


def spool_families(stats: SpoolStats | None) -> list[Family]:
    """The spool's depth and age; every family is described, a value unknown (no spool, empty) has no sample."""
    lines, size, segments, age = (
        Family(spec) for spec in (m.SPOOL_LINES, m.SPOOL_BYTES, m.SPOOL_SEGMENTS, m.SPOOL_OLDEST_AGE)
    )
    if stats is not None:
        lines.add((), stats.lines)
        size.add((), stats.bytes)
        segments.add((), stats.segments)
        age.add((), stats.oldest_age_s)
    return [lines, size, segments, age]
