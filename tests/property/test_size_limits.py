"""Oversized responses are cut off at `schedule.max_response_bytes`, read in chunks, and counted as bad_response.

Real loopback servers send an endless body (an HTTP pool answering with a 1 GB Content-Length, a miner that
never stops talking). The targets are built from a config by the app's own builders, so the limit travels
from the TOML to the HTTP client and to the miner RPC client. The poll must fail as `bad_response`, be
counted in the state store, stop reading soon after the limit (the server sees the connection go away long
before it has sent everything) and allocate about the limit, not the body.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import socketserver
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from servers import StubHTTPServer, StubResponse, serving

from collector.adapters.http import HttpClient
from collector.adapters.registry import source_registry
from collector.app import build_fleets, build_targets
from collector.config import AppConfig, ScheduleConfig, load_config
from collector.errors import BadResponse, StorageError
from collector.redact import Redactor
from collector.runner import Runner
from collector.sinks import influx
from collector.sinks.base import MemorySink
from collector.state import StateStore

GOOD = Path(__file__).parent.parent / "configs" / "good"
LIMIT = 64 * 1024  # the smallest limit the config accepts
CHUNK = b" " * (64 * 1024)
ENDLESS = 512 * 1024 * 1024  # what the servers would send if nobody stopped reading
NOW = 1_780_000_000.0
LOG = logging.getLogger("property.size")


class Sent:
    """Bytes a server managed to send before the client went away."""

    def __init__(self) -> None:
        self.bytes = 0
        self.done = threading.Event()


def _pour(write: Any, sent: Sent, prefix: bytes) -> None:
    try:
        write(prefix)
        sent.bytes += len(prefix)
        while sent.bytes < ENDLESS:
            write(CHUNK)
            sent.bytes += len(CHUNK)
    except OSError:
        pass  # the client hung up: what we want
    finally:
        sent.done.set()


@contextmanager
def endless_http() -> Iterator[tuple[str, Sent]]:
    sent = Sent()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(ENDLESS))
            self.end_headers()
            _pour(self.wfile.write, sent, b'{"btc": "')

        do_GET = do_POST = _serve  # noqa: N815 - names fixed by BaseHTTPRequestHandler

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Handler) as url:
        yield url, sent


@contextmanager
def endless_miner() -> Iterator[tuple[int, Sent]]:
    sent = Sent()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(4096):
                pass
            _pour(self.request.sendall, sent, b'{"STATUS":[{"STATUS":"S","Msg":"')

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), sent
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, *, pool_url: str, miner_port: int) -> AppConfig:
    root = tmp_path / "config"
    shutil.copytree(GOOD, root)
    main = root / "minewatch.toml"
    main.write_text(main.read_text().replace("workers = 4\n", f"workers = 4\nmax_response_bytes = {LIMIT}\n"))
    alpha = root / "groups" / "alpha.toml"
    text = alpha.read_text().replace('base_url = "http://127.0.0.1:9"', f'base_url = "{pool_url}"')
    start = text.index("miners = [")
    end = text.index("\n", start)
    alpha.write_text(text[:start] + f'miners = ["127.0.0.1:{miner_port}"]' + text[end:])
    return load_config(main, source_registry(), redactor=Redactor(), environ={})


def _poll_measured(target: Any) -> tuple[Any, StateStore, int]:
    sink, state = MemorySink(), StateStore()
    runner = Runner(sink, state, clock=lambda: NOW, log=LOG)
    tracemalloc.start()
    try:
        result = runner.poll(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sink.lines) == 1
    assert sink.lines[0].startswith("source_health,")
    assert 'error_kind="bad_response"' in sink.lines[0]
    return result, state, peak


def test_the_limit_is_validated() -> None:
    assert ScheduleConfig().max_response_bytes == 16 * 1024 * 1024
    for bad in (1024, 2 * 1024**3, "big", True):
        with pytest.raises(ValidationError, match="max_response_bytes"):
            ScheduleConfig.model_validate({"max_response_bytes": bad})


def test_an_endless_http_body_is_cut_off(tmp_path: Path) -> None:
    with endless_http() as (url, sent), endless_miner() as (port, _):
        config = _config(tmp_path, pool_url=url, miner_port=port)
        assert config.main.schedule.max_response_bytes == LIMIT
        targets = build_targets(
            config, config.groups, source_registry(), redactor=Redactor(), clock=lambda: NOW, log=LOG
        )
        target = next(t for t in targets if t.account.kind == "braiins")
        result, state, peak = _poll_measured(target)
        assert (result.success, result.error_kind) == (False, "bad_response"), result.message
        assert f"larger than {LIMIT} bytes" in (result.message or "")
        assert state.health(target.key).consecutive_failures == 1
        assert state.health(target.key).last_error_kind == "bad_response"
        assert peak < 16 * LIMIT, f"{peak} bytes allocated to read a body cut off at {LIMIT}"
        assert sent.done.wait(10), "the server is still sending: the client never hung up"
        assert sent.bytes < ENDLESS // 8, f"the client read on: the server sent {sent.bytes} bytes"


def test_an_endless_miner_reply_is_cut_off(tmp_path: Path) -> None:
    with endless_http() as (url, _), endless_miner() as (port, sent):
        config = _config(tmp_path, pool_url=url, miner_port=port)
        fleets = build_fleets(config, config.groups, source_registry(), clock=lambda: NOW, log=LOG)
        target = next(t for fleet in fleets for t in fleet.targets if t.rpc.port == port)
        result, state, peak = _poll_measured(target)
        assert (result.success, result.error_kind) == (False, "bad_response"), result.message
        assert f"larger than {LIMIT} bytes" in (result.message or "")
        assert state.health(target.key).consecutive_failures == 1
        assert peak < 16 * LIMIT, f"{peak} bytes allocated to read a reply cut off at {LIMIT}"
        assert sent.done.wait(10), "the miner is still sending: the client never hung up"
        assert sent.bytes < ENDLESS // 8, f"the client read on: the miner sent {sent.bytes} bytes"


def test_a_body_just_under_the_limit_is_read() -> None:
    """The limit is on the body, not a round number near it: LIMIT bytes pass, LIMIT + 1 do not."""
    for size, ok in ((LIMIT, True), (LIMIT + 1, False)):
        body = '"' + "x" * (size - 2) + '"'
        stub = StubHTTPServer([StubResponse(200, body, {"Content-Type": "application/json"})])
        with stub, requests.Session() as session:
            session.trust_env = False
            client = HttpClient(session, redact=Redactor(), max_body_bytes=LIMIT)
            client.start_poll(10)
            if ok:
                assert client.get_json(stub.url) == "x" * (size - 2)
            else:
                with pytest.raises(BadResponse, match="larger than"):
                    client.get_json(stub.url)


# --- a gzip bomb, and InfluxDB answers ------------------------------------------------------------------------


@contextmanager
def answering(
    status: int, headers: dict[str, str], body: bytes, *, endless: bool = False
) -> Iterator[tuple[str, Sent]]:
    """A loopback server answering every request with `body` (or, `endless`, `body` then spaces until hung up)."""
    sent = Sent()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(ENDLESS if endless else len(body)))
            self.end_headers()
            if endless:
                _pour(self.wfile.write, sent, body)
            else:
                try:
                    self.wfile.write(body)
                    sent.bytes = len(body)
                except OSError:
                    pass
                finally:
                    sent.done.set()

        do_GET = do_POST = _serve  # noqa: N815 - names fixed by BaseHTTPRequestHandler

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Handler) as url:
        yield url, sent


def _peak(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_cut_off_at_the_limit() -> None:
    """A small gzip body that inflates to 64 MiB (Content-Encoding: gzip): the limit is on what it inflates to."""
    inflated = 64 * 1024 * 1024
    bomb = gzip.compress(b'"' + b" " * (inflated - 2) + b'"', compresslevel=9)
    assert len(bomb) < LIMIT  # what is sent is far under the limit: only the inflated size can trip it
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with answering(200, headers, bomb) as (url, _), requests.Session() as session:
        session.trust_env = False
        client = HttpClient(session, redact=Redactor(), max_body_bytes=LIMIT)
        client.start_poll(10)
        raised: list[BadResponse] = []

        def fetch() -> None:
            with pytest.raises(BadResponse, match="larger than") as caught:
                client.get_json(url)
            raised.append(caught.value)

        peak = _peak(fetch)
    assert raised[0].kind == "bad_response"
    assert peak < 16 * LIMIT, f"{peak} bytes allocated to inflate a body cut off at {LIMIT}"


def test_an_endless_influx_query_answer_is_refused_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(influx, "MAX_QUERY_BYTES", 4 * 1024 * 1024)
    with answering(200, {"Content-Type": "application/json"}, b'{"results": [', endless=True) as (url, sent):
        transport = influx.V1Transport(url, "minewatch", timeout_s=10)
        with transport, pytest.raises(StorageError, match="more than 4 MiB") as raised:
            transport.query("SELECT * FROM pool_account")
        assert not raised.value.retryable
        assert sent.done.wait(10), "the server is still sending: the client never hung up"
        assert sent.bytes < ENDLESS // 8, f"the client read on: the server sent {sent.bytes} bytes"


@pytest.mark.parametrize("status", [400, 500])
def test_an_endless_influx_error_body_is_read_only_for_its_text(status: int) -> None:
    with answering(status, {"Content-Type": "text/plain"}, b"partial write: dropped=1 ", endless=True) as (url, sent):
        transport = influx.V1Transport(url, "minewatch", timeout_s=10)
        errors: list[StorageError] = []

        def write() -> None:
            with pytest.raises(StorageError) as raised:
                transport.write(["m f=1i 1"])
            errors.append(raised.value)

        with transport:
            peak = _peak(write)
        assert "dropped=1" in str(errors[0])
        assert len(str(errors[0])) < 1000
        assert peak < 16 * influx.ERROR_BODY_BYTES, f"{peak} bytes allocated to read an error text"
        assert sent.done.wait(10), "the server is still sending: the client never hung up"
        assert sent.bytes < ENDLESS // 8, f"the client read on: the server sent {sent.bytes} bytes"
