"""A real Prometheus (Debian's) scrapes the exporter every second and evaluates the generated rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

import pytest
import requests
from demo_config import ROOT
from exporter_support import Scrape
from exporter_world import HELD_RULE, ExporterWorld

from exporters.prometheus.generate import RULES_YML
from exporters.prometheus.rules import alert_rules
from exporters.prometheus.server import ExporterServer, start_exporter
from simulator.local_servers import MissingBinary, PrometheusServer, ServerFailed

T = TypeVar("T")


@pytest.fixture(scope="module")
def exporter(world: ExporterWorld) -> Iterator[ExporterServer]:
    with start_exporter(world.collector, world.engine, port=0) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: ExporterServer) -> Iterator[PrometheusServer]:
    try:
        server = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"),
            scrape_targets={"minewatch": [f"127.0.0.1:{exporter.port}"]},
            rule_files=[ROOT / RULES_YML],
            interval_s=1.0,
        )
        server.start()
    except (MissingBinary, ServerFailed) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def eventually(what: str, probe: Callable[[], T | None], timeout_s: float = 20.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def instant(prometheus: PrometheusServer, promql: str) -> float | None:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_prometheus_scrapes_the_exporter_and_stores_its_values(
    prometheus: PrometheusServer, exporter: ExporterServer
) -> None:
    eventually("up{job=minewatch} == 1", lambda: instant(prometheus, 'up{job="minewatch"} == 1'))
    [target] = prometheus.api("targets")["activeTargets"]
    assert target["health"] == "up", target.get("lastError")
    assert target["labels"]["instance"] == f"127.0.0.1:{exporter.port}"
    ours = Scrape(requests.get(exporter.url, timeout=5).text)
    for name, labels in (
        ("minewatch_group_hashrate_quota_hashes_per_second", {"group_id": "baikal"}),
        (
            "minewatch_pool_account_hashrate_hashes_per_second",
            {"group_id": "baikal", "pool": "emcd", "target": "baikal_x"},
        ),
        (
            "minewatch_rule_status",
            {"group_id": "baikal", "rule": "pool_whitelist", "severity": "critical", "kind": "permit"},
        ),
    ):
        expected = ours.value(name, **labels)
        assert expected is not None, name
        selector = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        assert eventually(selector, partial(instant, prometheus, selector)) == expected


def test_the_watchdog_and_the_violation_alerts_are_active(prometheus: PrometheusServer) -> None:
    def alerts_named(name: str) -> list[dict[str, object]] | None:
        found = [a for a in prometheus.alerts() if a["labels"]["alertname"] == name]
        return found or None

    [watchdog] = eventually("the Watchdog alert", lambda: alerts_named("MinewatchWatchdog"))
    assert watchdog["state"] == "firing"
    violations = eventually("a violation alert", lambda: alerts_named("MinewatchGroupViolation"))
    paged = {(a["labels"]["group_id"], a["labels"]["rule"]) for a in violations}  # type: ignore[index]
    assert ("baikal", "pool_whitelist") in paged
    # baikal's blackout violation is still within its hold time in minewatch (pending): Prometheus must not page.
    assert ("baikal", HELD_RULE) not in paged
    # The exporter is up and its sources alive: no dead-man's switch.
    names = {a["labels"]["alertname"] for a in prometheus.alerts()}
    assert not names & {"MinewatchExporterDown", "MinewatchExporterAbsent", "MinewatchAllSourcesStale"}


def test_the_rules_loaded_are_the_generated_ones(prometheus: PrometheusServer) -> None:
    groups = eventually("rule groups", lambda: prometheus.api("rules")["groups"] or None)
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert "MinewatchAllSourcesStale" in loaded
    assert len(loaded) == len(alert_rules())
    assert all(rule["health"] != "err" for group in groups for rule in group["rules"])
