"""Shared fixtures: real influxd, victoria-metrics and Alertmanager servers (see tests/servers.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

# tests/ has no __init__.py, so pytest puts this directory on sys.path (as tests/simulator does for its helpers).
from servers import (
    InfluxdServer,
    MissingBinary,
    ServerFailed,
    StubHTTPServer,
    VictoriaMetricsServer,
    unique_database,
)

from collector.errors import StorageError
from collector.sinks.influx import V1Transport, quote_ident
from simulator.local_servers import AlertmanagerServer

S = TypeVar("S", InfluxdServer, VictoriaMetricsServer, AlertmanagerServer)


def pytest_configure(config: pytest.Config) -> None:
    """Every server the tests talk to is on loopback: never route that traffic through a proxy."""
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def _started(make: Callable[[], S]) -> S:
    """Build and start a server; a missing binary or a failed start fails the test (never skips)."""
    try:
        server = make()
        server.start()
    except (MissingBinary, ServerFailed) as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdServer]:
    """One influxd for the session (no auth). Tests may `.stop()`/`.kill()` and `.start()` it again."""
    server = _started(lambda: InfluxdServer(tmp_path_factory.mktemp("influxd")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxd_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdServer]:
    """An influxd with `auth-enabled = true` and an admin user (`.admin_user`, `.admin_password`)."""
    server = _started(lambda: InfluxdServer(tmp_path_factory.mktemp("influxd-auth"), auth=True))
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxd: InfluxdServer, request: pytest.FixtureRequest) -> Iterator[V1Transport]:
    """A `V1Transport` on a fresh, uniquely named database of the session influxd; dropped afterwards.

    influxd 1.6.7's inmem index keeps every database's series in RAM, so tests keep series few and the
    database is dropped even when the test failed.
    """
    if not influxd.is_running:  # an earlier test killed it and failed before restarting it
        influxd.start()
    transport = V1Transport(influxd.url, unique_database(request.node.name), timeout_s=5.0)
    transport.ensure_database()
    yield transport
    if not influxd.is_running:
        influxd.start()
    try:
        transport.query(f"DROP DATABASE {quote_ident(transport.database)}", epoch=None)
    except StorageError as exc:  # pragma: no cover - only when the server is broken
        print(f"could not drop {transport.database}: {exc}")
    transport.close()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    """One victoria-metrics for the session (`.url`, `.export(selector)`)."""
    server = _started(lambda: VictoriaMetricsServer(tmp_path_factory.mktemp("victoria-metrics")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def alert_receiver() -> Iterator[StubHTTPServer]:
    """The webhook the session Alertmanager notifies: it records every notification (`.requests`).

    Tests share it: each one picks out its own alerts by a `group_id` no other test uses.
    """
    with StubHTTPServer() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, alert_receiver: StubHTTPServer
) -> Iterator[AlertmanagerServer]:
    """One real Alertmanager for the session, notifying `alert_receiver` at `/alertmanager` (1 s group waits).

    Tests may `.stop()` and `.start()` it again (alerts are forgotten, silences kept).
    """
    server = _started(
        lambda: AlertmanagerServer(
            tmp_path_factory.mktemp("alertmanager"), webhook_url=alert_receiver.url + "/alertmanager"
        )
    )
    yield server
    server.stop()
