"""Malformed answers of kinds no golden case holds, served over real HTTP to every pool and chain source, polled
by the real runner: each poll fails with a counted `bad_response`, nothing escapes, only `source_health` is
written, and the next good answer is read as usual.

The server is a loopback `http.server` that can lie: a Content-Length longer than the body, gzip that is not
gzip, bytes that are not UTF-8. Each source kind is the registry's (pools and chain feeds), set up from its
`reference-example` golden case, so a new source is covered once it has one.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from test_golden import WIRES, PoolServer, build_target
from test_golden import discover as discover_http_cases

from collector.redact import Redactor
from collector.runner import Runner
from collector.sinks.base import MemorySink
from collector.state import StateStore
from property.support import HTTP_KINDS

LOG = logging.getLogger("property.runner")


@dataclass(frozen=True)
class Hostile:
    """One lying answer: built from the golden body the endpoint would have sent."""

    name: str
    status: int
    headers: dict[str, str]
    body: Callable[[bytes], bytes]
    declared_length: Callable[[bytes], int | None] = len  # None: no Content-Length (chunked)


def _all_null(golden: bytes) -> bytes:
    def nulled(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: nulled(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [nulled(inner) for inner in value]
        return None

    return json.dumps(nulled(json.loads(golden.rstrip(b"\x00 \r\n\t")))).encode()


JSON = {"Content-Type": "application/json"}
HOSTILE = [
    Hostile("html error page with 200", 200, {"Content-Type": "text/html"}, lambda _: b"<html>Bad Gateway</html>"),
    Hostile("empty body", 200, JSON, lambda _: b""),
    Hostile("null", 200, JSON, lambda _: b"null"),
    Hostile("a JSON string", 200, JSON, lambda _: b'"ok"'),
    Hostile("a JSON number", 200, JSON, lambda _: b"3.14"),
    Hostile("an array instead of an object", 200, JSON, lambda golden: b"[" + golden + b"]"),
    Hostile("every field null", 200, JSON, _all_null),
    Hostile("gzip garbage", 200, {**JSON, "Content-Encoding": "gzip"}, lambda _: b"\x1f\x8b\x08\x00garbage" * 50),
    Hostile("gzip of garbage text", 200, {**JSON, "Content-Encoding": "gzip"}, lambda _: gzip.compress(b"{nope")),
    Hostile("Content-Length beyond the body", 200, JSON, lambda golden: golden, lambda golden: len(golden) + 500),
    Hostile("5 MB of spaces", 200, JSON, lambda _: b" " * (5 * 1024 * 1024)),
    Hostile("invalid UTF-8", 200, JSON, lambda golden: golden.replace(b'"', b'"\xff\xfe', 1)),
    Hostile("UTF-16 with BOM", 200, JSON, lambda golden: golden.decode("utf-8").encode("utf-16")),
    Hostile("deeply nested", 200, JSON, lambda _: b"[" * 100_000 + b"]" * 100_000),
    Hostile("NaN", 200, JSON, lambda _: b'{"a": NaN}'),
    Hostile(
        "chunked with a broken chunk size",
        200,
        {**JSON, "Transfer-Encoding": "chunked"},
        lambda golden: b'5\r\n{"a":\r\nzz\r\n' + golden + b"\r\n0\r\n\r\n",
        lambda _: None,
    ),
    Hostile(
        "chunked, cut before the last chunk",
        200,
        {**JSON, "Transfer-Encoding": "chunked"},
        lambda golden: f"{len(golden) + 100:x}\r\n".encode() + golden,
        lambda _: None,
    ),
]


class LyingServer:
    """Answers from the golden case, or, while `hostile` is set, with that hostile answer to every request."""

    def __init__(self, golden: PoolServer) -> None:
        self.golden = golden
        self.hostile: Hostile | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wire = server.golden.wire
                token = self.headers.get(wire.auth_header) if wire.auth_header else None
                reply = server.golden.reply(urlsplit(self.path).path, token)
                hostile = server.hostile
                if hostile is None:
                    status, headers, body, length = reply.status, {"Content-Type": reply.content_type}, reply.body, None
                else:
                    status, headers = hostile.status, hostile.headers
                    body, length = hostile.body(reply.body), hostile.declared_length(reply.body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if hostile is None or hostile.declared_length(reply.body) is not None:
                    self.send_header("Content-Length", str(len(body) if length is None else length))
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may give up on a body it refused
                    self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815 - names fixed by BaseHTTPRequestHandler

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[LyingServer]:
        thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()


def _reference_case(kind: str) -> Any:
    cases = [case for case in discover_http_cases() if case.kind == kind]
    return next((case for case in cases if case.name == "reference-example"), cases[0])


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_hostile_answers_are_counted_bad_responses(kind: str) -> None:
    case = _reference_case(kind)
    spec = case.spec
    golden = PoolServer(case.path, WIRES[kind], spec.get("coin", "BTC"), spec.get("responses", {}))
    sink, state = MemorySink(), StateStore()
    now = [float(spec["now"])]
    runner = Runner(sink, state, clock=lambda: now[0], log=LOG)
    with LyingServer(golden).running() as server, requests.Session() as session:
        session.trust_env = False
        target = build_target(case, server.url, Redactor(), session)
        failures = 0
        for hostile in [None, *HOSTILE, None]:
            server.hostile = hostile
            written = len(sink.lines)
            now[0] += target.interval_s
            result = runner.poll(target)
            lines = sink.lines[written:]
            if hostile is None:  # the good answer before and after: read as usual
                assert result.success, f"{kind}: a good answer failed: {result.message}"
                assert any(not line.startswith("source_health,") for line in lines)
                continue
            failures += 1
            what = f"{kind}, {hostile.name}"
            assert (result.success, result.error_kind) == (False, "bad_response"), f"{what}: {result}"
            assert len(lines) == 1, f"{what}: a failed poll wrote {lines}"
            assert lines[0].startswith("source_health,")
            assert 'error_kind="bad_response"' in lines[0]
            health = state.health(target.key)
            assert health.consecutive_failures == failures, what
            assert health.last_error_kind == "bad_response", what
        assert state.failures_by_kind()[target.key, "bad_response"] == len(HOSTILE)
        assert state.health(target.key).consecutive_failures == 0
