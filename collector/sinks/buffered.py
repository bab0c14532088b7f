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
from collector.sinks.spool import AppendResult, Batch, MemorySpool, Spool, SpoolStats

_LogRecord = tuple[int, str, tuple[object, ...]]
# The statuses that mean "this request holds lines InfluxDB will never take": only these are bisected. Any other
# failure (no answer, a broken stream, v2's status 0, 5xx) says nothing about the lines and is retried.
REFUSAL_STATUSES = frozenset({400, 413, 422})
# The measurement at the start of a line: up to the first unescaped comma or space.
_MEASUREMENT = re.compile(r"(?:[^\\, ]|\\.)*")


@dataclass(slots=True)
class _Delivery:
    """How one batch went: stored, to be retried (`retry`), or refused in part or whole (`refused`): `bad` are
    the lines set aside, `rejected` how many lines InfluxDB refused (fewer than `bad` when a part stopped by the
    cap was a 1.x partial write: its good lines were stored)."""

    retry: StorageError | None = None
    refused: StorageError | None = None
    bad: list[str] = field(default_factory=list)
    rejected: int = 0
    failed_requests: int = 0


class InfluxSink:
    """Spooling, retrying writer in front of a `Transport`.

    `write()` only appends to the spool (the oldest lines are dropped and counted when it is full): it waits
    for the local append (a disk spool's `os.write` into the page cache) and never for the store, nor raises:
    a disk error counts the lines as dropped and is logged once per episode. A writer thread, started by
    `start()`, sends the oldest batch (up to `batch_size` lines; on disk, one segment) as soon as it is full or
    `flush_interval_s` old, or when `flush()` asks:

    - success: the batch is removed from the spool and its lines count as `written_lines`;
    - retryable failure (network, timeout, a broken response, 429, 5xx, no status at all): the batch stays at
      the head of the spool and is retried after `flush_interval_s * 2**(failures-1)`, capped at
      `max_backoff_s`; logged once per outage;
    - 401/403/404 (credentials, missing database/bucket): also kept and retried with backoff, because every
      later batch would be refused the same way and discarding them all would lose the whole stream;
    - a refusal (400, 413, 422: parse error, field type conflict, partial write, too large): the batch is
      *bisected* to find the refused lines. A refused part is first split by measurement (a type conflict is
      per measurement), then in halves, until each refused part is a single line (or InfluxDB's `dropped=N`
      says the whole part was refused). Re-sending good lines is harmless: every line carries its timestamp,
      and the same series and timestamp overwrite. The refused lines are set aside (the last
      `max_set_aside_batches` in `recent_refusals`, and in the spool's `rejected/` file on disk) and counted in
      `rejected_lines`. The bisection is capped: once more than `max_bisect_bad_lines` (64) lines are known
      bad, the parts still unresolved are set aside whole; a part whose error said `dropped=N` (an InfluxDB
      1.x partial write, which stored the other lines) then counts N lines rejected and the rest written.
      Measured requests for one 5,000-line batch of one measurement, bad lines spread evenly
      (tests/unit/test_spool.py `test_bisection_request_counts`): 1 bad line: 27; 10: 199; 64: 1,023; 65 or
      more (the cap): 141 for 65, 129 for 500 or 5,000, the unresolved parts set aside whole (4,766 lines for
      65 bad). Bad lines bunched together, or in their own measurement, cost far fewer. A network failure
      during the bisection leaves the batch in the spool for a later retry.

    The writer thread survives anything: an unexpected exception is logged once per episode and the thread
    backs off and carries on. Lines the spool loses on its own (a segment deleted by hand or unreadable five
    times) count as dropped.

    Invariant: lines accepted by `write()` + `recovered_lines` (found in a disk spool at start) ==
    `written_lines` + `dropped_lines` + `rejected_lines` + `buffered_lines`.
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

        self.recovered_lines = spool.recovered_lines
        self.written_lines = 0
        self.dropped_lines = 0
        self.rejected_lines = 0
        self.write_errors = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.recent_refusals: deque[list[str]] = deque(maxlen=max_set_aside_batches)

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
        self._crashes = 0  # consecutive unexpected exceptions in the writer (logged once per episode)

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
        """Append lines to the spool; when it is full the oldest go. Waits for the local append only, never for
        the store; never raises."""
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
        try:
            result = self.spool.append(batch)
        except Exception as exc:  # a spool bug must not reach the collector's threads
            result = AppendResult(failed=len(batch), error=exc)
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
        while self._wait_until_due():
            self._send_next_safely()

    def _wait_until_due(self) -> bool:
        """Block until a batch should be sent (True) or the sink stops (False)."""
        with self._cond:
            while True:
                if self._stop:
                    return False
                now, mono = self._clock(), time.monotonic()
                due = self.spool.due(now, self.flush_interval_s)
                if due is not None and (due <= now or self.spool.head < self._drain_to):
                    if mono >= self._retry_at:
                        return True
                    wait = self._retry_at - mono
                else:
                    wait = self.flush_interval_s if due is None else due - now
                # Bounded: a clock step or a missed notify costs at most one flush interval.
                self._cond.wait(min(max(wait, 0.0), self.flush_interval_s))

    def _send_next_safely(self) -> None:
        """`_send_next`, but an unexpected exception is logged (once per episode) and backed off from."""
        try:
            self._send_next()
        except Exception as exc:
            self._crashes += 1
            if self._crashes == 1:
                self._log.exception("%s sink: unexpected error in the writer; backing off and carrying on", self.name)
            delay = min(self.max_backoff_s, self.flush_interval_s * 2 ** min(self._crashes - 1, 30))
            with self._cond:
                self.last_error = self._redact(f"{type(exc).__name__}: {exc}")
                self._retry_at = max(self._retry_at, time.monotonic() + delay)
        else:
            self._crashes = 0

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
            self._send_next_safely()

    def _send_next(self) -> None:
        """Take the oldest batch, deliver it (bisecting a refused one) and settle the outcome.

        Only bookkeeping happens under `_cond` (which `write()` needs): deleting the delivered segment and
        setting refused lines aside on disk happen after it is released.
        """
        with self._io_lock:
            batch = self.spool.take()
            records = self._absorb_losses()
            if batch is None:
                with self._cond:  # nothing readable right now: do not spin
                    self._retry_at = max(self._retry_at, time.monotonic() + self.flush_interval_s)
            else:
                outcome = self._deliver(batch.lines)
                with self._cond:
                    record = self._settle(batch, outcome)
                    self._cond.notify_all()
                if record is not None:
                    records.append(record)
                if outcome.retry is None:
                    if outcome.bad:
                        self.spool.set_aside(outcome.bad, self._redact(str(outcome.refused)))
                    self.spool.purge()
        for level, text, args in records:
            self._log.log(level, text, *args)

    def _absorb_losses(self) -> list[_LogRecord]:
        """Count the lines the spool lost on its own as dropped; return what to log (each loss once)."""
        losses = self.spool.losses()
        if not losses:
            return []
        with self._cond:
            for loss in losses:
                self.dropped_lines += loss.lines
                if loss.error:
                    self.last_error = loss.message
            self._cond.notify_all()
        return [(logging.ERROR, "%s sink: %s", (self.name, loss.message)) for loss in losses]

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
        if not _is_refusal(error):
            return _Delivery(retry=error, failed_requests=1)
        return self._bisect(lines, error)

    def _bisect(self, lines: list[str], error: StorageError) -> _Delivery:
        """Find the lines a refused batch holds: split refused parts by measurement, then in halves; capped at
        `max_bisect_bad_lines` known bad lines."""
        bad: list[str] = []
        rejected = 0
        failed = 1
        pending: deque[tuple[list[str], StorageError]] = deque([(lines, error)])
        while pending:
            part, part_error = pending.popleft()
            dropped = part_error.dropped
            if len(part) == 1 or (dropped is not None and dropped >= len(part)):
                bad.extend(part)
                rejected += len(part)
                continue
            # Each refused part holds at least one bad line: past the cap, stop splitting.
            if rejected + len(pending) + 1 > self.max_bisect_bad_lines:
                bad.extend(part)
                # An InfluxDB 1.x partial write stored the part's other lines; without `dropped=N`, all count.
                rejected += dropped if dropped is not None else len(part)
                continue
            pieces = _by_measurement(part)
            if len(pieces) == 1:
                middle = len(part) // 2
                pieces = [part[:middle], part[middle:]]
            for piece in pieces:
                piece_error = self._attempt(piece)
                if piece_error is None:
                    continue
                failed += 1
                if not _is_refusal(piece_error):
                    return _Delivery(retry=piece_error, failed_requests=failed)
                pending.append((piece, piece_error))
        return _Delivery(refused=error, bad=bad, rejected=rejected, failed_requests=failed)

    def _settle(self, batch: Batch, outcome: _Delivery) -> _LogRecord | None:
        """Apply a batch's outcome to the spool's bookkeeping and the counters (lock held); return what to log.

        No disk I/O here (the sink's `_send_next` deletes and sets aside after releasing the lock), and logging
        happens after the lock is released: a slow disk or log handler must not stall `write()` callers.
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
        held = self.spool.ack(batch)  # lines no longer held (memory overflow) were counted as dropped already
        failures, self.consecutive_failures = self.consecutive_failures, 0
        self._retry_at = 0.0
        rejected = min(outcome.rejected, held)
        self.rejected_lines += rejected
        self.written_lines += held - rejected
        if outcome.refused is not None and outcome.bad:
            message = self._redact(str(outcome.refused))
            self.last_error = message
            self.recent_refusals.append(outcome.bad)
            where = f" in {self.spool.location}" if self.spool.location is not None else ""
            text = "%s sink: InfluxDB refused %d of a batch of %d lines; set aside%s, not retried: %s"
            return logging.ERROR, text, (self.name, rejected, len(batch.lines), where, message)
        # Under steady overload the spool stays full: the episode ends only once it is below 90 %.
        if self._overflow_dropped is not None and self.spool.fill < 0.9:
            dropped, self._overflow_dropped = self._overflow_dropped, None
            text = "%s sink: InfluxDB catches up; the spool overflow dropped %d lines"
            return logging.WARNING, text, (self.name, dropped)
        if failures:
            return logging.INFO, "%s sink: writes succeed again after %d failed attempts", (self.name, failures)
        return None


def _is_refusal(error: StorageError) -> bool:
    """True when InfluxDB answered that the request's lines will never be taken (bisect), not that it failed."""
    return not error.retryable and error.status in REFUSAL_STATUSES


def _by_measurement(lines: list[str]) -> list[list[str]]:
    """The lines grouped by measurement, in order of first appearance (order kept within a group)."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        match = _MEASUREMENT.match(line)
        groups.setdefault(match.group(0) if match else "", []).append(line)
    return list(groups.values())
