"""The exporter's HTTP server: loopback only, a free port on request, /metrics only, and it survives failures."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
import requests
from exporter_support import Scrape
from exporter_world import ExporterWorld

from collector.compliance.alerts import AlertBook
from collector.compliance.delivery import Delivery
from collector.compliance.findings import RoundSummary
from exporters.prometheus.server import start_exporter


def test_it_serves_metrics_on_a_free_loopback_port_and_stops(world: ExporterWorld) -> None:
    server = start_exporter(world.collector, world.engine, port=0, version="9.9.9")
    try:
        assert server.port != 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        response = requests.get(server.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert Scrape(response.text).value("minewatch_build_info", version="9.9.9") == 1
        assert requests.get(server.url.removesuffix("/metrics") + "/", timeout=5).status_code == 200
        assert requests.get(server.url.removesuffix("/metrics") + "/nope", timeout=5).status_code == 404
        # Bound to loopback only, not to every interface.
        assert server._server.socket.getsockname()[0] == "127.0.0.1"
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=2)


def test_openmetrics_is_served_when_asked_for(world: ExporterWorld) -> None:
    with start_exporter(world.collector, world.engine, port=0) as server:
        response = requests.get(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5
        )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert "# UNIT minewatch_group_power_watts watts" in response.text
    assert response.text.rstrip().endswith("# EOF")


def test_a_port_in_use_is_an_error_at_start(world: ExporterWorld) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            start_exporter(world.collector, port=taken.getsockname()[1])


@dataclass
class EngineWithBrokenRounds:
    """The world's engine, except that reading its rounds raises (a bug, a half-built state)."""

    book: AlertBook
    delivery: Delivery

    @property
    def last_rounds(self) -> Mapping[str, RoundSummary]:
        raise RuntimeError("rounds are broken")


def test_a_failing_part_is_left_out_logged_and_counted_and_the_rest_served(
    world: ExporterWorld, caplog: pytest.LogCaptureFixture
) -> None:
    engine = EngineWithBrokenRounds(world.engine.book, world.engine.delivery)
    with start_exporter(world.collector, engine, port=0) as server, caplog.at_level(logging.ERROR):
        first = requests.get(server.url, timeout=5)
        second = Scrape(requests.get(server.url, timeout=5).text)
    assert first.status_code == 200
    # The parts that read the rounds are gone, whole; the others are served.
    assert second.series("minewatch_rule_status") == {}
    assert second.series("minewatch_group_compliance_status") == {}
    assert second.series("minewatch_alerts_firing") == {}
    assert second.series("minewatch_source_up") != {}
    assert second.series("minewatch_alert_notifications_delivered_total") != {}
    assert second.value("minewatch_exporter_collect_errors_total", kind="compliance") == 2
    assert second.value("minewatch_exporter_collect_errors_total", kind="alerts") == 2
    assert "rounds are broken" in caplog.text
