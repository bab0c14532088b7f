"""The simulated miners' TCP server: one loopback listener per miner, one accept thread, a thread per connection.

Each miner speaks its dialect of the cgminer-family API (simulator/miners/dialects.py): one request per
connection, the reply, then the server closes (reference §9.1). A powered-off miner, or one with the `refused`
fault, keeps its port bound but not listening, so connects get ECONNREFUSED and the port is never lost to
another process; it listens again when the fault ends or is cleared. Every accepted connection is served in its
own short-lived daemon thread, so a `hang` or `latency` on one miner never delays another.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from simulator.loopback import require_loopback
from simulator.miners import dialects
from simulator.miners.truth import miner_truth, start_ts
from simulator.scenario import MINER_FAULTS, Fault, Miner, Scenario

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 2.0  # a client that sends no complete request in this time gets whatever arrived answered
WRITE_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 1.0
MAX_REQUEST_BYTES = 64 * 1024
LISTEN_BACKLOG = 128
_SELECT_TIMEOUT_S = 0.1


@dataclass(slots=True)
class _Listener:
    """One miner's port: a socket bound for the fleet's lifetime, listening only while the miner answers."""

    miner: Miner
    sock: socket.socket | None
    port: int
    powered_from: int
    listening: bool = False


class MinerFleet:
    """Serve every miner of a scenario on its own loopback port; start()/stop() or use as a context manager."""

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        base_port: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        allow_external: bool = False,
    ) -> None:
        """Bind every miner's port now (`base_port` 0: free ephemeral ports; N: N, N+1, ... in scenario order)."""
        if not allow_external:
            require_loopback(host, "miner fleet")
        self.scenario = scenario
        self._host = "127.0.0.1" if host == "localhost" else host
        self._clock = clock
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._overrides: dict[str, Fault | None] = {}
        self._counts: dict[str, int] = {m.name: 0 for m in scenario.miners}
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, _Listener] = {}
        try:
            for index, miner in enumerate(scenario.miners):
                sock = self._bind(0 if base_port == 0 else base_port + index)
                port = int(sock.getsockname()[1])
                self._listeners[miner.name] = _Listener(miner, sock, port, start_ts(scenario, miner))
        except BaseException:
            self._close_all()
            raise

    # --- lifecycle ---

    def start(self) -> None:
        """Open the listeners of every miner that is up now and serve in a background daemon thread."""
        if self._thread is not None:
            raise RuntimeError("miner fleet already started")
        with self._lock:
            self._reconcile(self._clock())
        self._thread = threading.Thread(target=self._accept_loop, name="miner-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close every listener, wake hanging and delayed requests, cut open connections, join the threads."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            connections = list(self._connections)
            handlers = list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 2.0
        for handler in handlers:
            handler.join(timeout=max(deadline - time.monotonic(), 0.0))
        self._close_all()

    def __enter__(self) -> MinerFleet:
        """Start serving for the duration of a `with` block."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        self.stop()

    # --- control and inspection ---

    def addresses(self) -> dict[str, tuple[str, int]]:
        """Every miner's (host, port), by miner name, in scenario order (valid from construction on)."""
        return {name: (self._host, listener.port) for name, listener in self._listeners.items()}

    def set_fault(self, name: str, fault: Fault | None) -> None:
        """Override the scenario's fault for one miner (None = healthy) until reset_faults(); takes effect now."""
        if name not in self._listeners:
            raise KeyError(name)
        if fault is not None and fault not in MINER_FAULTS:
            raise ValueError(f"not a miner fault: {fault!r} (one of {', '.join(MINER_FAULTS)})")
        with self._lock:
            self._overrides[name] = fault
            if self._thread is not None:
                self._reconcile(self._clock())

    def reset_faults(self) -> None:
        """Drop every set_fault() override; the scenario's faults apply again."""
        with self._lock:
            self._overrides.clear()
            if self._thread is not None:
                self._reconcile(self._clock())

    def request_counts(self) -> dict[str, int]:
        """Connections accepted so far, by miner name (refused connects never reach a miner)."""
        with self._lock:
            return dict(self._counts)

    def fault_of(self, name: str, t: float) -> Fault | None:
        """The fault miner `name` has at `t`: the run-time override if any, else the scenario's schedule."""
        with self._lock:
            if name in self._overrides:
                return self._overrides[name]
        return self._listeners[name].miner.fault_at(t)

    # --- listeners ---

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Rebinding the same port after a `refused` period must not wait for TIME_WAIT connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reconcile(self, now: float) -> None:
        """Listen on exactly the ports of miners that are powered on and not `refused` at `now` (lock held)."""
        if self._stopping.is_set():
            return
        for name, listener in self._listeners.items():
            up = listener.miner.online_at(now) and now >= listener.powered_from
            wanted = up and self.fault_of(name, now) != "refused"
            if wanted and not listener.listening:
                self._open(listener)
            elif not wanted and listener.listening:
                self._shut(listener)

    def _open(self, listener: _Listener) -> None:
        try:
            if listener.sock is None:
                listener.sock = self._bind(listener.port)
            listener.sock.listen(LISTEN_BACKLOG)
            listener.sock.setblocking(False)
            self._selector.register(listener.sock, selectors.EVENT_READ, listener)
            listener.listening = True
        except OSError:
            logger.warning("miner %s: cannot listen on port %d; retrying", listener.miner.name, listener.port)

    def _shut(self, listener: _Listener) -> None:
        # A listening socket cannot stop listening: close it and keep the port with a fresh bound socket.
        if listener.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(listener.sock)
            listener.sock.close()
        listener.listening = False
        try:
            listener.sock = self._bind(listener.port)
        except OSError:
            listener.sock = None  # _open() binds again

    def _close_all(self) -> None:
        with self._lock:
            for listener in self._listeners.values():
                if listener.sock is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(listener.sock)
                    listener.sock.close()
                    listener.sock = None
                listener.listening = False
            self._selector.close()

    # --- serving ---

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._reconcile(self._clock())
            try:
                events = self._selector.select(timeout=_SELECT_TIMEOUT_S)
            except OSError:
                continue  # a listener closed by set_fault() while select() waited on it
            for key, _ in events:
                listener: _Listener = key.data
                with self._lock:
                    if not listener.listening or key.fileobj is not listener.sock or listener.sock is None:
                        continue
                    try:
                        connection, _ = listener.sock.accept()
                    except OSError:
                        continue
                    self._counts[listener.miner.name] += 1
                    self._connections.add(connection)
                    handler = threading.Thread(
                        target=self._serve,
                        args=(listener.miner, connection),
                        name=f"miner:{listener.port}",
                        daemon=True,
                    )
                    self._handlers.add(handler)
                handler.start()

    def _serve(self, miner: Miner, connection: socket.socket) -> None:
        try:
            connection.setblocking(True)
            request = self._read(connection)
            t = math.floor(self._clock())
            fault = self.fault_of(miner.name, t)
            if fault == "hang":
                # Event.wait rather than sleep so stop() releases the thread at once; then close unanswered.
                self._stopping.wait(self.scenario.hang_seconds)
                return
            if fault == "latency":
                if self._stopping.wait(self.scenario.latency_seconds):
                    return
                t = math.floor(self._clock())
            mode: dialects.Mode = "normal"
            if fault == "wrong_types" or fault == "missing_fields":  # noqa: PLR1714 - narrows the type
                mode = fault
            reply = dialects.render(miner_truth(self.scenario, miner, t), request, mode)
            if fault == "malformed":
                reply = dialects.malformed(reply)
            elif fault == "truncated":
                reply = dialects.truncated(reply)
            connection.settimeout(WRITE_TIMEOUT_S)
            connection.sendall(reply)
            self._finish(connection)
        except OSError:
            pass  # the client went away (typically its own timeout during a fault)
        except Exception:
            logger.exception("miner %s: failed to answer", miner.name)
        finally:
            with self._lock:
                self._connections.discard(connection)
                self._handlers.discard(threading.current_thread())
            connection.close()

    @staticmethod
    def _read(connection: socket.socket) -> dialects.Request:
        """Read one request: until it is complete, the client half-closes, or READ_TIMEOUT_S passes."""
        buffer = b""
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection.settimeout(remaining)
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            buffer += chunk
            request = dialects.parse_request(buffer, eof=False)
            if request is not None:
                return request
            if len(buffer) > MAX_REQUEST_BYTES:
                break
        request = dialects.parse_request(buffer, eof=True)
        assert request is not None  # at eof parse_request always decides
        return request

    @staticmethod
    def _finish(connection: socket.socket) -> None:
        """Send FIN, then drain what the client still sends: closing with unread bytes would reset the reply."""
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(DRAIN_TIMEOUT_S)
        with contextlib.suppress(OSError):
            while connection.recv(4096):
                pass
