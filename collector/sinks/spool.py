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
`flock`, `rejected/` the lines InfluxDB refused for good (bounded).

Nothing here does I/O at import or construction time, except `DiskSpool.open()`, which is explicit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Protocol

SEGMENT_NAME = re.compile(r"^(\d{16})-(\d{13})\.lp$")
LOCK_NAME = "lock"
REJECTED_DIR = "rejected"
REJECTED_FILE = "rejected.lp"


class SpoolError(Exception):
    """The spool directory cannot be used: locked by another process, not writable, not a directory."""


@dataclass(frozen=True, slots=True)
class Batch:
    """The oldest lines the spool holds, sent as one request: `start` is the first line's sequence number."""

    start: int
    lines: list[str]
    segment: int | None = None  # DiskSpool: the segment's sequence number


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one `append()` did: lines evicted (oldest, to make room) and lines that could not be stored."""

    evicted: int = 0
    failed: int = 0
    error: OSError | None = None


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
        """Forget a settled batch; return how many of its lines were still held (evicted ones are not)."""
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

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        """Nothing to do: the sink keeps the last refused batches in memory (`InfluxSink.set_aside`)."""

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


class DiskSpool:
    """Segment files in a directory: one batch each, appended with `os.write`, unlinked once acknowledged.

    Durability: `append()` returns once the lines are in the current segment's page cache, which survives a
    SIGKILL of the collector. With `fsync` (the default) the sender fsyncs a segment (and the directory) when it
    seals it, before sending: after that even a power loss keeps it. That is two fsyncs per batch (one batch is
    up to `batch_size` lines, 5,000 by default), off the collector's threads; lines not yet sealed (at most one
    flush interval's worth) can be lost to a power cut, never to a crash of the process.

    Bounded by `max_bytes`: to take new lines it deletes the oldest segments, even the one in flight (that
    batch's outcome then counts as dropped, not written). A single append larger than the whole bound keeps
    what fits of its newest lines. A disk error (ENOSPC, EIO, a read-only directory) fails that append only:
    its lines are counted as not stored and the current segment is sealed so a torn line never gets glued to
    the next one.
    """

    def __init__(
        self,
        directory: Path,
        *,
        batch_size: int,
        max_bytes: int,
        fsync: bool = True,
        max_rejected_bytes: int = 16 * 2**20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1 or max_bytes < 1:
            raise ValueError("batch_size and max_bytes must be positive")
        self.directory = directory
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.max_rejected_bytes = max_rejected_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._by_seq: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._fd: int | None = None  # the current segment's append descriptor
        self._lock_fd: int | None = None
        self._next_seq = 0
        self._tail = 0
        self._lines = 0
        self._bytes = 0
        self.recovered_lines = 0

    # -- open / close -------------------------------------------------------------------------------------

    def open(self) -> DiskSpool:
        """Create the directory, take its lock, and recover the segments a previous process left.

        Raises `SpoolError` when another process holds the lock or the directory is unusable.
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
        self.recovered_lines = self._tail

    def close(self) -> None:
        """Close the current segment and release the lock; every held line stays on disk for the next start."""
        with self._lock:
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

    def stats(self, now: float) -> SpoolStats:
        with self._lock:
            oldest = self._segments[0].created if self._segments else None
            age = None if oldest is None else max(0.0, now - oldest)
            return SpoolStats(self._lines, self._bytes, len(self._segments), age)

    # -- append -------------------------------------------------------------------------------------------

    def append(self, lines: Sequence[str]) -> AppendResult:
        """Append complete lines to the current segment, starting new segments every `batch_size` lines."""
        evicted = 0
        done = 0
        with self._lock:
            try:
                while done < len(lines):
                    segment = self._writable_locked()
                    chunk = lines[done : done + self.batch_size - segment.lines]
                    data = "".join(f"{line}\n" for line in chunk).encode()
                    if len(data) > self.max_bytes:  # larger than the whole spool: keep what fits of its newest
                        chunk, data, skipped = _newest_fitting(chunk, self.max_bytes)
                        evicted += skipped
                        done += skipped
                    evicted += self._make_room_locked(len(data), keep=segment)
                    if segment is not self._current:  # the room it needed was the current segment itself
                        continue
                    self._write_all_locked(segment, data)
                    segment.lines += len(chunk)
                    segment.bytes += len(data)
                    self._lines += len(chunk)
                    self._bytes += len(data)
                    self._tail += len(chunk)
                    done += len(chunk)
                    if segment.lines >= self.batch_size:
                        self._seal_locked(segment)
            except OSError as exc:
                return AppendResult(evicted=evicted, failed=len(lines) - done, error=exc)
        return AppendResult(evicted=evicted)

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

    def _make_room_locked(self, needed: int, *, keep: _Segment) -> int:
        """Evict the oldest segments until `needed` more bytes fit; return the lines evicted."""
        evicted = 0
        while self._segments and self._bytes + needed > self.max_bytes:
            oldest = self._segments[0]
            if oldest is keep and oldest.bytes == 0:
                break
            evicted += oldest.lines
            self._drop_locked(oldest)
        return evicted

    def _seal_locked(self, segment: _Segment) -> None:
        segment.sealed = True
        if segment is self._current:
            self._close_fd_locked()

    def _close_fd_locked(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._current = None

    def _add_locked(self, segment: _Segment) -> None:
        self._segments.append(segment)
        self._by_seq[segment.seq] = segment
        self._lines += segment.lines
        self._bytes += segment.bytes

    def _drop_locked(self, segment: _Segment) -> None:
        """Forget and delete a segment (acknowledged or evicted)."""
        if segment is self._current:
            self._close_fd_locked()
        self._segments.remove(segment)
        del self._by_seq[segment.seq]
        self._lines -= segment.lines
        self._bytes -= segment.bytes
        segment.path.unlink(missing_ok=True)

    # -- send ---------------------------------------------------------------------------------------------

    def due(self, now: float, flush_interval_s: float) -> float | None:
        with self._lock:
            if not self._segments:
                return None
            oldest = self._segments[0]
            return now if oldest.sealed else oldest.created + flush_interval_s

    def take(self) -> Batch | None:
        """Seal the oldest segment if needed (fsync it), read it back and return it as a batch."""
        while True:
            with self._lock:
                if not self._segments:
                    return None
                segment = self._segments[0]
                if not segment.sealed:
                    self._seal_locked(segment)
                sync = self.fsync and not segment.synced
            try:
                if sync:
                    _fsync_path(segment.path)
                    _fsync_path(self.directory)
                data = segment.path.read_bytes()
            except FileNotFoundError:
                continue  # evicted meanwhile (counted as dropped): the next one is the oldest now
            except OSError:
                return None  # unreadable for now; the sink retries it after its usual delay
            with self._lock:
                segment.synced = True
            text = data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
            return Batch(segment.start, text.splitlines(), segment.seq)

    def ack(self, batch: Batch) -> int:
        """Delete the batch's segment; 0 if it was evicted meanwhile (its lines were counted as dropped)."""
        with self._lock:
            segment = self._by_seq.get(batch.segment) if batch.segment is not None else None
            if segment is None:
                return 0
            self._drop_locked(segment)
            return segment.lines

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        """Append refused lines to `rejected/rejected.lp` (with a `#` comment saying why); keep about
        `max_rejected_bytes`: the file rotates to `rejected.1.lp` at half of it. Best effort: a disk error
        here must not stop deliveries."""
        folder = self.directory / REJECTED_DIR
        path = folder / REJECTED_FILE
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        note = " ".join(reason.split())
        data = (f"# {stamp} refused by InfluxDB: {note}\n" + "".join(f"{line}\n" for line in lines)).encode()
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


def _newest_fitting(chunk: Sequence[str], limit: int) -> tuple[Sequence[str], bytes, int]:
    """The newest lines of `chunk` whose encoding fits in `limit` bytes, their bytes, and how many were skipped."""
    size = 0
    first = len(chunk)
    while first > 0 and size + len(chunk[first - 1].encode()) + 1 <= limit:
        first -= 1
        size += len(chunk[first].encode()) + 1
    kept = chunk[first:]
    return kept, "".join(f"{line}\n" for line in kept).encode(), first


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
