"""What the exporter reads, as protocols: the collector's targets and state, and the compliance engine.

`collector.app.Collector` and `collector.compliance.engine.ComplianceEngine` satisfy them; naming only what is
read keeps the exporter from reaching further into either, and lets a test hand in a part that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from collector.compliance.alerts import AlertRecord
from collector.compliance.delivery import NotifierStats
from collector.compliance.findings import RoundSummary
from collector.config import Group
from collector.sinks.spool import SpoolStats
from collector.state import StateStore
from collector.targets import Target


class Fleet(Protocol):
    @property
    def targets(self) -> Sequence[Target]: ...


class CollectorInputs(Protocol):
    """The collector process: its groups, every target it polls, their shared state, its sink and clock."""

    @property
    def groups(self) -> Sequence[Group]: ...

    @property
    def targets(self) -> Sequence[Target]: ...

    @property
    def fleets(self) -> Sequence[Fleet]: ...

    @property
    def networks(self) -> Sequence[Target]: ...

    @property
    def state(self) -> StateStore: ...

    @property
    def sink(self) -> object: ...

    @property
    def clock(self) -> Callable[[], float]: ...


@runtime_checkable
class SinkCounters(Protocol):
    """The counters a buffering sink keeps (`InfluxSink`); other sinks have none and get no storage metrics."""

    written_lines: int
    dropped_lines: int
    rejected_lines: int
    write_errors: int

    @property
    def buffered_lines(self) -> int: ...


@runtime_checkable
class SpoolGauges(Protocol):
    """A sink with a spool (`InfluxSink`): its depth and the age of its oldest undelivered line, now."""

    def spool_stats(self) -> SpoolStats: ...


class AlertRecords(Protocol):
    def records(self, *, active_only: bool = False) -> list[AlertRecord]: ...


class DeliveryStats(Protocol):
    def stats(self) -> dict[str, NotifierStats]: ...


class ComplianceInputs(Protocol):
    """The compliance engine: each group's last round, the alert book and the notifiers' counters."""

    @property
    def last_rounds(self) -> Mapping[str, RoundSummary]: ...

    @property
    def book(self) -> AlertRecords: ...

    @property
    def delivery(self) -> DeliveryStats: ...
