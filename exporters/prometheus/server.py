"""Serving the exporter: `/metrics` on one address (loopback by default) from a daemon thread.

prometheus_client's WSGI app renders the private registry (text format, or OpenMetrics when the scraper asks
for it); a small router in front keeps it to `/metrics` and answers `/` with a pointer, so a typo'd path is a
404 rather than a scrape.

With `basic_auth=(username, password)` every request needs HTTP basic auth: a missing or wrong `Authorization`
header gets a 401 with `WWW-Authenticate: Basic realm="minewatch"`, the credentials are compared in constant
time (`hmac.compare_digest` of SHA-256 digests, so not even their length leaks), and each refusal is counted
in `minewatch_exporter_auth_failures_total{reason}` (`missing` or `invalid`). Credentials are never logged.
Serving a non-loopback address without basic auth works but logs a warning; so does basic auth on a
non-loopback address (plain HTTP: the password travels in clear text). The password is read once at start-up:
rotating it needs a restart.
"""

from __future__ import annotations

import binascii
import hmac
import logging
import socket
import threading
from base64 import b64decode
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from ipaddress import ip_address
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as PrometheusCollector
from prometheus_client.registry import CollectorRegistry

from exporters.prometheus.catalogue import EXPORTER_AUTH_FAILURES
from exporters.prometheus.collector import build_registry
from exporters.prometheus.families import Family
from exporters.prometheus.inputs import CollectorInputs, ComplianceInputs

METRICS_PATH = "/metrics"
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9108
AUTH_REALM = "minewatch"
AUTH_FAILURE_REASONS = ("missing", "invalid")

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


class BasicAuth(PrometheusCollector):
    """Checks `Authorization: Basic ...` against one username and password; counts the refusals it makes."""

    def __init__(self, username: str, password: str) -> None:
        if not username or not password or ":" in username:
            raise ValueError("basic auth needs a username without ':' and a non-empty password")
        # Digests of equal length are compared, so neither the content nor the length of the credentials leaks.
        self._expected = sha256(f"{username}:{password}".encode()).digest()
        self._lock = threading.Lock()
        self._failures = dict.fromkeys(AUTH_FAILURE_REASONS, 0)

    def check(self, header: str | None) -> str | None:
        """None if `header` carries the right credentials, else why not (`missing` or `invalid`), counted."""
        reason = self._refusal(header)
        if reason is not None:
            with self._lock:
                self._failures[reason] += 1
        return reason

    def _refusal(self, header: str | None) -> str | None:
        if not header:
            return "missing"
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return "invalid"
        try:
            given = b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return "invalid"
        # Constant time: both usernames and passwords in one go, as SHA-256 digests (equal lengths whatever is sent).
        return None if hmac.compare_digest(sha256(given).digest(), self._expected) else "invalid"

    def failures(self) -> dict[str, int]:
        """Refusals so far by reason."""
        with self._lock:
            return dict(self._failures)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = Family(EXPORTER_AUTH_FAILURES)
        for reason, count in self.failures().items():
            family.add((reason,), count)
        yield family.metric


def _authenticated(app: WsgiApp, auth: BasicAuth) -> WsgiApp:
    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if auth.check(environ.get("HTTP_AUTHORIZATION")) is None:
            return app(environ, start_response)
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("WWW-Authenticate", f'Basic realm="{AUTH_REALM}", charset="UTF-8"'),
        ]
        start_response("401 Unauthorized", headers)
        return [b"unauthorized: this exporter needs basic auth\n"]

    return guarded


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
    basic_auth: tuple[str, str] | None = None,
    log: logging.Logger | None = None,
) -> ExporterServer:
    """Serve `collector`'s (and `engine`'s) last state on http://address:port/metrics from a daemon thread.

    Binds `address` only (loopback unless the config says otherwise); port 0 picks a free port, see `.port`.
    `basic_auth=(username, password)` makes every request need those credentials (401 otherwise, counted).
    Raises OSError when the address cannot be bound, ValueError for an empty username or password.
    """
    log = log or logging.getLogger("minewatch.exporter")
    registry = build_registry(collector, engine, version=version or minewatch_version(), log=log)
    app = _routed(make_wsgi_app(registry))
    loopback = ip_address(address).is_loopback
    if basic_auth is not None:
        auth = BasicAuth(*basic_auth)
        registry.register(auth)
        app = _authenticated(app, auth)
        if not loopback:
            log.warning(
                "the Prometheus exporter listens on %s with basic auth over plain HTTP: the password crosses the "
                "network in clear text with every scrape (serve it through a TLS proxy, or listen on loopback)",
                address,
            )
    elif not loopback:
        log.warning(
            "the Prometheus exporter listens on %s without basic auth: anyone who can reach the port can read "
            "the metrics (set [exporter] basic_auth_username and basic_auth_password_env or _file)",
            address,
        )
    server = make_server(address, port, app, _server_class(address), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="prometheus-exporter", daemon=True)
    thread.start()
    bound_port = int(server.server_address[1])
    log.info(
        "Prometheus exporter on http://%s:%d%s%s",
        address,
        bound_port,
        METRICS_PATH,
        " (basic auth)" if basic_auth is not None else "",
    )
    return ExporterServer(address, bound_port, registry, server, thread)
