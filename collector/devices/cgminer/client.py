"""The cgminer-family TCP client: one request per connection, the reply read until the miner closes.

Every failure becomes a typed error with the miner's address: refused or reset -> Unreachable, silence past
the deadline -> Timeout, an over-long or empty reply -> BadResponse. Nothing here parses JSON.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

from collector.errors import BadResponse, Timeout, Unreachable

DEFAULT_PORT = 4028
# A btminer with hundreds of error codes sends a few hundred KiB; nothing legitimate comes near this.
MAX_REPLY_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024

Connect = Callable[[tuple[str, int], float], socket.socket]


class MinerRpc:
    """Sends commands to one miner within a per-poll deadline (see `start_poll`)."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        connect_timeout_s: float = 3.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
        connect: Connect = socket.create_connection,
    ) -> None:
        self.host = host
        self.port = port
        self._connect_timeout_s = connect_timeout_s
        self._max_reply_bytes = max_reply_bytes
        self._monotonic = monotonic
        self._connect = connect
        self._deadline = float("inf")
        self.requests_made = 0

    @property
    def address(self) -> str:
        """host:port as shown in messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start_poll(self, timeout_s: float) -> None:
        """Begin a poll that must finish within `timeout_s` seconds, every command included."""
        self._deadline = self._monotonic() + timeout_s

    def command(self, command: str, parameter: str | None = None) -> bytes:
        """Send one command and return the raw reply bytes (NUL and quirks left for the parser)."""
        request: dict[str, str] = {"command": command}
        if parameter is not None:
            request["parameter"] = parameter
        where = f"{self.address} {command}"
        remaining = self._remaining(where)
        self.requests_made += 1
        try:
            with self._connect((self.host, self.port), min(self._connect_timeout_s, remaining)) as conn:
                conn.sendall(json.dumps(request).encode())
                # Some firmware answers only once the request side is closed; none minds it closed early.
                conn.shutdown(socket.SHUT_WR)
                return self._read_reply(conn, where)
        except TimeoutError:
            raise Timeout(f"{where}: no answer in time") from None
        except ConnectionRefusedError:
            raise Unreachable(f"{where}: connection refused (miner off, or its API disabled)") from None
        except OSError as exc:
            raise Unreachable(f"{where}: {exc.strerror or type(exc).__name__}") from None

    def _remaining(self, where: str) -> float:
        remaining = self._deadline - self._monotonic()
        if remaining <= 0:
            raise Timeout(f"{where}: poll deadline passed before the command")
        return remaining

    def _read_reply(self, conn: socket.socket, where: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            conn.settimeout(self._remaining(where))
            chunk = conn.recv(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > self._max_reply_bytes:
                raise BadResponse(f"{where}: reply larger than {self._max_reply_bytes} bytes, cut off")
            chunks.append(chunk)
        if not chunks:
            raise BadResponse(f"{where}: the miner closed the connection without a reply")
        return b"".join(chunks)
