"""The simulator's HTTP server: one loopback listener serving every simulated pool, with injected faults."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from simulator.loopback import require_loopback
from simulator.miners.fleet import MinerFleet
from simulator.mutations import MUTATIONS, SHAPES, mutate_response
from simulator.network import NetworkApi, network_apis
from simulator.pools.base import PoolApi, Request, Response, Route, text_response
from simulator.pools.registry import pool_apis
from simulator.scenario import Fault, Pool, Scenario, load_scenario

logger = logging.getLogger(__name__)


class _Stopping(Exception):
    """The server is shutting down while a request hangs: drop the connection without an answer."""


class _Reset(Exception):
    """The `refused` fault: reset the connection (RST) instead of answering."""


class _CutShort(Exception):
    """The `truncated` fault: send the headers with the full Content-Length, half the body, then close."""

    def __init__(self, response: Response) -> None:
        super().__init__("truncated")
        self.response = response


# SO_LINGER on, timeout 0: close() discards unsent data and sends RST, so the client sees ECONNRESET.
_LINGER_RESET = struct.pack("ii", 1, 0)
NETWORK_ACCOUNT = "network"  # the "username" under which a network API's faults and requests are kept


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

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops its kept-alive connection is routine; anything else is worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s closed its connection", client_address)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


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
        except _Reset:
            self._reset()
            return
        except _CutShort as cut:
            self._write(cut.response, cut_short=True)
            return
        self._write(response)

    def log_message(self, format: str, *args: object) -> None:
        """Access log at debug level, never on stderr (keys travel in EMCD paths)."""
        logger.debug("%s %s", self.address_string(), "request served")

    def _write(self, response: Response, *, cut_short: bool = False) -> None:
        """Send the response; `cut_short` announces the whole body but sends half of it and closes."""
        body = response.body[: len(response.body) // 2] if cut_short else response.body
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The client gave up (typically a timeout during a "hang" fault); nothing left to tell it.
            self.close_connection = True
        if cut_short:
            # Closing is what tells the client the body ended before its Content-Length.
            self.close_connection = True

    def _reset(self) -> None:
        """Close the connection with an RST and no answer.

        The socket is only marked closed here; the real close (which sends the RST) happens when finish()
        closes rfile, before socketserver's shutdown(SHUT_WR) could send a FIN first.
        """
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.connection.close()


class SimulatorServer:
    """Serve a scenario's pool accounts and network APIs on one loopback port; start()/stop() or serve_forever().

    Faults (per account, or per network API under the username "network"):

    * auth, rate_limit: the API's own rejection (`auth_error()`, `rate_limited()` with Retry-After);
    * server_error: HTTP 500 text;
    * malformed: the right status and headers, JSON cut in half (Content-Length matches what is sent);
    * hang: no answer for `hang_seconds`, then the answer (a client with a shorter timeout times out);
    * latency: the correct answer after `latency_seconds`;
    * refused: the connection is reset (RST) without any HTTP answer;
    * truncated: headers with the full Content-Length, half the body, then the connection closes;
    * wrong_types / missing_fields: the normal answer with its data part mutated (`simulator.mutations`).
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        hang_seconds: float | None = None,
        latency_seconds: float | None = None,
        allow_external: bool = False,
    ) -> None:
        if not allow_external:
            require_loopback(host, "simulator")
        self.scenario = scenario
        self._clock = clock
        self._hang_seconds = scenario.hang_seconds if hang_seconds is None else hang_seconds
        self._latency_seconds = scenario.latency_seconds if latency_seconds is None else latency_seconds
        self._apis: tuple[PoolApi, ...] = pool_apis(scenario)
        self._network_apis: tuple[NetworkApi, ...] = network_apis(scenario)
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

    def set_network_fault(self, api: str, fault: Fault | None) -> None:
        """Override a network API's fault (`api` e.g. "mempool"; None = healthy) until reset_faults()."""
        if api not in {a.name for a in self._network_apis}:
            raise KeyError(f"{api}:{NETWORK_ACCOUNT}")
        with self._lock:
            self._overrides[(api, NETWORK_ACCOUNT)] = fault

    def reset_faults(self) -> None:
        """Drop every set_fault() override; the scenario's faults apply again."""
        with self._lock:
            self._overrides.clear()

    def request_counts(self) -> dict[str, int]:
        """Requests that reached an account so far, keyed "<pool>:<username>" (network APIs: "<api>:network")."""
        with self._lock:
            return dict(self._counts)

    def handle(self, request: Request) -> Response:
        """Answer one request: route it, authenticate it, apply the account's fault, render the truth.

        The `refused` and `truncated` faults cannot be expressed as a Response: they raise private exceptions
        that the HTTP handler turns into a reset connection or a body cut short.
        """
        t = math.floor(self._clock())
        found = self._route(request)
        if found is None:
            return text_response("not found\n", 404)
        api, route, owner = found
        if owner is None:
            return api.auth_error()
        fault = self._fault(owner, t)
        if fault == "refused":
            # One listener serves every account, so it cannot refuse the TCP connection itself for one of
            # them (the account is known only once the request is read): the closest is an RST instead of
            # an answer, which a client sees as ECONNRESET, as when a real pool's front end drops it.
            raise _Reset
        if fault == "auth":
            return api.auth_error()
        if fault == "server_error":
            return text_response("Internal Server Error\n", 500)
        if fault == "rate_limit":
            return api.rate_limited()
        if fault in ("hang", "latency"):
            # Event.wait rather than sleep so stop() releases the thread at once.
            if self._stopping.wait(self._hang_seconds if fault == "hang" else self._latency_seconds):
                raise _Stopping
            t = math.floor(self._clock())
        try:
            response = api.render(route, t)
        except Exception:
            logger.exception("simulator failed to render %s for %s:%s", route.endpoint, *owner)
            return text_response("Internal Server Error\n", 500)
        if fault == "malformed":
            # Same status and headers, JSON cut in half: the client must report a bad response, not crash.
            response = Response(
                response.status, response.body[: len(response.body) // 2], response.content_type, response.headers
            )
        elif fault == "truncated":
            raise _CutShort(response)
        elif fault in MUTATIONS:
            response = mutate_response(response, fault, SHAPES[owner[0]])
        return response

    def _route(self, request: Request) -> tuple[PoolApi | NetworkApi, Route, tuple[str, str] | None] | None:
        """The API claiming `request`, its route and whose faults apply: (pool, username), None if unknown."""
        for network in self._network_apis:
            route = network.route(request)
            if route is not None:
                return network, route, (network.name, NETWORK_ACCOUNT)
        for api in self._apis:
            route = api.route(request)
            if route is not None:
                account = route.account
                return api, route, None if account is None else (account.pool, account.username)
        return None

    def _fault(self, owner: tuple[str, str], t: int) -> Fault | None:
        """Count the request, then return the run-time override if any, else the scenario's fault at `t`."""
        with self._lock:
            self._counts[":".join(owner)] = self._counts.get(":".join(owner), 0) + 1
            if owner in self._overrides:
                return self._overrides[owner]
        network = next((a for a in self._network_apis if (a.name, NETWORK_ACCOUNT) == owner), None)
        if network is not None:
            return network.fault_at(t)
        pool, username = owner
        return self.scenario.account(cast(Pool, pool), username).fault_at(t)


def run(scenario_path: Path, host: str, port: int, *, allow_external: bool = False) -> None:
    """Load the scenario and serve it until SIGINT or SIGTERM, then shut down cleanly (main thread only).

    The scenario's miners listen on the ports after `port` (port + 1, + 2, ... in scenario order).
    `allow_external` lets a container listen on 0.0.0.0 (its published port stays on the host's loopback).
    """
    scenario = load_scenario(scenario_path)
    server = SimulatorServer(scenario, host=host, port=port, allow_external=allow_external)
    fleet = (
        MinerFleet(scenario, host=host, base_port=port + 1, allow_external=allow_external) if scenario.miners else None
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        pools = sorted({a.pool for a in scenario.accounts})
        network = " and mempool.space (/api)" if scenario.network is not None else ""
        print(
            f"simulator: serving {len(scenario.accounts)} accounts ({', '.join(pools)}){network} on {server.url}",
            file=sys.stderr,
            flush=True,
        )
        if fleet is not None:
            fleet.start()
            print(
                f"simulator: serving {len(scenario.miners)} miners on {host}:{port + 1}-{port + len(scenario.miners)}",
                file=sys.stderr,
                flush=True,
            )
        while not stop.wait(0.5):
            pass  # short waits so the signal handler runs promptly on every platform
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
