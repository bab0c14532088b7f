"""Fixtures for the unit tests: an editable copy of the test config, check-config, a local HTTP server."""

from __future__ import annotations

import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import QuietHTTPServer

from collector.cli import main
from unit.support import CliRun, ConfigDir, RoutingHandler


@pytest.fixture
def config_dir(tmp_path: Path) -> ConfigDir:
    """A fresh copy of tests/configs/good to edit into one case."""
    return ConfigDir(tmp_path / "cfg")


@pytest.fixture
def check_config(capsys: pytest.CaptureFixture[str]) -> Callable[[Path], CliRun]:
    """Run `minewatch check-config -c PATH` in process and capture what it prints."""

    def run(path: Path) -> CliRun:
        capsys.readouterr()
        try:
            code = main(["check-config", "-c", str(path)])
        except Exception:  # what the console script would do: print a traceback and exit 1
            traceback.print_exc()
            code = 1
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def http_base() -> Iterator[str]:
    """Base URL of a local server implementing `RoutingHandler`'s routes."""
    server = QuietHTTPServer(("127.0.0.1", 0), RoutingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
