"""Where `InfluxSink` keeps lines until InfluxDB accepts them: in memory (`MemorySpool`) or on disk (`DiskSpool`).

Both back-ends number every line they hold with a sequence number (`head` is the oldest line held, `tail` one past
the newest) and hand the sink one *batch* at a time, oldest first; the sink `ack()`s a batch once the store has
settled it. Both are bounded and drop their OLDEST lines to take new ones: during a long outage the newest data
is the most useful, and the drop is counted, never silent.

`DiskSpool` is the daemon's: a directory of segment files, one batch each, so that a SIGKILL of the collector
loses nothing it had appended (the page cache outlives the process) and an InfluxDB outage loses nothing up to
`max_bytes`. Segment files are named `<sequence:016d>-<created unix ms:013d>.lp`: they sort in append order and
carry their creation time (the age of the oldest undelivered line survives a restart). Each holds complete
lines only; a torn tail (a crash in the middle of an append) is cut on open. `lock` holds the process's
`flock`, `rejected/` the lines InfluxDB refused for good (bounded) and segments that could not be read,
`target.json` the InfluxDB the lines were spooled for (api, host:port, database or bucket, retention policy).

Nothing here does I/O at import or construction time, except `DiskSpool.open()`, which is explicit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Protocol, Self

SEGMENT_NAME = re.compile(r"^(\d{16})-(\d{13})\.lp$")
LOCK_NAME = "lock"
REJECTED_DIR = "rejected"
REJECTED_FILE = "rejected.lp"
TARGET_FILE = "target.json"
UNREADABLE_PREFIX = "unreadable-"
# A segment is sealed at `batch_size` lines or at this many bytes, whichever comes first, so that evicting one
# never costs more than a sixteenth of the spool (and a segment can never be larger than the spool).
MIN_SEGMENT_BYTES = 64 * 2**10
SEGMENTS_PER_SPOOL = 16
# A segment that fails to be read this many times in a row is moved to `rejected/` and counted as dropped.
MAX_READ_FAILURES = 5


def segment_bytes_for(max_bytes: int) -> int:
    """The size at which a segment is sealed in a spool of `max_bytes`."""
    return max(MIN_SEGMENT_BYTES, max_bytes // SEGMENTS_PER_SPOOL)


def held_segments(directory: Path) -> int:
    """How many segment files a spool directory holds (0 if it does not exist or cannot be read)."""
    try:
        return sum(1 for entry in directory.iterdir() if SEGMENT_NAME.match(entry.name))
    except OSError:
        return 0


def stranded_spools(base: Path, current: Path) -> list[tuple[Path, int]]:
    """Spool directories next to `current` that still hold segments it will not send: the unsharded `base` and
    its `shard-*` subdirectories (what a run with another `--shard`, or none, left), with their segment counts."""
    candidates = [base]
    with contextlib.suppress(OSError):
        candidates += sorted(p for p in base.glob("shard-*") if p.is_dir())
    found = []
    for directory in candidates:
        if directory.resolve() == current.resolve():
            continue
        count = held_segments(directory)
        if count:
            found.append((directory, count))
    return found


class SpoolError(Exception):
    """The spool directory cannot be used: locked by another process, not writable, not a directory."""


@dataclass(frozen=True, slots=True)
class Batch:
    """The oldest lines the spool holds, sent as one request: `start` is the first line's sequence number."""

    start: int
    lines: list[str]
    segment: int | None = None  # DiskSpool: the segment's sequence number


@dataclass(frozen=True, slots=True)
class SpoolLoss:
    """Something the spool lost or could not do on its own (a segment vanished or cannot be read): `lines` are
    gone (the sink counts them as dropped); `message` is logged once; `error` also sets the sink's last error."""

    lines: int
    message: str
    error: bool = True


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one `append()` did: lines evicted (oldest, to make room) and lines that could not be stored."""

    evicted: int = 0
    failed: int = 0
    error: Exception | None = None


class Spool(Protocol):
    """The storage behind `InfluxSink`. Thread-safe: `append` runs on collector threads, the rest on the sender."""

    @property
    def head(self) -> int:
        """Sequence number of the oldest line held (== `tail` when empty)."""
        ...

    @property
    def tail(self) -> int:
        """One past the sequence number of the newest line held."""
        ...

    @property
    def lines(self) -> int:
        """Lines held (including the batch in flight)."""
        ...

    @property
    def location(self) -> str | None:
        """Where the lines survive a restart (the directory), or None when they do not."""
        ...

    @property
    def recovered_lines(self) -> int:
        """Lines found at open, left by a previous process (0 for a memory spool)."""
        ...

    @property
    def fill(self) -> float:
        """How full the spool is, 0.0 .. 1.0 (may pass 1.0 a little: see `DiskSpool`)."""
        ...

    def stats(self, now: float) -> SpoolStats:
        """Depth and age, for the exporter."""
        ...

    def append(self, lines: Sequence[str]) -> AppendResult:
        """Store the lines after the newest; evict the oldest to stay within bounds. Never raises."""
        ...

    def due(self, now: float, flush_interval_s: float) -> float | None:
        """When the oldest batch is ready to send (<= now: ready), None when nothing is held."""
        ...

    def take(self) -> Batch | None:
        """The oldest batch, sealing it if it is still open (the sink asks when it is due or flushing)."""
        ...

    def ack(self, batch: Batch) -> int:
        """Forget a settled batch; return how many of its lines were still held (evicted ones are not).

        No disk I/O: what is to be deleted waits for `purge()`, which the sink calls outside its own lock.
        """
        ...

    def purge(self) -> None:
        """Delete what `ack()` forgot (a file per acknowledged segment)."""
        ...

    def losses(self) -> list[SpoolLoss]:
        """What the spool lost or could not read since the last call (each reported once)."""
        ...

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        """Keep lines the store refused for good, for inspection (bounded)."""
        ...

    def close(self) -> None:
        """Release files and locks; lines held stay where they are."""
        ...


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Spool depth and age; `segments` is None for a spool without segments (memory)."""

    lines: int
    bytes: int
    segments: int | None
    oldest_age_s: float | None


class MemorySpool:
    """Lines in a deque, line-granular: overflow drops exactly the oldest lines beyond `max_lines`.

    `minewatch collect` (one shot) uses it: its exit code says whether everything was stored, and it must not
    contend with a running daemon for the disk spool's lock. Tests of the sink use it too.
    """

    def __init__(self, *, batch_size: int, max_lines: int, clock: Callable[[], float] = time.time) -> None:
        if batch_size < 1 or max_lines < 1:
            raise ValueError("batch_size and max_lines must be positive")
        self.batch_size = batch_size
        self.max_lines = max_lines
        self._clock = clock
        self._lock = threading.Lock()
        self._buf: deque[str] = deque()
        self._bytes = 0
        self._head = 0
        # (sequence one past a write's last line, when it was appended): the age of the oldest line held.
        self._writes: deque[tuple[int, float]] = deque()

    @property
    def head(self) -> int:
        return self._head

    @property
    def tail(self) -> int:
        with self._lock:
            return self._head + len(self._buf)

    @property
    def lines(self) -> int:
        return len(self._buf)

    @property
    def location(self) -> str | None:
        return None

    @property
    def recovered_lines(self) -> int:
        return 0

    @property
    def fill(self) -> float:
        return len(self._buf) / self.max_lines

    def stats(self, now: float) -> SpoolStats:
        with self._lock:
            oldest = self._writes[0][1] if self._writes else None
            return SpoolStats(len(self._buf), self._bytes, None, None if oldest is None else max(0.0, now - oldest))

    def append(self, lines: Sequence[str]) -> AppendResult:
        now = self._clock()
        with self._lock:
            overflow = len(self._buf) + len(lines) - self.max_lines
            if overflow > 0:
                from_buffer = min(overflow, len(self._buf))
                self._pop_locked(from_buffer)
                if overflow > from_buffer:  # one write larger than the whole buffer keeps its newest lines
                    lines = lines[overflow - from_buffer :]
                    self._head += overflow - from_buffer
                    self._writes.clear()
            self._buf.extend(lines)
            self._bytes += sum(len(line) + 1 for line in lines)
            self._writes.append((self._head + len(self._buf), now))
            return AppendResult(evicted=max(overflow, 0))

    def due(self, now: float, flush_interval_s: float) -> float | None:
        with self._lock:
            if not self._buf:
                return None
            if len(self._buf) >= self.batch_size:
                return now
            return self._writes[0][1] + flush_interval_s

    def take(self) -> Batch | None:
        with self._lock:
            if not self._buf:
                return None
            return Batch(self._head, list(islice(self._buf, self.batch_size)))

    def ack(self, batch: Batch) -> int:
        with self._lock:
            # Overflow may have pushed some of the batch out meanwhile; only the rest is still ours.
            remaining = max(0, min(batch.start + len(batch.lines) - self._head, len(self._buf)))
            self._pop_locked(remaining)
            return remaining

    def purge(self) -> None:
        """Nothing on disk."""

    def losses(self) -> list[SpoolLoss]:
        return []

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        """Nothing to do: the sink keeps the last refused batches in memory (`InfluxSink.recent_refusals`)."""

    def close(self) -> None:
        """Nothing to release."""

    def _pop_locked(self, count: int) -> None:
        for _ in range(count):
            self._bytes -= len(self._buf.popleft()) + 1
        self._head += count
        while self._writes and self._writes[0][0] <= self._head:
            self._writes.popleft()


@dataclass(slots=True)
class _Segment:
    seq: int
    created: float  # unix seconds, from the name
    path: Path
    start: int  # sequence number of its first line
    lines: int = 0
    bytes: int = 0
    sealed: bool = False  # no more appends: full, due, forced, recovered, or after a failed append
    synced: bool = False
    read_failures: int = 0


class DiskSpool:
    """Segment files in a directory: one batch each, appended with `os.write`, unlinked once acknowledged.

    Durability: `append()` returns once the lines are in the current segment's page cache, which survives a
    SIGKILL of the collector. With `fsync` (the default) the sender fsyncs a segment (and the directory) when it
    seals it, before sending: after that even a power loss keeps it. That is two fsyncs per batch (one batch is
    up to `batch_size` lines, 5,000 by default), off the collector's threads; lines not yet sealed (at most one
    flush interval's worth) can be lost to a power cut, never to a crash of the process.

    Bounded by `max_bytes`: to take new lines it deletes the oldest segments, but never the one in flight (the
    batch the sender took and has not settled: InfluxDB may store it) nor the one being filled, so the bytes
    held may pass `max_bytes` by about one segment. A segment is sealed at `batch_size` lines or
    `segment_bytes` (`max(64 KiB, max_bytes // 16)`), so one eviction costs at most a sixteenth of the spool.
    A single append larger than the whole bound keeps what fits of its newest lines. A disk error (EIO, a
    read-only directory) fails that append only: its lines are counted as not stored and the current segment
    is sealed so a torn line never gets glued to the next one; on ENOSPC the oldest segment not in flight is
    evicted and the append retried once. A line that cannot be encoded (a lone surrogate) is counted as not
    stored. After `close()`, `append`, `take` and `ack` do nothing: a request still in flight must not delete
    a segment that a new process has recovered.
    """

    def __init__(
        self,
        directory: Path,
        *,
        batch_size: int,
        max_bytes: int,
        fsync: bool = True,
        max_rejected_bytes: int = 16 * 2**20,
        segment_bytes: int | None = None,
        target: Mapping[str, str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1 or max_bytes < 1:
            raise ValueError("batch_size and max_bytes must be positive")
        self.directory = directory
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes if segment_bytes is not None else segment_bytes_for(max_bytes)
        self.fsync = fsync
        self.max_rejected_bytes = max_rejected_bytes
        self.target = dict(target) if target is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._by_seq: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._fd: int | None = None  # the current segment's append descriptor
        self._lock_fd: int | None = None
        self._in_flight: int | None = None  # the sequence number of the segment taken and not yet acknowledged
        self._to_delete: list[Path] = []  # acknowledged, deleted by `purge()`
        self._purge_lock = threading.Lock()  # close() waits for a purge in progress
        self._purge_failing = False
        self._losses: list[SpoolLoss] = []
        self._closed = False
        self._next_seq = 0
        self._tail = 0
        self._lines = 0
        self._bytes = 0
        self._recovered_lines = 0
        self.warnings: list[str] = []  # found at open: the sink's builder logs them

    # -- open / close -------------------------------------------------------------------------------------

    def open(self) -> Self:
        """Create the directory, take its lock, and recover the segments a previous process left.

        Raises `SpoolError` when another process holds the lock or the directory is unusable. What deserves a
        warning (little free space, lines spooled for another InfluxDB) is left in `warnings`.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot use the spool directory {self.directory}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(lock_fd)
            os.close(lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                by = f" (pid {holder})" if holder else ""
                raise SpoolError(
                    f"the spool directory {self.directory} is locked by another minewatch process{by}; "
                    "each running collector needs its own [spool] dir"
                ) from exc
            raise SpoolError(f"cannot lock the spool directory {self.directory}: {exc.strerror or exc}") from exc
        try:
            os.ftruncate(lock_fd, 0)
            os.write(lock_fd, f"{os.getpid()}\n".encode())
            self._recover()
        except OSError as exc:
            os.close(lock_fd)
            raise SpoolError(f"cannot read the spool directory {self.directory}: {exc.strerror or exc}") from exc
        self._lock_fd = lock_fd
        self._check_free_space()
        self._check_target()
        return self

    def _recover(self) -> None:
        """Adopt the segments left by a previous process, oldest first; cut torn tails, drop empty files."""
        found = sorted(
            (int(m.group(1)), int(m.group(2)), entry)
            for entry in self.directory.iterdir()
            if (m := SEGMENT_NAME.match(entry.name)) and entry.is_file()
        )
        for seq, created_ms, path in found:
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):  # a torn last line: the process died in the middle of an append
                os.truncate(path, keep)
            count = data.count(b"\n", 0, keep)
            if count == 0:
                path.unlink()
                continue
            segment = _Segment(seq, created_ms / 1000, path, self._tail, count, keep, sealed=True, synced=True)
            self._add_locked(segment)
            self._tail += count
        self._next_seq = found[-1][0] + 1 if found else 0
        self._recovered_lines = self._tail

    def _check_free_space(self) -> None:
        try:
            fs = os.statvfs(self.directory)
        except OSError:
            return
        free = fs.f_bavail * fs.f_frsize + self._bytes
        if free < self.max_bytes:
            self.warnings.append(
                f"the spool at {self.directory} may hold up to {self.max_bytes / 2**20:.0f} MiB but its filesystem "
                f"has {free / 2**20:.0f} MiB free: a long InfluxDB outage will fill the disk before the spool"
            )

    def _check_target(self) -> None:
        """Compare the target the held lines were spooled for with this one; record this one."""
        if self.target is None:
            return
        path = self.directory / TARGET_FILE
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if self._lines and isinstance(old, dict) and old != self.target:
            self.warnings.append(
                f"the spool at {self.directory} holds {self._lines} lines spooled for {_describe(old)}; "
                f"they are sent to the configured {_describe(self.target)}"
            )
        if old != self.target:
            tmp = path.with_name(f".{TARGET_FILE}.tmp")
            try:
                tmp.write_text(json.dumps(self.target, sort_keys=True) + "\n", encoding="utf-8")
                tmp.replace(path)
            except OSError as exc:
                self.warnings.append(f"cannot record the spool's target in {path}: {exc.strerror or exc}")

    def close(self) -> None:
        """Close the current segment and release the lock; every held line stays on disk for the next start.

        Segments acknowledged before are deleted now; afterwards `append`, `take`, `ack` and `purge` do nothing
        (a request still in flight must not delete a segment the next process has recovered).
        """
        self.purge()
        with self._purge_lock, self._lock:
            self._closed = True
            self._to_delete.clear()
            self._close_fd_locked()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    # -- what the sink reads ------------------------------------------------------------------------------

    @property
    def head(self) -> int:
        with self._lock:
            return self._segments[0].start if self._segments else self._tail

    @property
    def tail(self) -> int:
        return self._tail

    @property
    def lines(self) -> int:
        return self._lines

    @property
    def location(self) -> str | None:
        return str(self.directory)

    @property
    def recovered_lines(self) -> int:
        return self._recovered_lines

    @property
    def fill(self) -> float:
        return self._bytes / self.max_bytes

    def stats(self, now: float) -> SpoolStats:
        with self._lock:
            oldest = self._segments[0].created if self._segments else None
            age = None if oldest is None else max(0.0, now - oldest)
            return SpoolStats(self._lines, self._bytes, len(self._segments), age)

    def losses(self) -> list[SpoolLoss]:
        with self._lock:
            losses, self._losses = self._losses, []
            return losses

    # -- append -------------------------------------------------------------------------------------------

    def append(self, lines: Sequence[str]) -> AppendResult:
        """Append complete lines to the current segment, starting a new segment every `batch_size` lines or
        `segment_bytes` bytes; evict the oldest segments (not the one in flight) to stay within `max_bytes`.
        Never raises: what cannot be stored is counted in `failed`."""
        evicted = 0
        unencodable = 0
        done = 0
        enospc_retry = False  # after an ENOSPC: evict the oldest segment not in flight, then try once more
        enospc_seen = False
        with self._lock:
            if self._closed:
                return AppendResult(failed=len(lines))
            while done < len(lines):
                try:
                    if enospc_retry:
                        enospc_retry = False
                        victim = self._victim_locked()
                        if victim is not None:
                            evicted += victim.lines
                            self._drop_locked(victim)
                    segment = self._writable_locked()
                    chunk = lines[done : done + self.batch_size - segment.lines]
                    data = _encode(chunk)
                    if data is None:  # a line UTF-8 cannot encode (a lone surrogate): lose it, keep the others
                        rest = lines[done:]
                        good = [x for x in rest if _encodable(x)]
                        unencodable += len(rest) - len(good)
                        lines = [*lines[:done], *good]
                        continue
                    room = min(self.segment_bytes, self.max_bytes) - segment.bytes
                    if len(data) > room:
                        sizes = [len(x.encode()) + 1 for x in chunk]
                        if sizes[0] > self.max_bytes:  # one line larger than the whole spool: it cannot be kept
                            evicted += 1
                            done += 1
                            continue
                        if segment.bytes and sizes[0] > room:  # not even one more line fits: next segment
                            self._seal_locked(segment)
                            continue
                        chunk, data = _oldest_fitting(chunk, sizes, room)
                    evicted += self._make_room_locked(len(data))
                    self._write_all_locked(segment, data)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC and not enospc_seen and self._victim_locked() is not None:
                        enospc_seen = enospc_retry = True
                        continue
                    return AppendResult(evicted=evicted, failed=len(lines) - done + unencodable, error=exc)
                segment.lines += len(chunk)
                segment.bytes += len(data)
                self._lines += len(chunk)
                self._bytes += len(data)
                self._tail += len(chunk)
                done += len(chunk)
                if segment.lines >= self.batch_size or segment.bytes >= self.segment_bytes:
                    self._seal_locked(segment)
        return AppendResult(evicted=evicted, failed=unencodable)

    def _writable_locked(self) -> _Segment:
        """The current segment, or a new one named after the next sequence number and the time now."""
        if self._current is not None:
            return self._current
        created = self._clock()
        seq = self._next_seq
        path = self.directory / f"{seq:016d}-{int(created * 1000):013d}.lp"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._next_seq += 1
        segment = _Segment(seq, created, path, self._tail)
        self._add_locked(segment)
        self._current = segment
        return segment

    def _write_all_locked(self, segment: _Segment, data: bytes) -> None:
        """Write every byte (a short write continues); on failure cut back to complete lines and seal."""
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError:
            # If this fails too the torn tail stays: reads cut after the last newline, and the segment is sealed.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, segment.bytes)
            self._seal_locked(segment)
            if segment.lines == 0:
                self._drop_locked(segment)
            raise

    def _victim_locked(self) -> _Segment | None:
        """The oldest sealed segment that is not in flight: the one eviction deletes."""
        return next((s for s in self._segments if s.sealed and s.seq != self._in_flight), None)

    def _make_room_locked(self, needed: int) -> int:
        """Evict the oldest segments (never the one in flight nor the one being filled) until `needed` more
        bytes fit, or nothing else is left to evict; return the lines evicted."""
        evicted = 0
        while self._bytes + needed > self.max_bytes and (victim := self._victim_locked()) is not None:
            evicted += victim.lines
            self._drop_locked(victim)
        return evicted

    def _seal_locked(self, segment: _Segment) -> None:
        segment.sealed = True
        if segment is self._current:
            self._close_fd_locked()

    def _close_fd_locked(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        self._current = None

    def _add_locked(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._by_seq[segment.seq] = segment
        self._lines += segment.lines
        self._bytes += segment.bytes

    def _forget_locked(self, segment: _Segment) -> None:
        """Stop holding a segment (acknowledged, evicted, vanished or unreadable); its file is not touched."""
        if segment is self._current:
            self._close_fd_locked()
        if self._in_flight == segment.seq:
            self._in_flight = None
        self._segments.remove(segment)
        del self._by_seq[segment.seq]
        self._lines -= segment.lines
        self._bytes -= segment.bytes

    def _drop_locked(self, segment: _Segment) -> None:
        """Forget and delete a segment (evicted, or emptied by a failed append)."""
        self._forget_locked(segment)
        segment.path.unlink(missing_ok=True)

    # -- send ---------------------------------------------------------------------------------------------

    def due(self, now: float, flush_interval_s: float) -> float | None:
        with self._lock:
            if not self._segments:
                return None
            oldest = self._segments[0]
            return now if oldest.sealed else oldest.created + flush_interval_s

    def take(self) -> Batch | None:
        """Seal the oldest segment if needed (fsync it), read it back and return it as a batch; it is in flight
        (never evicted) until acknowledged.

        A segment whose file vanished (deleted by hand) is forgotten and its lines reported in `losses()`; one
        that cannot be read is reported once and retried (None now), and after `MAX_READ_FAILURES` failures
        moved to `rejected/unreadable-<name>` and its lines reported lost.
        """
        while True:
            with self._lock:
                if self._closed or not self._segments:
                    return None
                segment = self._segments[0]
                if not segment.sealed:
                    self._seal_locked(segment)
                sync = self.fsync and not segment.synced
                self._in_flight = segment.seq
            try:
                if sync:
                    _fsync_path(segment.path)
                    _fsync_path(self.directory)
                data = segment.path.read_bytes()
            except FileNotFoundError:
                with self._lock:
                    if self._by_seq.get(segment.seq) is segment:  # not evicted meanwhile: deleted behind our back
                        self._forget_locked(segment)
                        self._losses.append(
                            SpoolLoss(segment.lines, f"spool segment {segment.path} vanished; its lines are lost")
                        )
                continue
            except OSError as exc:
                with self._lock:
                    if self._by_seq.get(segment.seq) is not segment:
                        continue
                    segment.read_failures += 1
                    failures = segment.read_failures
                    if failures == 1:
                        text = f"cannot read spool segment {segment.path}: {exc.strerror or exc}; retrying"
                        self._losses.append(SpoolLoss(0, text))
                    if failures < MAX_READ_FAILURES:
                        return None
                    self._forget_locked(segment)
                moved = self._quarantine(segment)
                text = f"spool segment {segment.path} unreadable {failures} times; {moved}; its lines are lost"
                with self._lock:
                    self._losses.append(SpoolLoss(segment.lines, text))
                continue
            with self._lock:
                segment.synced = True
            end = data.rfind(b"\n")
            # Split on b"\n" only: str.splitlines() also splits on \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029.
            lines = data[:end].decode("utf-8", errors="replace").split("\n") if end >= 0 else []
            return Batch(segment.start, lines, segment.seq)

    def _quarantine(self, segment: _Segment) -> str:
        """Move an unreadable segment out of the way; say where it went."""
        target = self.directory / REJECTED_DIR / f"{UNREADABLE_PREFIX}{segment.path.name}"
        try:
            target.parent.mkdir(exist_ok=True)
            segment.path.replace(target)
        except OSError as exc:
            return f"cannot move it to {target} ({exc.strerror or exc})"
        return f"moved to {target}"

    def ack(self, batch: Batch) -> int:
        """Forget the batch's segment (deleted by `purge()`); 0 if it is no longer held or the spool is closed."""
        with self._lock:
            if self._closed:
                return 0
            if self._in_flight == batch.segment:
                self._in_flight = None
            segment = self._by_seq.get(batch.segment) if batch.segment is not None else None
            if segment is None:
                return 0
            self._forget_locked(segment)
            self._to_delete.append(segment.path)
            return segment.lines

    def purge(self) -> None:
        """Delete the acknowledged segments' files; nothing after `close()`. A failure is reported once."""
        with self._purge_lock:
            with self._lock:
                if self._closed:
                    return
                paths, self._to_delete = self._to_delete, []
            for path in paths:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    if not self._purge_failing:
                        self._purge_failing = True
                        text = f"cannot delete the delivered spool segment {path}: {exc.strerror or exc}"
                        with self._lock:
                            self._losses.append(SpoolLoss(0, text + " (it is sent again at the next start)"))
                else:
                    self._purge_failing = False

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        """Append refused lines to `rejected/rejected.lp` (with a `#` comment saying why); keep about
        `max_rejected_bytes`: the file rotates to `rejected.1.lp` at half of it. Best effort: a disk error
        here must not stop deliveries. Nothing is written for no lines."""
        if not lines:
            return
        folder = self.directory / REJECTED_DIR
        path = folder / REJECTED_FILE
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        note = " ".join(reason.split())
        text = f"# {stamp} refused by InfluxDB: {note}\n" + "".join(f"{line}\n" for line in lines)
        data = text.encode("utf-8", errors="replace")
        try:
            folder.mkdir(exist_ok=True)
            if path.exists() and path.stat().st_size + len(data) > self.max_rejected_bytes // 2:
                path.replace(folder / f"{path.stem}.1{path.suffix}")
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            pass

    @property
    def rejected_path(self) -> Path:
        """The newest set-aside file."""
        return self.directory / REJECTED_DIR / REJECTED_FILE


def _encode(lines: Sequence[str]) -> bytes | None:
    """The lines as UTF-8, each ended by a newline; None if one of them cannot be encoded."""
    try:
        return "".join(f"{line}\n" for line in lines).encode()
    except UnicodeEncodeError:
        return None


def _encodable(line: str) -> bool:
    try:
        line.encode()
    except UnicodeEncodeError:
        return False
    return True


def _oldest_fitting(chunk: Sequence[str], sizes: Sequence[int], limit: int) -> tuple[Sequence[str], bytes]:
    """The oldest lines of `chunk` whose encoding fits in `limit` bytes (at least one), and their bytes."""
    size = sizes[0]
    count = 1
    while count < len(chunk) and size + sizes[count] <= limit:
        size += sizes[count]
        count += 1
    kept = chunk[:count]
    return kept, "".join(f"{line}\n" for line in kept).encode()


def _describe(target: Mapping[str, object]) -> str:
    """A spool target for a log line: `v1 http host:port database 'x' (rp 'y')`."""
    parts = [f"{key}={target[key]}" for key in sorted(target) if target[key] is not None]
    return "InfluxDB " + " ".join(parts) if parts else "an unknown InfluxDB"


def _fsync_path(path: Path) -> None:
    """fsync a file or directory by path (Linux flushes the inode's dirty pages whatever the descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
