"""What every end-to-end scenario test does: poll a config once at a fixed time into InfluxDB, read rows back."""

from __future__ import annotations

import logging

from collector.adapters.registry import source_registry
from collector.app import DatabaseSetup, build_collector, build_influx_sink, collect_once
from collector.config import AppConfig
from collector.redact import Redactor
from collector.runner import PollResult
from collector.sinks.influx import V1Transport

LOG = logging.getLogger("test")
# The failure kind each simulated fault must be counted as (wrong_types / missing_fields may also give a
# partial poll that writes only true values: tests/scenario/test_faults_against_truth.py).
FAULT_KINDS = {
    "auth": "auth",
    "server_error": "server_error",
    "rate_limit": "rate_limited",
    "malformed": "bad_response",
    "hang": "timeout",
    "latency": "timeout",
    "refused": "unreachable",
    "truncated": "bad_response",
}


def poll_once(config: AppConfig, now: int) -> list[PollResult]:
    """Poll every account of `config` once at unix time `now` and wait until InfluxDB has taken every point."""
    redactor = Redactor()
    sink = build_influx_sink(config.main.influxdb, redactor, LOG)
    assert DatabaseSetup(sink, LOG)()
    collector = build_collector(config, source_registry(), sink, redactor=redactor, log=LOG, clock=lambda: now)
    results = collect_once(collector)
    assert sink.flush(timeout_s=30), sink.last_error
    sink.close()
    return results


def problems(results: list[PollResult], *, partial: bool = False) -> list[str]:
    """`key: kind: message` of each failed poll (and, with `partial`, each partial one)."""
    return [f"{r.key}: {r.error_kind}: {r.message}" for r in results if not r.success or (partial and r.error_kind)]


def rows(db: V1Transport, influxql: str) -> list[dict[str, object]]:
    """Every row of every series the query returns, with the series' tags merged in."""
    return [record | series.tags for series in db.query(influxql) for record in series.records()]
