"""Helpers for the security tests: run the real `minewatch` script, a self-signed HTTPS server on loopback."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("minewatch")
MINEWATCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "collector.cli"]
_DROPPED_ENV = {"MINEWATCH_CONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without proxies, CA overrides or $MINEWATCH_CONFIG, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in _DROPPED_ENV}
    return {**env, **(extra or {})}


@dataclass(frozen=True)
class Run:
    """A finished `minewatch` run."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (
            f"minewatch {' '.join(self.args)} -> {self.code}\nstdout:\n{self.out[-2000:]}\nstderr:\n{self.err[-3000:]}"
        )


def run_minewatch(*args: str, env: Mapping[str, str], timeout_s: float = 90.0) -> Run:
    """Run the real console script to completion in the repository."""
    done = subprocess.run(
        [*MINEWATCH, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=REPO,
        env=dict(env),
        timeout=timeout_s,
        check=False,
    )
    return Run(tuple(args), done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (SAN IP) and its key, made by `openssl req`: (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


class _Answer(BaseHTTPRequestHandler):
    """Answers every request with `{}`: were verification off, a poll would get this far."""

    requests_seen: list[str]

    def _answer(self) -> None:
        self.requests_seen.append(f"{self.command} {self.path}")
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class HttpsServer:
    url: str
    cert: Path
    requests_seen: list[str]


@contextmanager
def https_server(directory: Path) -> Iterator[HttpsServer]:
    """An HTTPS server on 127.0.0.1 (free port) with a self-signed certificate no trust store knows."""
    cert, key = self_signed_certificate(directory)
    seen: list[str] = []
    handler = type("Handler", (_Answer,), {"requests_seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="https-test-server", daemon=True)
    thread.start()
    try:
        yield HttpsServer(f"https://127.0.0.1:{server.server_address[1]}", cert, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
