"""Serving the exporter: `/metrics` on one address (loopback by default) from a daemon thread.

prometheus_client's WSGI app renders the private registry (text format, or OpenMetrics when the scraper asks
for it); a small router in front keeps it to `/metrics` and answers `/` with a pointer, so a typo'd path is a
404 rather than a scrape.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from ipaddress import ip_address
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from exporters.prometheus.collector import build_registry
from exporters.prometheus.inputs import CollectorInputs, ComplianceInputs

METRICS_PATH = "/metrics"
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9108

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def minewatch_version() -> str:
    """The installed package's version ("unknown" when run from a tree that is not installed)."""
    try:
        return package_version("minewatch")
    except PackageNotFoundError:
        return "unknown"


def render_scrape(registry: CollectorRegistry) -> str:
    """What a scrape of `registry` returns, in the Prometheus text format (for tests and `promtool`)."""
    return generate_latest(registry).decode("utf-8")


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _routed(metrics: WsgiApp) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return metrics(environ, start_response)
        if path == "/":
            body = b'<html><body><a href="/metrics">minewatch metrics</a></body></html>\n'
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]

    return app


def _server_class(address: str) -> type[WSGIServer]:
    """The threading server for the address's family (an IPv6 listen address needs AF_INET6)."""
    family = socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET

    class Server(ThreadingWSGIServer):
        address_family = family

    return Server


@dataclass
class ExporterServer:
    """A running exporter: `port` is the bound port (the free one picked when asked for port 0)."""

    address: str
    port: int
    registry: CollectorRegistry
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}{METRICS_PATH}"

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5.0)
        self._server.server_close()

    def __enter__(self) -> ExporterServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_exporter(
    collector: CollectorInputs,
    engine: ComplianceInputs | None = None,
    *,
    address: str = DEFAULT_ADDRESS,
    port: int = DEFAULT_PORT,
    version: str | None = None,
    log: logging.Logger | None = None,
) -> ExporterServer:
    """Serve `collector`'s (and `engine`'s) last state on http://address:port/metrics from a daemon thread.

    Binds `address` only (loopback unless the config says otherwise); port 0 picks a free port, see `.port`.
    Raises OSError when the address cannot be bound.
    """
    log = log or logging.getLogger("minewatch.exporter")
    registry = build_registry(collector, engine, version=version or minewatch_version(), log=log)
    server = make_server(address, port, _routed(make_wsgi_app(registry)), _server_class(address), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="prometheus-exporter", daemon=True)
    thread.start()
    bound_port = int(server.server_address[1])
    log.info("Prometheus exporter on http://%s:%d%s", address, bound_port, METRICS_PATH)
    return ExporterServer(address, bound_port, registry, server, thread)
