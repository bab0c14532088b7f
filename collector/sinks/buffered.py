"""`InfluxSink`: the spooling writer between the collector and a transport; it never blocks the collector.

It copies Telegraf's output model (a bounded buffer that drops the oldest lines on overflow, a writer thread
that sends a batch when one is full or old enough, capped exponential backoff on failures), with the buffer
behind a small protocol (`collector.sinks.spool.Spool`): `minewatch run` keeps it on disk (`DiskSpool`, which
survives a SIGKILL of the collector and a long InfluxDB outage), the one-shot `minewatch collect` and the tests
in memory (`MemorySpool`). One sink class, two storage back-ends: the delivery rules are written once.
Nothing here does I/O or starts a thread at construction time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from collector.errors import StorageError
from collector.redact import Redactor
from collector.sinks.base import Transport
from collector.sinks.influx import HOLD_STATUSES
from collector.sinks.spool import Batch, MemorySpool, Spool, SpoolStats

# InfluxDB 1.x ends a partial write's error with how many of the request's points it refused.
_DROPPED = re.compile(r"dropped=(\d+)")
_LogRecord = tuple[int, str, tuple[object, ...]]


@dataclass(slots=True)
class _Delivery:
    """How one batch went: stored, to be retried (`retry`), or refused in part or whole (`refused`, `bad`)."""

    retry: StorageError | None = None
    refused: StorageError | None = None
    bad: list[str] = field(default_factory=list)
    failed_requests: int = 0


class InfluxSink:
    """Spooling, retrying writer in front of a `Transport`.

    `write()` only appends to the spool (the oldest lines are dropped and counted when it is full) and never
    waits for the store, nor raises: a disk error counts the lines as dropped and is logged once per episode.
    A writer thread, started by `start()`, sends the oldest batch (up to `batch_size` lines; on disk, one
    segment) as soon as it is full or `flush_interval_s` old, or when `flush()` asks:

    - success: the batch is removed from the spool and its lines count as `written_lines`;
    - retryable failure (network, timeout, 429, 5xx): the batch stays at the head of the spool and is retried
      after `flush_interval_s * 2**(failures-1)`, capped at `max_backoff_s`; logged once per outage;
    - 401/403/404 (credentials, missing database/bucket): also kept and retried with backoff, because every
      later batch would be refused the same way and discarding them all would lose the whole stream;
    - any other refusal (400 parse error, field type conflict, partial write): the batch is *bisected* to find
      the refused lines: halves are re-sent until each refused part is a single line (or InfluxDB's
      `dropped=N` says the whole part was refused). Re-sending good lines is harmless: every line carries its
      timestamp, and the same series and timestamp overwrite. The refused lines are set aside (the last
      `max_set_aside_batches` in `set_aside`, and in the spool's `rejected/` file on disk) and counted in
      `rejected_lines`. The bisection is capped: once more than `max_bisect_bad_lines` (64) lines are found
      bad, the parts still unresolved are set aside whole, so a batch of garbage costs a few dozen requests,
      not thousands. A network failure during the bisection leaves the batch in the spool for a later retry.

    Invariant: lines accepted == `written_lines` + `dropped_lines` + `rejected_lines` + `buffered_lines`
    (lines a disk spool recovered at start are not "accepted" by this process). Lines of a batch in flight
    that overflow pushes out count as dropped, not written.
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
        max_bisect_bad_lines: int = 64,
        spool: Spool | None = None,
        name: str = "influxdb",
        redact: Redactor | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
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
        self.max_bisect_bad_lines = max_bisect_bad_lines
        self.name = name
        if spool is None:
            spool = MemorySpool(batch_size=batch_size, max_lines=max_buffered_lines, clock=clock)
        self.spool: Spool = spool
        self._redact = redact if redact is not None else Redactor()
        self._log = log if log is not None else logging.getLogger(__name__)
        self._clock = clock

        self.written_lines = 0
        self.dropped_lines = 0
        self.rejected_lines = 0
        self.write_errors = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.set_aside: deque[list[str]] = deque(maxlen=max_set_aside_batches)

        self._cond = threading.Condition()
        self._io_lock = threading.Lock()  # one batch in flight at a time, thread or inline flush
        self._drain_to = 0  # the writer keeps sending until the spool's head reaches this (a flush asked)
        self._retry_at = 0.0  # monotonic time before which no attempt is made (backoff)
        self._thread: threading.Thread | None = None
        self._stop = False
        self._closed = False
        self._late_writes_logged = False
        self._overflow_dropped: int | None = None  # lines dropped in the current overflow episode
        self._append_failed: int | None = None  # lines lost in the current disk-error episode

    @property
    def buffered_lines(self) -> int:
        """Lines accepted but not yet written, rejected or dropped (including the batch in flight)."""
        return self.spool.lines

    def spool_stats(self) -> SpoolStats:
        """Spool depth (lines, bytes, segments) and the age of the oldest undelivered line, now."""
        return self.spool.stats(self._clock())

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
        """Append lines to the spool; when it is full the oldest go. Never blocks on the store, never raises."""
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return
        record: _LogRecord | None = None
        with self._cond:
            if self._closed:
                # A job finishing during shutdown must not crash; its lines are lost, so count them.
                self.dropped_lines += len(batch)
                if not self._late_writes_logged:
                    self._late_writes_logged = True
                    record = logging.WARNING, "%s sink: lines written after close() are dropped", (self.name,)
            else:
                record = self._append_locked(batch)
        if record is not None:
            self._log.log(record[0], record[1], *record[2])

    def _append_locked(self, batch: list[str]) -> _LogRecord | None:
        """Append to the spool and count what it evicted or could not store (lock held); return what to log."""
        result = self.spool.append(batch)
        self.dropped_lines += result.evicted + result.failed
        record: _LogRecord | None = None
        if result.evicted:
            if self._overflow_dropped is None:
                self._overflow_dropped = 0
                text = "%s sink: spool full; dropping the oldest lines until InfluxDB catches up (%s)"
                record = logging.WARNING, text, (self.name, self.spool.location or "in memory")
            self._overflow_dropped += result.evicted
        if result.error is not None:
            if self._append_failed is None:
                self._append_failed = 0
                text = "%s sink: cannot append to the spool at %s, dropping lines until it can: %s"
                record = logging.ERROR, text, (self.name, self.spool.location, result.error)
            self._append_failed += result.failed
        elif self._append_failed is not None:
            text = "%s sink: the spool takes lines again; %d lines were dropped meanwhile"
            record, self._append_failed = (logging.WARNING, text, (self.name, self._append_failed)), None
        # Wake the writer for a full batch, but not while it is backing off from a failure.
        if self.spool.lines >= self.batch_size and time.monotonic() >= self._retry_at:
            self._cond.notify_all()
        return record

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every line accepted before this call is written, rejected or dropped; False on timeout.

        Without a running writer thread the batches are sent from the calling thread.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self.spool.tail
            self._drain_to = max(self._drain_to, target)
            thread = self._thread
            self._cond.notify_all()
        if thread is None or not thread.is_alive():
            return self._drain_inline(target, deadline)
        with self._cond:
            while self.spool.head < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (up to `timeout_s`), stop the writer thread, release the spool and close the transport.

        What is left undelivered stays on disk with a disk spool (logged with its count: the next start sends
        it); with a memory spool it is lost, and logged as such.
        """
        with self._cond:
            if self._closed:
                return
        delivered = self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            # A request in flight may take up to the transport's timeout; the thread is a daemon, do not wait.
            thread.join(timeout=min(max(timeout_s, 0.1), 1.0))
        left = self.spool.lines
        location = self.spool.location
        if left and location is not None:
            self._log.warning("%d lines stay in the spool at %s; they are sent at the next start", left, location)
        elif not delivered:
            self._log.warning("%s sink closed with %d lines undelivered: %s", self.name, left, self.last_error)
        self.spool.close()
        self.transport.close()

    # -- writer -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        """The writer thread: wait until the oldest batch is due (or a flush asks) and no backoff holds; send."""
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    now, mono = self._clock(), time.monotonic()
                    due = self.spool.due(now, self.flush_interval_s)
                    if due is not None and (due <= now or self.spool.head < self._drain_to):
                        if mono >= self._retry_at:
                            break
                        wait = self._retry_at - mono
                    else:
                        wait = self.flush_interval_s if due is None else due - now
                    # Bounded: a clock step or a missed notify costs at most one flush interval.
                    self._cond.wait(min(max(wait, 0.0), self.flush_interval_s))
            self._send_next()

    def _drain_inline(self, target: int, deadline: float) -> bool:
        """Send batches from the calling thread until line `target` is settled or the deadline passes."""
        while True:
            with self._cond:
                if self.spool.head >= target:
                    return True
                wait = self._retry_at - time.monotonic()
            if time.monotonic() + max(wait, 0.0) >= deadline:
                return False
            if wait > 0:
                time.sleep(wait)
            self._send_next()

    def _send_next(self) -> None:
        """Take the oldest batch, deliver it (bisecting a refused one) and settle the outcome."""
        with self._io_lock:
            batch = self.spool.take()
            if batch is None:
                with self._cond:  # nothing readable right now: do not spin
                    self._retry_at = max(self._retry_at, time.monotonic() + self.flush_interval_s)
                return
            outcome = self._deliver(batch.lines)
            with self._cond:
                record = self._settle(batch, outcome)
                self._cond.notify_all()
        if record is not None:
            self._log.log(record[0], record[1], *record[2])

    def _attempt(self, lines: list[str]) -> StorageError | None:
        """One request; the error, if any (a transport bug is treated like an outage, never lost)."""
        try:
            self.transport.write(lines)
        except StorageError as exc:
            return exc
        except Exception as exc:
            self._log.exception("%s sink: unexpected error from the transport", self.name)
            return StorageError(f"unexpected {type(exc).__name__}: {exc}", retryable=True)
        return None

    def _deliver(self, lines: list[str]) -> _Delivery:
        error = self._attempt(lines)
        if error is None:
            return _Delivery()
        if error.retryable or error.status in HOLD_STATUSES:
            return _Delivery(retry=error, failed_requests=1)
        return self._bisect(lines, error)

    def _bisect(self, lines: list[str], error: StorageError) -> _Delivery:
        """Find the lines a refused batch holds by re-sending halves; capped at `max_bisect_bad_lines`."""
        bad: list[str] = []
        failed = 1
        pending: deque[tuple[list[str], StorageError]] = deque([(lines, error)])
        while pending:
            part, part_error = pending.popleft()
            # Each refused part holds at least one bad line: past the cap, stop splitting.
            known_bad = len(bad) + len(pending) + 1
            if len(part) == 1 or _all_refused(part_error, len(part)) or known_bad > self.max_bisect_bad_lines:
                bad.extend(part)
                continue
            middle = len(part) // 2
            for half in (part[:middle], part[middle:]):
                half_error = self._attempt(half)
                if half_error is None:
                    continue
                failed += 1
                if half_error.retryable or half_error.status in HOLD_STATUSES:
                    return _Delivery(retry=half_error, failed_requests=failed)
                pending.append((half, half_error))
        return _Delivery(refused=error, bad=bad, failed_requests=failed)

    def _settle(self, batch: Batch, outcome: _Delivery) -> _LogRecord | None:
        """Apply a batch's outcome to the spool and the counters (lock held); return what to log, if anything.

        Logging happens after the lock is released: a slow log handler must not stall `write()` callers.
        """
        self.write_errors += outcome.failed_requests
        if outcome.retry is not None:
            message = self._redact(str(outcome.retry))
            self.last_error = message
            self.consecutive_failures += 1
            delay = min(self.max_backoff_s, self.flush_interval_s * 2 ** min(self.consecutive_failures - 1, 30))
            self._retry_at = time.monotonic() + delay
            if self.consecutive_failures > 1:  # logged once per outage, not once per retry
                return None
            level = logging.WARNING if outcome.retry.retryable else logging.ERROR
            text = "%s sink: write failed, keeping %d lines and retrying with backoff: %s"
            return level, text, (self.name, self.spool.lines, message)
        held = self.spool.ack(batch)  # lines pushed out meanwhile were counted as dropped already
        failures, self.consecutive_failures = self.consecutive_failures, 0
        self._retry_at = 0.0
        if outcome.refused is None:
            self.written_lines += held
            if self._overflow_dropped is not None:
                dropped, self._overflow_dropped = self._overflow_dropped, None
                text = "%s sink: InfluxDB catches up; the spool overflow dropped %d lines"
                return logging.WARNING, text, (self.name, dropped)
            if failures:
                return logging.INFO, "%s sink: writes succeed again after %d failed attempts", (self.name, failures)
            return None
        message = self._redact(str(outcome.refused))
        self.last_error = message
        rejected = min(len(outcome.bad), held)
        self.rejected_lines += rejected
        self.written_lines += held - rejected
        self.set_aside.append(outcome.bad)
        self.spool.set_aside(outcome.bad, message)
        where = f" in {self.spool.location}" if self.spool.location is not None else ""
        text = "%s sink: InfluxDB refused %d of a batch of %d lines; set aside%s, not retried: %s"
        return logging.ERROR, text, (self.name, len(outcome.bad), len(batch.lines), where, message)


def _all_refused(error: StorageError, lines: int) -> bool:
    """True when InfluxDB's `dropped=N` says it refused every line of the request: no need to bisect it."""
    match = _DROPPED.search(str(error))
    return match is not None and int(match.group(1)) >= lines
