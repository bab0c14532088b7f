"""Golden cases for miners: recorded cgminer-family replies in, the exact line protocol the runner writes out.

Each folder `tests/golden/cgminer/<case>/` holds:
- one file per command, `<command>.reply`, served byte for byte (a recorded multi-command reply
  `a+b+c.reply` answers each of its commands with that command's part); a command without a file gets the
  "Invalid command" error every cgminer-family API sends;
- `case.toml`: `now` (the fixed clock, unix s), optional `dialect` (default "auto"), optional `[expect]`
  `commands` (the commands sent, in order), and optional `[faults.<command>]` with `close = true` (the miner
  closes the connection without a reply);
- `README.md`: where the replies come from and what the case checks;
- `expected.lp` or `expected.err` (first line: the error kind; optional second line: a message substring).

The replies are served by a real TCP listener on 127.0.0.1. Regenerate the expected files with
`MINEWATCH_REGEN_GOLDEN=1`, then check every number by hand against the replies.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from golden_support import assert_matches_expected, regenerate

from collector.devices.base import DeviceContext
from collector.devices.cgminer.adapter import CgminerFleetSettings, CgminerSource
from collector.devices.cgminer.client import MinerRpc
from collector.devices.cgminer.parse import decode
from collector.runner import Runner
from collector.sinks.base import MemorySink
from collector.state import StateStore
from collector.targets import DeviceTarget

GOLDEN = Path(__file__).parent / "golden" / "cgminer"
REGEN = os.environ.get("MINEWATCH_REGEN_GOLDEN") == "1"
INVALID_COMMAND = (
    b'{"STATUS":[{"STATUS":"E","When":0,"Code":14,"Msg":"Invalid command","Description":"cgminer"}],"id":1}\x00'
)


@dataclass
class RecordedMiner:
    """Answers each command from the case folder, like the miner did."""

    folder: Path
    faults: dict[str, dict[str, Any]]
    commands_seen: list[str] = field(default_factory=list)

    def reply(self, command: str) -> bytes | None:
        """The reply bytes for `command`, or None to close without a reply."""
        self.commands_seen.append(command)
        if self.faults.get(command, {}).get("close"):
            return None
        single = self.folder / f"{command}.reply"
        if single.is_file():
            return single.read_bytes()
        for multi in self.folder.glob("*+*.reply"):
            if command in multi.stem.split("+"):
                part = decode(multi.read_bytes(), multi.stem)[command][0]
                return json.dumps(part, separators=(",", ":")).encode()
        return INVALID_COMMAND


@contextmanager
def serve(miner: RecordedMiner) -> Iterator[int]:
    """A one-request-per-connection TCP listener on 127.0.0.1 answering from `miner`; yields its port."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            request = b""
            while chunk := self.request.recv(4096):
                request += chunk
            reply = miner.reply(json.loads(request)["command"])
            if reply is not None:
                self.request.sendall(reply)
            self.request.shutdown(socket.SHUT_RDWR)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def discover() -> list[Path]:
    return sorted(path.parent for path in GOLDEN.glob("*/case.toml"))


CASES = discover()


@pytest.mark.parametrize("folder", CASES, ids=[c.name for c in CASES])
def test_golden_device_case(folder: Path) -> None:
    with (folder / "case.toml").open("rb") as handle:
        spec = tomllib.load(handle)
    now = float(spec["now"])
    miner = RecordedMiner(folder, spec.get("faults", {}))
    sink, state = MemorySink(), StateStore()
    with serve(miner) as port:
        settings = CgminerFleetSettings.model_validate(
            {"dialect": spec.get("dialect", "auto"), "miners": [{"address": f"127.0.0.1:{port}", "name": "m1"}]}
        )
        rpc = MinerRpc("127.0.0.1", port, monotonic=lambda: 0.0)
        ctx = DeviceContext(rpc=rpc, clock=lambda: now, log=logging.getLogger("golden"), target="m1")
        target = DeviceTarget("golden", "site-1", "fleet-1", "m1", CgminerSource(settings, ctx), rpc, 60.0, 10.0)
        runner = Runner(sink, state, clock=lambda: now, log=logging.getLogger("golden"), monotonic=lambda: 0.0)
        result = runner.poll(target)
    message = (result.message or "").replace(f"127.0.0.1:{port}", "{miner}")
    if REGEN:
        regenerate(folder, result, sink.lines, message)
    assert_matches_expected(folder, result, sink.lines, message)
    if "commands" in spec.get("expect", {}):
        assert miner.commands_seen == spec["expect"]["commands"]
