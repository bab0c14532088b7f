"""The exporter's custom Collector: fresh metric families from the last snapshots on every scrape.

Nothing here polls anything: it reads the state store (each source's last good snapshot and health), the
compliance engine's last rounds and alert book, and the sink's and notifiers' counters. Families are built anew
per scrape, so a group or target that disappears from the inputs disappears from the scrape (Prometheus then
marks its series stale) instead of lingering as a stale labelled child.

The scrape is built in parts (sources, groups, compliance, alerts, storage, notifications). A part that raises
is logged and left out whole, and `minewatch_exporter_collect_errors_total{kind=<part>}` counts it: the rest
still serves, and a half-built family never claims to be complete.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as PrometheusCollector
from prometheus_client.registry import CollectorRegistry

from collector.compliance.findings import RoundSummary
from collector.models import PoolAccountSnapshot
from collector.state import TargetHealth
from exporters.prometheus import catalogue as m
from exporters.prometheus.families import Family, spool_families
from exporters.prometheus.inputs import CollectorInputs, ComplianceInputs, SinkCounters, SpoolGauges

Part = Callable[[], Iterable[Family]]


class MinewatchCollector(PrometheusCollector):
    """Renders the collector's (and, if given, the compliance engine's) last state as metric families."""

    def __init__(
        self,
        collector: CollectorInputs,
        engine: ComplianceInputs | None = None,
        *,
        version: str,
        log: logging.Logger | None = None,
    ) -> None:
        self._collector = collector
        self._engine = engine
        self._version = version
        self._log = log or logging.getLogger("minewatch.exporter")
        self._lock = threading.Lock()
        self._part_errors: dict[str, int] = {}

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering must not build a scrape (the registry would call `collect` instead)."""
        return []

    def collect(self) -> Iterator[Metric]:
        parts: dict[str, Part] = {
            "sources": self._sources,
            "pool_accounts": self._pool_accounts,
            "quotas": self._quotas,
            "storage": self._storage,
        }
        if self._engine is not None:
            engine = self._engine
            parts["compliance"] = lambda: self._compliance(engine)
            parts["alerts"] = lambda: self._alerts(engine)
            parts["notifications"] = lambda: self._notifications(engine)
        for name, part in parts.items():
            try:
                families = list(part())
            except Exception:
                # A bug or a half-updated input must cost one part of one scrape, not the endpoint.
                self._log.exception("exporter: building the %s metrics failed; left out of this scrape", name)
                with self._lock:
                    self._part_errors[name] = self._part_errors.get(name, 0) + 1
                continue
            for family in families:
                yield family.metric
        yield from (family.metric for family in self._self_metrics())

    # --- the parts ---------------------------------------------------------------------------------------------

    def _health_by_tags(self) -> list[tuple[tuple[str, str, str], str, TargetHealth]]:
        """(health tags, key, health) of every configured target that has been polled at least once."""
        collector = self._collector
        targets = [*collector.targets, *(t for fleet in collector.fleets for t in fleet.targets), *collector.networks]
        tags_of = {target.key: target.health_tags for target in targets}
        return [(tags_of[key], key, health) for key, health in collector.state.items() if key in tags_of]

    def _sources(self) -> list[Family]:
        now = self._collector.clock()
        up, last_success, duration, age, polls, errors = (
            Family(spec)
            for spec in (
                m.SOURCE_UP,
                m.SOURCE_LAST_SUCCESS,
                m.SOURCE_LAST_DURATION,
                m.SOURCE_DATA_AGE,
                m.SOURCE_POLLS,
                m.SOURCE_ERRORS,
            )
        )
        polled = self._health_by_tags()
        for tags, _, health in polled:
            if health.last_attempt is not None:
                up.add(tags, 1.0 if _last_poll_succeeded(health) else 0.0)
            last_success.add(tags, health.last_success)
            duration.add(tags, health.last_duration_s)
            age.add(tags, health.data_age_s(now))
            polls.add(tags, health.polls)
        keys = {key: tags for tags, key, _ in polled}
        for (key, reason), count in sorted(self._collector.state.failures_by_kind().items()):
            if key in keys:
                errors.add((*keys[key], reason), count)
        return [up, last_success, duration, age, polls, errors]

    def _pool_accounts(self) -> list[Family]:
        hashrate = Family(m.POOL_ACCOUNT_HASHRATE)
        state = self._collector.state
        for target in self._collector.targets:
            health = state.health(target.key)
            snapshot = state.snapshot(target.key)
            # A failed poll leaves a gap: the last good value is not this poll's, so it is not served as current.
            if isinstance(snapshot, PoolAccountSnapshot) and _last_poll_succeeded(health):
                hashrate.add(target.health_tags, snapshot.hashrate_hs)
        return [hashrate]

    def _quotas(self) -> list[Family]:
        hashrate_quota, power_quota = Family(m.GROUP_HASHRATE_QUOTA), Family(m.GROUP_POWER_QUOTA)
        moment = datetime.fromtimestamp(self._collector.clock(), UTC)
        for group in self._collector.groups:
            permit = group.permit_at(moment)
            if permit is not None:
                hashrate_quota.add((group.id,), permit.max_hashrate)
                power_quota.add((group.id,), permit.max_power)
        return [hashrate_quota, power_quota]

    def _compliance(self, engine: ComplianceInputs) -> list[Family]:
        families = {
            spec: Family(spec)
            for spec in (
                m.GROUP_POOL_HASHRATE,
                m.GROUP_PERMITTED_POOL_HASHRATE,
                m.GROUP_DEVICE_HASHRATE,
                m.GROUP_UNACCOUNTED_HASHRATE,
                m.GROUP_POWER,
                m.GROUP_QUOTA_UTILISATION,
                m.GROUP_POOL_PERMITTED,
                m.GROUP_COMPLIANCE_STATUS,
                m.GROUP_LAST_ROUND,
                m.RULE_STATUS,
                m.RULE_VIOLATIONS,
            )
        }
        for group_id, summary in sorted(self._current_rounds(engine).items()):
            group = (group_id,)
            sample = summary.sample
            families[m.GROUP_POOL_HASHRATE].add(group, sample.pool_total_hs)
            families[m.GROUP_PERMITTED_POOL_HASHRATE].add(group, sample.pool_permitted_hs)
            families[m.GROUP_DEVICE_HASHRATE].add(group, sample.device_hs)
            families[m.GROUP_UNACCOUNTED_HASHRATE].add(group, summary.unaccounted_hs)
            families[m.GROUP_POWER].add(group, sample.power_w)
            families[m.GROUP_QUOTA_UTILISATION].add(group, summary.quota_utilisation)
            families[m.GROUP_COMPLIANCE_STATUS].add(group, summary.status_code)
            families[m.GROUP_LAST_ROUND].add(group, summary.at)
            for share in summary.pools:
                families[m.GROUP_POOL_PERMITTED].add((group_id, share.pool), 1.0 if share.permitted else 0.0)
            for rule in summary.rules:
                labels = (group_id, rule.rule, rule.severity, "operational" if rule.operational else "permit")
                families[m.RULE_STATUS].add(labels, rule.status_code)
                families[m.RULE_VIOLATIONS].add(labels, rule.violations)
        return list(families.values())

    def _current_rounds(self, engine: ComplianceInputs) -> dict[str, RoundSummary]:
        """The last rounds of the groups this collector still watches (a group dropped from the config goes)."""
        watched = {group.id for group in self._collector.groups}
        return {group_id: summary for group_id, summary in engine.last_rounds.items() if group_id in watched}

    def _alerts(self, engine: ComplianceInputs) -> list[Family]:
        """Firing and pending alerts counted per (group, rule, severity), as two gauges.

        The contract allows no `state` label, and two gauges read better anyway: `sum(minewatch_alerts_firing)`
        is the number of firing alerts with no filter to forget. Every rule of a group's last round gets both
        series (0 where none: the book is known), so a pending alert turning firing moves a count instead of
        making one series vanish; an alert whose rule did not run in the last round still counts. Groups no longer
        watched are left out, as everywhere.
        """
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        for group_id, summary in self._current_rounds(engine).items():
            for rule in summary.rules:
                counts.setdefault((group_id, rule.rule, rule.severity), {"firing": 0, "pending": 0})
        watched = {group.id for group in self._collector.groups}
        for record in engine.book.records(active_only=True):
            if record.finding.group_id not in watched:
                continue
            key = (record.finding.group_id, record.finding.rule, record.finding.severity)
            by_state = counts.setdefault(key, {"firing": 0, "pending": 0})
            by_state[record.state] += 1
        firing, pending = Family(m.ALERTS_FIRING), Family(m.ALERTS_PENDING)
        for labels, by_state in sorted(counts.items()):
            firing.add(labels, by_state["firing"])
            pending.add(labels, by_state["pending"])
        return [firing, pending]

    def _storage(self) -> list[Family]:
        sink = self._collector.sink
        if not isinstance(sink, SinkCounters):
            return []  # a sink that keeps no counters: the storage metrics are unknown, so absent
        written, dropped, rejected, buffered, errors = (
            Family(spec)
            for spec in (
                m.POINTS_WRITTEN,
                m.POINTS_DROPPED,
                m.POINTS_REJECTED,
                m.POINTS_BUFFERED,
                m.STORAGE_WRITE_ERRORS,
            )
        )
        written.add((), sink.written_lines)
        dropped.add((), sink.dropped_lines)
        rejected.add((), sink.rejected_lines)
        buffered.add((), sink.buffered_lines)
        errors.add((), sink.write_errors)
        spool = spool_families(sink.spool_stats() if isinstance(sink, SpoolGauges) else None)
        return [written, dropped, rejected, buffered, errors, *spool]

    def _notifications(self, engine: ComplianceInputs) -> list[Family]:
        delivered, failures, dropped, queued = (
            Family(spec)
            for spec in (
                m.NOTIFICATIONS_DELIVERED,
                m.NOTIFICATION_FAILURES,
                m.NOTIFICATIONS_DROPPED,
                m.NOTIFICATIONS_QUEUED,
            )
        )
        for name, stats in sorted(engine.delivery.stats().items()):
            delivered.add((name,), stats.delivered)
            failures.add((name,), stats.failed_attempts)
            dropped.add((name,), stats.dropped)
            queued.add((name,), stats.queued)
        return [delivered, failures, dropped, queued]

    def _self_metrics(self) -> list[Family]:
        build_info, part_errors = Family(m.BUILD_INFO), Family(m.COLLECT_ERRORS)
        build_info.add((self._version,), 1.0)
        with self._lock:
            errors = sorted(self._part_errors.items())
        for part, count in errors:
            part_errors.add((part,), count)
        return [build_info, part_errors]


def _last_poll_succeeded(health: TargetHealth) -> bool:
    return health.last_attempt is not None and health.last_success == health.last_attempt


def build_registry(
    collector: CollectorInputs,
    engine: ComplianceInputs | None = None,
    *,
    version: str,
    log: logging.Logger | None = None,
) -> CollectorRegistry:
    """A private registry holding only minewatch's collector (never the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MinewatchCollector(collector, engine, version=version, log=log))
    return registry
