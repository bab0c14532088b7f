"""The test servers themselves: loopback only, clear failures, a missing binary names `make system-deps`."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import servers
from servers import InfluxdServer, MissingBinary, ServerFailed, VictoriaMetricsServer


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
            family = socket.AF_INET if size == 4 else socket.AF_INET6
            found.add((socket.inet_ntop(family, words), int(port_hex, 16)))
    return found


@pytest.mark.integration
def test_influxd_listens_on_loopback_only(influxd: InfluxdServer) -> None:
    """Only the HTTP and RPC ports, both on 127.0.0.1 (influxd defaults to :8086 and 127.0.0.1:8088)."""
    assert influxd.pid is not None
    assert listening_addresses(influxd.pid) == {("127.0.0.1", influxd.http_port), ("127.0.0.1", influxd.rpc_port)}


@pytest.mark.integration
def test_victoria_metrics_listens_on_loopback_only(victoria_metrics: VictoriaMetricsServer) -> None:
    """Only the HTTP port on 127.0.0.1."""
    assert victoria_metrics.pid is not None
    assert listening_addresses(victoria_metrics.pid) == {("127.0.0.1", victoria_metrics.http_port)}


@pytest.mark.integration
def test_failed_start_reports_stderr(tmp_path: Path) -> None:
    """A server that cannot start raises with the tail of its stderr (here: its port is taken)."""
    server = InfluxdServer(tmp_path)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", server.http_port))
        squatter.listen(1)
        with pytest.raises(ServerFailed, match="address already in use"):
            server.start(timeout_s=10.0)
    assert not server.is_running


def test_missing_binary_names_the_make_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """No influxd on this machine: the error says how to install it (the fixtures turn it into a failure)."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)

    with pytest.raises(MissingBinary, match="make system-deps"):
        servers.find_binary("influxd")
