"""What a sink and a transport promise, plus the two trivial sinks: memory (tests) and stdout (`collect --print`).

A *transport* delivers one batch of line-protocol lines to a store, synchronously, and raises
`collector.errors.StorageError` (with `retryable`) when it cannot. A *sink* is what the collector writes to:
it accepts lines at any rate and never blocks on the store (`InfluxSink` buffers and retries in a thread).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol, TextIO, runtime_checkable

from collector.redact import Redactor


@runtime_checkable
class Transport(Protocol):
    """Delivers one batch of lines, synchronously; raises `StorageError` on failure."""

    def write(self, lines: Sequence[str]) -> None:
        """Write the lines as one request; return only once the store has acknowledged them."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where the collector puts its points."""

    def write(self, lines: Iterable[str]) -> None:
        """Accept lines; never blocks on the store."""
        ...

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything accepted so far has been delivered (or refused); False on timeout."""
        ...

    def close(self) -> None:
        """Flush, then release everything."""
        ...


class MemorySink:
    """Records every line it is given; usable as a `Sink` and as a `Transport` (tests, dry runs)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.batches: list[list[str]] = []
        self.closed = False
        self._lock = threading.Lock()

    def write(self, lines: Iterable[str]) -> None:
        """Record the lines as one batch."""
        batch = list(lines)
        with self._lock:
            self.batches.append(batch)
            self.lines.extend(batch)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Nothing is ever pending."""
        return True

    def close(self) -> None:
        """Mark closed (writes are still recorded: tests may inspect late writes)."""
        self.closed = True


class StdoutSink:
    """Writes each line to a text stream (stdout by default), redacting registered secrets on the way out."""

    def __init__(self, stream: TextIO | None = None, *, redact: Redactor | None = None) -> None:
        self._stream = stream
        self._redact = redact
        self._lock = threading.Lock()

    def write(self, lines: Iterable[str]) -> None:
        """Print the lines, one per line."""
        # Resolved at call time so pytest's capsys and `contextlib.redirect_stdout` see the output.
        stream = self._stream if self._stream is not None else sys.stdout
        redact = self._redact
        text = "".join(f"{line}\n" for line in lines)
        if redact is not None:
            text = redact(text)
        with self._lock:
            stream.write(text)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Flush the stream."""
        (self._stream if self._stream is not None else sys.stdout).flush()
        return True

    def close(self) -> None:
        """Flush; the stream belongs to the caller and stays open."""
        self.flush()
