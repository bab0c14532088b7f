"""Test-only servers: a stub HTTP server that records requests; the real ones live in simulator.local_servers."""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulator.local_servers import (
    SYSTEM_DEPS_HINT,
    InfluxdServer,
    MissingBinary,
    ServerFailed,
    VictoriaMetricsServer,
    find_binary,
    free_port,
)

__all__ = [
    "SYSTEM_DEPS_HINT",
    "InfluxdServer",
    "MissingBinary",
    "QuietHTTPServer",
    "RecordedRequest",
    "ServerFailed",
    "StubHTTPServer",
    "StubResponse",
    "VictoriaMetricsServer",
    "find_binary",
    "free_port",
    "serving",
]


@dataclass
class RecordedRequest:
    """One request a `StubHTTPServer` received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubResponse:
    """What a `StubHTTPServer` answers: status, body, headers, and an optional delay before answering."""

    status: int = 204
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class QuietHTTPServer(ThreadingHTTPServer):
    """Clients that time out or hang up on purpose (the tests' doing) are not errors worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on a free 127.0.0.1 port by its own thread; yields the base URL, stops the server after."""
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class StubHTTPServer:
    """A tiny in-process HTTP server on a free loopback port that records requests and answers from a script.

    `responses` are used in order; the last one repeats. For checking what a client sends (auth headers,
    gzip) and how it classifies answers a real server will not produce on demand (429, 503, 401 then 204).
    """

    def __init__(self, responses: Sequence[StubResponse] = (StubResponse(),)) -> None:
        self.requests: list[RecordedRequest] = []
        self._responses = list(responses) or [StubResponse()]
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else ~40 ms per request (anchors-collector.md §7.3)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = stub._record(RecordedRequest(self.command, self.path, dict(self.headers.items()), body))
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                payload = answer.body.encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve  # noqa: N815 - names fixed by BaseHTTPRequestHandler

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: shutdown() waits for it, 0.5 s by default, per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="stub-http", daemon=True
        )

    def _record(self, request: RecordedRequest) -> StubResponse:
        with self._lock:
            self.requests.append(request)
            return self._responses.pop(0) if len(self._responses) > 1 else self._responses[0]

    def set_responses(self, responses: Sequence[StubResponse]) -> None:
        """Replace the script."""
        with self._lock:
            self._responses = list(responses) or [StubResponse()]

    def __enter__(self) -> StubHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def unique_database(node_name: str) -> str:
    """A database name unique to one test run, readable in influxd's data dir."""
    slug = re.sub(r"[^a-z0-9]+", "_", node_name.lower()).strip("_")[:40]
    return f"t_{slug}_{uuid.uuid4().hex[:8]}"
