"""The simulator's HTTP server: one loopback listener serving every simulated pool, with injected faults."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from urllib.parse import parse_qsl, urlsplit

from simulator.pools.base import PoolApi, Request, Response, text_response
from simulator.pools.registry import pool_apis
from simulator.scenario import Account, Fault, Pool, Scenario, load_scenario

logger = logging.getLogger(__name__)


class _Stopping(Exception):
    """The server is shutting down while a request hangs: drop the connection without an answer."""


MAX_REQUEST_BODY = 1024 * 1024


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its SimulatorServer and the open connections (to cut them on stop)."""

    daemon_threads = True
    # The default backlog of 5 drops connections when a collector opens many at once; a dropped SYN is
    # retried only after a second, which looks like a hung pool.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], owner: SimulatorServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a Request, asks the SimulatorServer, writes the Response."""

    protocol_version = "HTTP/1.1"  # keep-alive, so clients' connection pools behave as against a real pool
    disable_nagle_algorithm = True  # small JSON answers must not wait for delayed ACKs
    server: _HttpServer

    def setup(self) -> None:
        """Register the connection so stop() can close idle keep-alive sockets."""
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        """Serve every simulated GET endpoint."""
        self._serve(b"")

    def do_POST(self) -> None:
        """Serve every simulated POST endpoint (F2Pool's JSON bodies, AntPool's forms)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        self._serve(self.rfile.read(min(max(length, 0), MAX_REQUEST_BODY)))

    def _serve(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        request = Request(
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={key.lower(): value for key, value in self.headers.items()},
            method=self.command,
            body=body,
        )
        try:
            response = self.server.owner.handle(request)
        except _Stopping:
            self.close_connection = True
            return
        self._write(response)

    def log_message(self, format: str, *args: object) -> None:
        """Access log at debug level, never on stderr (keys travel in EMCD paths)."""
        logger.debug("%s %s", self.address_string(), "request served")

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            # The client gave up (typically a timeout during a "hang" fault); nothing left to tell it.
            self.close_connection = True


class SimulatorServer:
    """Serve a scenario's Braiins and EMCD accounts on one loopback port; start()/stop() or serve_forever()."""

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        hang_seconds: float | None = None,
        allow_external: bool = False,
    ) -> None:
        if not allow_external:
            _require_loopback(host)
        self.scenario = scenario
        self._clock = clock
        self._hang_seconds = scenario.hang_seconds if hang_seconds is None else hang_seconds
        self._apis: tuple[PoolApi, ...] = pool_apis(scenario)
        self._overrides: dict[tuple[str, str], Fault | None] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._serving = threading.Event()
        self._thread: threading.Thread | None = None
        self._httpd = _HttpServer(("127.0.0.1" if host == "localhost" else host, port), self)
        self._host = host

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. "http://127.0.0.1:18400"; clients set it as the pool's base_url."""
        return f"http://{self._host}:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        """The bound TCP port (useful when constructed with port=0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Serve in a background daemon thread; returns at once."""
        if self._thread is not None:
            raise RuntimeError("simulator server already started")
        self._thread = threading.Thread(target=self.serve_forever, name=f"simulator:{self.port}", daemon=True)
        self._thread.start()
        self._serving.wait(5.0)

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() is called from another thread."""
        self._serving.set()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving, wake hanging requests, close every connection and the listening socket."""
        self._stopping.set()
        if self._serving.is_set():
            self._httpd.shutdown()
        with self._httpd.connections_lock:
            connections = list(self._httpd.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        """Start serving for the duration of a `with` block."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        self.stop()

    def set_fault(self, pool: Pool, username: str, fault: Fault | None) -> None:
        """Override the scenario's fault for one account at run time (None = healthy) until reset_faults()."""
        self.scenario.account(pool, username)  # KeyError for an account the scenario does not have
        with self._lock:
            self._overrides[(pool, username)] = fault

    def reset_faults(self) -> None:
        """Drop every set_fault() override; the scenario's faults apply again."""
        with self._lock:
            self._overrides.clear()

    def request_counts(self) -> dict[str, int]:
        """Requests that reached an account so far, keyed "<pool>:<username>" (for rate and load tests)."""
        with self._lock:
            return dict(self._counts)

    def handle(self, request: Request) -> Response:
        """Answer one request: route it, authenticate it, apply the account's fault, render the truth."""
        t = math.floor(self._clock())
        for api in self._apis:
            route = api.route(request)
            if route is not None:
                break
        else:
            return text_response("not found\n", 404)
        account = route.account
        if account is None:
            return api.auth_error()
        fault = self._fault(account, t)
        if fault == "auth":
            return api.auth_error()
        if fault == "server_error":
            return text_response("Internal Server Error\n", 500)
        if fault == "rate_limit":
            return api.rate_limited()
        if fault == "hang":
            # Event.wait rather than sleep so stop() releases the thread at once.
            if self._stopping.wait(self._hang_seconds):
                raise _Stopping
            t = math.floor(self._clock())
        try:
            response = api.render(route, t)
        except Exception:
            logger.exception("simulator failed to render %s for %s:%s", route.endpoint, account.pool, account.username)
            return text_response("Internal Server Error\n", 500)
        if fault == "malformed":
            # Same status and headers, JSON cut in half: the client must report a bad response, not crash.
            response = Response(
                response.status, response.body[: len(response.body) // 2], response.content_type, response.headers
            )
        return response

    def _fault(self, account: Account, t: int) -> Fault | None:
        """Count the request, then return the run-time override if any, else the scenario's fault at `t`."""
        with self._lock:
            counter = f"{account.pool}:{account.username}"
            self._counts[counter] = self._counts.get(counter, 0) + 1
            if (account.pool, account.username) in self._overrides:
                return self._overrides[(account.pool, account.username)]
        return account.fault_at(t)


def run(scenario_path: Path, host: str, port: int, *, allow_external: bool = False) -> None:
    """Load the scenario and serve it until SIGINT or SIGTERM, then shut down cleanly (main thread only).

    `allow_external` lets a container listen on 0.0.0.0 (its published port stays on the host's loopback).
    """
    scenario = load_scenario(scenario_path)
    server = SimulatorServer(scenario, host=host, port=port, allow_external=allow_external)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        pools = sorted({a.pool for a in scenario.accounts})
        print(
            f"simulator: serving {len(scenario.accounts)} accounts ({', '.join(pools)}) on {server.url}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass  # short waits so the signal handler runs promptly on every platform
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"simulator host must be a loopback IPv4 address, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"simulator host must be a loopback IPv4 address, got {host!r}")
