"""`InfluxSink`: the buffered writer between the collector and a transport; it never blocks the collector.

It copies Telegraf's output model: a bounded in-memory buffer that drops the oldest lines on overflow, a
writer thread that flushes on a timer or when a batch is ready, keeps a batch that failed for a retryable
reason and retries it with capped exponential backoff, and sets aside a batch the server refused.
Nothing here does I/O or starts a thread at construction time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from itertools import islice

from collector.errors import StorageError
from collector.redact import Redactor
from collector.sinks.base import Transport
from collector.sinks.influx import HOLD_STATUSES


class InfluxSink:
    """Buffered, retrying writer in front of a `Transport` (Telegraf's output model, in memory).

    `write()` only appends to a bounded buffer (the oldest lines are dropped and counted on overflow) and
    never waits for the store. A writer thread, started by `start()`, sends batches of up to `batch_size`
    lines every `flush_interval_s`, or as soon as a full batch is waiting:

    - success: the lines count as `written_lines`;
    - retryable failure (network, timeout, 429, 5xx): the batch stays at the head of the buffer and is
      retried after `flush_interval_s * 2**(failures-1)`, capped at `max_backoff_s`;
    - 401/403/404 (credentials, missing database/bucket): also kept and retried with backoff, because every
      later batch would be refused the same way and discarding them all would lose the whole stream;
    - any other refusal (400 parse error, field type conflict, ...): the batch is set aside (the last
      `max_set_aside_batches` are kept in `set_aside`) and counted in `rejected_lines`. A 1.x partial
      write stores the batch's valid lines anyway; the server's own count is in `last_error`.

    Invariant: lines accepted == `written_lines` + `dropped_lines` + `rejected_lines` + `buffered_lines`.
    Lines of a batch in flight that overflow pushes out count as dropped, not written.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_buffered_lines: int = 100_000,
        max_backoff_s: float = 30.0,
        max_set_aside_batches: int = 10,
        name: str = "influxdb",
        redact: Redactor | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if batch_size < 1 or max_buffered_lines < 1:
            raise ValueError("batch_size and max_buffered_lines must be positive")
        if flush_interval_s <= 0 or max_backoff_s <= 0:
            raise ValueError("flush_interval_s and max_backoff_s must be positive")
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffered_lines = max_buffered_lines
        self.max_backoff_s = max_backoff_s
        self.name = name
        self._redact = redact if redact is not None else Redactor()
        self._log = log if log is not None else logging.getLogger(__name__)

        self.written_lines = 0
        self.dropped_lines = 0
        self.rejected_lines = 0
        self.write_errors = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.set_aside: deque[list[str]] = deque(maxlen=max_set_aside_batches)

        self._cond = threading.Condition()
        self._io_lock = threading.Lock()  # one batch in flight at a time, thread or inline flush
        self._buf: deque[str] = deque()
        # Sequence numbers: line k (counting every line ever accepted) is _buf[k - _head] while buffered.
        self._head = 0
        self._batch_end = 0  # one past the in-flight batch; == _head when nothing is in flight
        self._drain_to = 0  # the writer keeps sending until _head reaches this (a tick or a flush asked)
        self._retry_at = 0.0  # monotonic time before which no attempt is made (backoff)
        self._thread: threading.Thread | None = None
        self._stop = False
        self._closed = False
        self._dropped_unreported = 0
        self._late_writes_logged = False

    @property
    def buffered_lines(self) -> int:
        """Lines accepted but not yet written, rejected or dropped (including the batch in flight)."""
        return len(self._buf)

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} sink is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
            self._thread.start()

    def write(self, lines: Iterable[str]) -> None:
        """Append lines to the buffer; on overflow drop the oldest. Never blocks on the store."""
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return
        with self._cond:
            if self._closed:
                # A job finishing during shutdown must not crash; its lines are lost, so count them.
                self.dropped_lines += len(batch)
                first_late_write, self._late_writes_logged = not self._late_writes_logged, True
            else:
                first_late_write = False
                self._append_locked(batch)
        if first_late_write:
            self._log.warning("%s sink: lines written after close() are dropped", self.name)

    def _append_locked(self, batch: list[str]) -> None:
        """Add lines, dropping the oldest beyond `max_buffered_lines` (lock held)."""
        overflow = len(self._buf) + len(batch) - self.max_buffered_lines
        if overflow > 0:
            from_buffer = min(overflow, len(self._buf))
            for _ in range(from_buffer):
                self._buf.popleft()
            if overflow > from_buffer:  # a single write larger than the whole buffer keeps its newest lines
                batch = batch[overflow - from_buffer :]
            self._head += overflow
            self.dropped_lines += overflow
            self._dropped_unreported += overflow
        self._buf.extend(batch)
        # Wake the writer for a full batch, but not while it is backing off from a failure.
        if len(self._buf) >= self.batch_size and time.monotonic() >= self._retry_at:
            self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every line accepted before this call is written, rejected or dropped; False on timeout.

        Without a running writer thread the batches are sent from the calling thread.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._head + len(self._buf)
            self._drain_to = max(self._drain_to, target)
            thread = self._thread
            self._cond.notify_all()
        if thread is None or not thread.is_alive():
            return self._drain_inline(target, deadline)
        with self._cond:
            while self._head < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (up to `timeout_s`), stop the writer thread and close the transport."""
        with self._cond:
            if self._closed:
                return
        delivered = self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
            left = len(self._buf)
        if thread is not None:
            thread.join(timeout=max(timeout_s, 1.0))
        if not delivered:
            self._log.warning("%s sink closed with %d lines undelivered: %s", self.name, left, self.last_error)
        self.transport.close()

    # -- writer -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        """The writer thread: wait for a tick, a full batch or a flush request; send; settle; repeat."""
        next_tick = time.monotonic() + self.flush_interval_s
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    now = time.monotonic()
                    if now >= next_tick:
                        # A tick flushes everything buffered at that moment, batch after batch.
                        self._drain_to = max(self._drain_to, self._head + len(self._buf))
                        next_tick = now + self.flush_interval_s
                    ready = len(self._buf) >= self.batch_size or self._head < self._drain_to
                    if self._buf and ready and now >= self._retry_at:
                        break
                    wake = self._retry_at if (self._buf and ready) else next_tick
                    self._cond.wait(max(0.0, wake - now))
                batch = self._take_batch_locked()
            self._send(batch)
            self._report_overflow()

    def _drain_inline(self, target: int, deadline: float) -> bool:
        """Send batches from the calling thread until line `target` is settled or the deadline passes."""
        while True:
            with self._cond:
                if self._head >= target:
                    return True
                wait = self._retry_at - time.monotonic()
            if time.monotonic() + max(wait, 0.0) >= deadline:
                return False
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                if not self._buf:
                    return True
                batch = self._take_batch_locked()
            self._send(batch)
            self._report_overflow()

    def _take_batch_locked(self) -> list[str]:
        """Copy the oldest lines as the next batch; they stay buffered until settled."""
        batch = list(islice(self._buf, self.batch_size))
        self._batch_end = self._head + len(batch)
        return batch

    def _send(self, batch: list[str]) -> None:
        """Write one batch and settle the outcome."""
        with self._io_lock:
            error: StorageError | None = None
            try:
                self.transport.write(batch)
            except StorageError as exc:
                error = exc
            except Exception as exc:
                # A transport bug must not kill the writer or lose the batch: treat it like an outage.
                self._log.exception("%s sink: unexpected error from the transport", self.name)
                error = StorageError(f"unexpected {type(exc).__name__}: {exc}", retryable=True)
            with self._cond:
                record = self._settle(batch, error)
                self._cond.notify_all()
        if record is not None:
            self._log.log(record[0], record[1], *record[2])

    def _settle(self, batch: list[str], error: StorageError | None) -> tuple[int, str, tuple[object, ...]] | None:
        """Apply a batch's outcome to the buffer and the counters (lock held); return what to log, if anything.

        Logging happens after the lock is released: a slow log handler must not stall `write()` callers.
        """
        # Overflow may have pushed some of the in-flight lines out meanwhile; only the rest is ours to settle.
        remaining = max(0, self._batch_end - self._head)
        self._batch_end = self._head
        if error is None:
            self._pop_locked(remaining)
            self.written_lines += remaining
            failures, self.consecutive_failures = self.consecutive_failures, 0
            self._retry_at = 0.0
            if failures:
                return logging.INFO, "%s sink: writes succeed again after %d failed attempts", (self.name, failures)
            return None
        message = self._redact(str(error))
        self.write_errors += 1
        self.last_error = message
        if error.retryable or error.status in HOLD_STATUSES:
            self.consecutive_failures += 1
            delay = min(self.max_backoff_s, self.flush_interval_s * 2 ** min(self.consecutive_failures - 1, 30))
            self._retry_at = time.monotonic() + delay
            if self.consecutive_failures > 1:  # logged once per outage, not once per retry
                return None
            level = logging.WARNING if error.retryable else logging.ERROR
            text = "%s sink: write failed, keeping %d lines and retrying with backoff: %s"
            return level, text, (self.name, len(self._buf), message)
        self._pop_locked(remaining)
        self.rejected_lines += remaining
        self.set_aside.append(batch)
        self.consecutive_failures = 0
        self._retry_at = 0.0
        text = "%s sink: InfluxDB refused a batch of %d lines; set aside, not retried: %s"
        return logging.ERROR, text, (self.name, remaining, message)

    def _pop_locked(self, count: int) -> None:
        """Remove `count` lines from the head of the buffer (lock held)."""
        for _ in range(count):
            self._buf.popleft()
        self._head += count

    def _report_overflow(self) -> None:
        """Log buffer overflow once per batch attempt, not once per dropped line."""
        with self._cond:
            dropped, self._dropped_unreported = self._dropped_unreported, 0
            limit = self.max_buffered_lines
        if dropped:
            self._log.warning("%s sink: buffer full (%d lines); dropped the %d oldest lines", self.name, limit, dropped)
