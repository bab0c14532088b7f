"""The disk spool on a real directory: append, segments, recovery, torn tails, the bound, the lock, age, disk errors;
and the sink's bisection of a refused batch. Every file operation is real; only the store is scripted here (the
real influxd is in tests/integration/test_spool_faults.py)."""

from __future__ import annotations

import errno
import inspect
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from collector.errors import StorageError
from collector.sinks.base import MemorySink
from collector.sinks.buffered import InfluxSink
from collector.sinks.lineprotocol import build_line, line
from collector.sinks.points import source_health_line
from collector.sinks.spool import SEGMENT_NAME, DiskSpool, SpoolError
from unit.support import ConfigDir

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
T0 = 1_700_000_000.0


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def numbered(start: int, count: int) -> list[str]:
    """Distinct lines of equal length (sizes in bytes are then a multiple of one line's)."""
    return [f"m,s=a n={1_000_000 + i}i {1_700_000_000_000_000_000 + i}" for i in range(start, start + count)]


def segment_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if SEGMENT_NAME.match(p.name))


def drain(spool: DiskSpool) -> list[str]:
    """Take and acknowledge every batch, oldest first; return the lines in the order they came out."""
    out: list[str] = []
    while (batch := spool.take()) is not None:
        out += batch.lines
        assert spool.ack(batch) == len(batch.lines)
        spool.purge()
    return out


def open_spool(
    directory: Path, *, batch_size: int = 10, max_bytes: int = 2**20, clock: Clock | None = None
) -> DiskSpool:
    return DiskSpool(directory, batch_size=batch_size, max_bytes=max_bytes, clock=clock or Clock()).open()


def test_append_take_ack_in_order(tmp_path: Path) -> None:
    """Lines come out in append order, one segment per batch, and acknowledged segments are deleted."""
    spool = open_spool(tmp_path)
    for start in range(0, 35, 7):
        assert spool.append(numbered(start, 7)).failed == 0

    assert (spool.lines, spool.stats(T0).segments) == (35, 4)
    assert drain(spool) == numbered(0, 35)
    assert segment_files(tmp_path) == []
    assert (spool.lines, spool.stats(T0).bytes, spool.head, spool.tail) == (0, 0, 35, 35)
    spool.close()


def test_big_writes_split_into_segments_of_batch_size(tmp_path: Path) -> None:
    """A write larger than a batch fills segments of exactly `batch_size` lines; names sort in append order."""
    clock = Clock()
    spool = open_spool(tmp_path, clock=clock)
    spool.append(numbered(0, 3))
    clock.now += 2.5
    spool.append(numbered(3, 22))

    files = segment_files(tmp_path)
    assert [len(f.read_bytes().splitlines()) for f in files] == [10, 10, 5]
    assert [int(SEGMENT_NAME.match(f.name).group(1)) for f in files] == [0, 1, 2]  # type: ignore[union-attr]
    created_ms = [int(SEGMENT_NAME.match(f.name).group(2)) for f in files]  # type: ignore[union-attr]
    assert created_ms == [int(T0 * 1000), int((T0 + 2.5) * 1000), int((T0 + 2.5) * 1000)]
    assert [spool.ack(b) for b in iter(spool.take, None)] == [10, 10, 5]
    spool.purge()
    assert segment_files(tmp_path) == []
    spool.close()


def test_due_seals_by_size_or_age(tmp_path: Path) -> None:
    """A full segment is due at once; a partial one when it is `flush_interval_s` old."""
    clock = Clock()
    spool = open_spool(tmp_path, clock=clock)
    assert spool.due(clock(), 1.0) is None
    spool.append(numbered(0, 4))
    assert spool.due(clock(), 1.0) == T0 + 1.0
    spool.append(numbered(4, 6))  # now full
    assert spool.due(clock(), 1.0) == clock()
    spool.close()


def test_restart_recovers_in_order_and_continues_the_sequence(tmp_path: Path) -> None:
    """A reopened spool holds what the last one left, counts it, and names new segments after the highest."""
    first = open_spool(tmp_path)
    first.append(numbered(0, 25))
    batch = first.take()
    assert batch is not None
    first.ack(batch)  # 10 delivered
    first.close()

    second = open_spool(tmp_path)
    assert (second.recovered_lines, second.lines, second.stats(T0).segments) == (15, 15, 2)
    second.append(numbered(25, 5))
    names = [f.name for f in segment_files(tmp_path)]
    assert [int(n[:16]) for n in names] == [1, 2, 3]
    assert drain(second) == numbered(10, 20)
    second.close()


def test_torn_tail_is_cut_on_open(tmp_path: Path) -> None:
    """Bytes after the newest segment's last newline (a crash mid-append) are cut; complete lines stay."""
    spool = open_spool(tmp_path)
    spool.append(numbered(0, 4))
    spool.close()
    newest = segment_files(tmp_path)[-1]
    with newest.open("ab") as handle:
        handle.write(b"m,s=a n=99")  # no newline: torn

    reopened = open_spool(tmp_path)
    assert reopened.lines == 4
    assert newest.read_bytes().endswith(b"\n")
    reopened.append(numbered(4, 2))
    assert drain(reopened) == numbered(0, 6)
    reopened.close()


def test_empty_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    """An empty segment (created, nothing written) is removed; files of other names are left alone."""
    (tmp_path / f"{7:016d}-{int(T0 * 1000):013d}.lp").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("keep me")
    spool = open_spool(tmp_path)
    assert spool.lines == 0
    assert segment_files(tmp_path) == []
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    spool.append(numbered(0, 1))
    assert segment_files(tmp_path)[0].name.startswith(f"{8:016d}-")
    spool.close()


def test_size_limit_drops_the_oldest_segments_and_counts_them(tmp_path: Path) -> None:
    """Over `max_bytes` the oldest segments go (counted); the bytes held never exceed the bound."""
    one = len(numbered(0, 1)[0]) + 1
    spool = open_spool(tmp_path, max_bytes=35 * one)
    evicted = 0
    for start in range(0, 100, 5):
        result = spool.append(numbered(start, 5))
        evicted += result.evicted
        assert spool.stats(T0).bytes <= 35 * one
        assert sum(f.stat().st_size for f in segment_files(tmp_path)) == spool.stats(T0).bytes

    assert evicted == 100 - spool.lines
    assert spool.lines >= 25
    spool.close()


def test_size_limit_keeps_the_newest_lines(tmp_path: Path) -> None:
    """After overflow, what is delivered is the newest lines, contiguous, ending with the last one written."""
    one = len(numbered(0, 1)[0]) + 1
    spool = open_spool(tmp_path, max_bytes=35 * one)
    for start in range(0, 100, 5):
        spool.append(numbered(start, 5))
    held = spool.lines
    out = drain(spool)
    assert out == numbered(100 - held, held)
    assert held == 30  # whole segments of 10: 3 fit in 35 lines' worth while the 4th is being filled
    spool.close()


def test_the_batch_in_flight_is_never_evicted(tmp_path: Path) -> None:
    """Overflow evicts the next-oldest segment, never the one in flight (InfluxDB may store it): the bound
    overshoots by that segment, and the batch acks in full once settled."""
    one = len(numbered(0, 1)[0]) + 1
    spool = open_spool(tmp_path, max_bytes=20 * one)
    spool.append(numbered(0, 10))
    batch = spool.take()
    assert batch is not None
    result = spool.append(numbered(10, 20))  # would need the in-flight segment's room
    assert result.evicted == 10  # lines 10..19, the oldest not in flight
    assert spool.stats(T0).bytes == 20 * one
    spool.append(numbered(30, 10))
    assert spool.ack(batch) == 10
    assert drain(spool) == numbered(30, 10)
    spool.close()


def test_single_append_larger_than_the_spool_keeps_its_newest_lines(tmp_path: Path) -> None:
    one = len(numbered(0, 1)[0]) + 1
    spool = DiskSpool(tmp_path, batch_size=100, max_bytes=10 * one, segment_bytes=5 * one).open()
    result = spool.append(numbered(0, 25))
    assert (result.evicted, spool.lines) == (15, 10)
    assert drain(spool) == numbered(15, 10)
    spool.close()


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    """A second process cannot open the directory: a clear error naming it; free again once that process exits."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, pathlib
                from collector.sinks.spool import DiskSpool
                DiskSpool(pathlib.Path({str(tmp_path)!r}), batch_size=10, max_bytes=10**6).open()
                print("locked", flush=True)
                sys.stdin.read()
            """),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpoolError) as raised:
            open_spool(tmp_path)
        assert str(tmp_path) in str(raised.value)
        assert "locked by another minewatch process" in str(raised.value)
        assert f"pid {holder.pid}" in str(raised.value)
    finally:
        holder.communicate("", timeout=10)
    open_spool(tmp_path).close()  # the lock died with its process


def test_lock_is_per_open_spool_in_one_process(tmp_path: Path) -> None:
    first = open_spool(tmp_path)
    with pytest.raises(SpoolError):
        open_spool(tmp_path)
    first.close()
    open_spool(tmp_path).close()


def test_unusable_directory_is_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SpoolError, match="cannot use the spool directory"):
        open_spool(tmp_path / "file" / "spool")


def test_age_of_the_oldest_undelivered_line(tmp_path: Path) -> None:
    """The age comes from the oldest segment's name (its first line's append time), so it survives a restart."""
    clock = Clock()
    spool = open_spool(tmp_path, clock=clock)
    assert spool.stats(clock()).oldest_age_s is None
    spool.append(numbered(0, 10))  # a full segment, created at T0
    clock.now += 30
    spool.append(numbered(10, 1))  # the next one, created at T0 + 30
    assert spool.stats(clock()).oldest_age_s == pytest.approx(30.0)
    spool.close()

    clock.now += 90
    reopened = open_spool(tmp_path, clock=clock)
    assert reopened.stats(clock()).oldest_age_s == pytest.approx(120.0, abs=0.01)
    batch = reopened.take()
    assert batch is not None
    reopened.ack(batch)
    assert reopened.stats(clock()).oldest_age_s == pytest.approx(90.0, abs=0.01)
    reopened.close()


def test_disk_error_counts_drops_and_never_raises(tmp_path: Path) -> None:
    """A file-size limit (EFBIG, like ENOSPC: first a short write, then nothing fits) makes appends fail: lines
    counted as dropped, one log line per episode, no traceback; what was stored holds complete lines only, and
    appends work again once the disk does."""
    script = textwrap.dedent(f"""
        import json, logging, pathlib, resource, signal, io
        from collector.sinks.base import MemorySink
        from collector.sinks.buffered import InfluxSink
        from collector.sinks.spool import DiskSpool
        stream = io.StringIO()
        log = logging.getLogger("t"); log.addHandler(logging.StreamHandler(stream)); log.setLevel(logging.INFO)
        spool = DiskSpool(pathlib.Path({str(tmp_path)!r}), batch_size=1000, max_bytes=10**8).open()
        sink = InfluxSink(MemorySink(), batch_size=1000, spool=spool, log=log)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, unlimited[1]))
        n = 0
        for phase in ("limit", "full", "healed"):
            if phase == "healed":
                resource.setrlimit(resource.RLIMIT_FSIZE, unlimited)
            for _ in range(40):
                sink.write([f"m,s=a n={{1000000 + n + k}}i {{1700000000000000000 + n + k}}" for k in range(3)])
                n += 3
                if phase == "limit" and sink.dropped_lines:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (0, unlimited[1]))  # the disk is full now
                    phase = "full"
        print(json.dumps({{"n": n, "dropped": sink.dropped_lines, "held": sink.buffered_lines,
                           "log": stream.getvalue()}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["dropped"] >= 40 * 3
    assert report["dropped"] + report["held"] == report["n"]
    assert report["log"].count("cannot append to the spool") == 1
    assert report["log"].count("the spool takes lines again") == 1
    stored = b"".join(f.read_bytes() for f in segment_files(tmp_path))
    assert stored.count(b"\n") == report["held"]
    assert all(re.fullmatch(rb"m,s=a n=1\d{6}i 17\d{17}", x) for x in stored.splitlines())
    assert stored.endswith(b"\n")


def test_sink_over_a_disk_spool_delivers_in_order_and_empties_it(tmp_path: Path) -> None:
    transport = MemorySink()
    spool = DiskSpool(tmp_path, batch_size=50, max_bytes=2**20).open()
    sink = InfluxSink(transport, batch_size=50, flush_interval_s=0.05, spool=spool)
    sink.start()
    for start in range(0, 500, 30):
        sink.write(numbered(start, 30))
    assert sink.flush(5.0)
    sink.close(1.0)
    assert transport.lines == numbered(0, 510)
    assert all(len(b) <= 50 for b in transport.batches)
    assert (sink.written_lines, sink.dropped_lines, sink.buffered_lines) == (510, 0, 0)
    assert segment_files(tmp_path) == []


class RefusingTransport(MemorySink):
    """Refuses (400) any request holding a line that contains `bad`; stores the others."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
        self.requests += 1
        bad = [x for x in lines if "bad" in x]
        if bad:
            raise StorageError(f"unable to parse {bad[0]!r}", status=400, retryable=False)
        super().write(lines)


def test_refused_batch_is_bisected_good_lines_written_bad_set_aside(tmp_path: Path) -> None:
    transport = RefusingTransport()
    spool = DiskSpool(tmp_path, batch_size=100, max_bytes=2**20).open()
    sink = InfluxSink(transport, batch_size=100, spool=spool)
    batch = numbered(0, 100)
    batch[17] = "bad line one"
    batch[71] = "bad line two"
    sink.write(batch)
    assert sink.flush(5.0)
    sink.close(1.0)

    assert sorted(transport.lines) == sorted(x for x in batch if "bad" not in x)
    assert (sink.written_lines, sink.rejected_lines, sink.buffered_lines) == (98, 2, 0)
    assert list(sink.recent_refusals) == [["bad line one", "bad line two"]]
    rejected = (tmp_path / "rejected" / "rejected.lp").read_text().splitlines()
    assert rejected[0].startswith("# ")
    assert "unable to parse" in rejected[0]
    assert rejected[1:] == ["bad line one", "bad line two"]
    assert transport.requests < 30  # two bad lines in 100: a couple of dozen requests, not 100


def test_bisection_is_capped(tmp_path: Path) -> None:
    """More than 64 bad lines: the parts still unresolved are set aside whole; the requests stay bounded."""
    transport = RefusingTransport()
    sink = InfluxSink(transport, batch_size=1000, spool=DiskSpool(tmp_path, batch_size=1000, max_bytes=2**20).open())
    batch = [f"bad {i}" if i % 3 == 0 else x for i, x in enumerate(numbered(0, 1000))]
    sink.write(batch)
    assert sink.flush(10.0)
    sink.close(1.0)

    assert sink.rejected_lines + sink.written_lines == 1000
    assert sink.rejected_lines >= 334  # every bad line, plus good ones set aside with them
    assert all("bad" not in x for x in transport.lines)
    assert transport.requests < 400


def test_every_line_carries_an_explicit_timestamp() -> None:
    """Idempotent replays rely on it: `line()` has no default timestamp, and every point builder's output (the
    golden files of every source, a health line) ends with an integer nanosecond timestamp."""
    assert inspect.signature(line).parameters["timestamp_ns"].default is inspect.Parameter.empty
    rendered = build_line("m", {"t": "a b"}, {"f": 1.5, "s": "x y"}, 1_700_000_000_123_456_789)
    assert rendered.rsplit(" ", 1)[1] == "1700000000123456789"
    health = source_health_line(
        "g", "braiins", "acct", success=True, stale=False, duration_s=0.2, data_age_s=None, error_kind=None, at=17
    )
    assert health.rsplit(" ", 1)[1] == "17000000000"
    golden = [x for f in sorted((REPO / "tests" / "golden").rglob("expected.lp")) for x in f.read_text().splitlines()]
    assert len(golden) > 50
    assert all(x.rsplit(" ", 1)[1].isdigit() for x in golden if x and not x.startswith("#"))


def test_rejected_file_is_bounded(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20, max_rejected_bytes=4000).open()
    for i in range(100):
        spool.set_aside([f"refused line number {i:04d}"], "400 bad")
    files = sorted((tmp_path / "rejected").iterdir())
    assert [f.name for f in files] == ["rejected.1.lp", "rejected.lp"]
    assert sum(f.stat().st_size for f in files) <= 4000
    assert files[1].read_text().splitlines()[-1] == "refused line number 0099"
    spool.close()


def test_spool_files_are_not_world_writable(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(numbered(0, 1))
    mode = os.stat(segment_files(tmp_path)[0]).st_mode & 0o777
    assert mode & 0o022 == 0
    spool.close()


def test_run_exits_1_naming_a_locked_spool(config_dir: ConfigDir) -> None:
    """`minewatch run` on a spool another process holds: exit 1 with the message, no traceback."""
    config_dir.append("minewatch.toml", '[spool]\ndir = "spool-here"\n')
    holder = open_spool(config_dir.root / "spool-here")
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "minewatch"), "run", "-c", str(config_dir.main)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert done.returncode == 1, done.stderr
    assert f"the spool directory {config_dir.root / 'spool-here'} is locked by another minewatch process" in done.stderr
    assert "Traceback" not in done.stderr


# -- review fixes -------------------------------------------------------------------------------------------


def call_with_timeout(fn: Callable[[], T], timeout_s: float = 5.0) -> T:
    """Run `fn` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"{fn} did not return within {timeout_s} s"
    return out[0]


def test_take_skips_a_head_segment_deleted_by_hand(tmp_path: Path) -> None:
    """A segment file removed behind the spool's back is forgotten (its lines reported lost once), not spun on."""
    spool = open_spool(tmp_path)
    spool.append(numbered(0, 25))
    segment_files(tmp_path)[0].unlink()
    batch = call_with_timeout(spool.take)
    assert batch is not None
    assert batch.lines == numbered(10, 10)
    losses = spool.losses()
    assert [loss.lines for loss in losses] == [10]
    assert "vanished" in losses[0].message
    assert spool.losses() == []
    assert spool.lines == 15
    spool.close()


def test_sink_counts_a_vanished_segment_as_dropped(tmp_path: Path) -> None:
    transport = MemorySink()
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20).open()
    sink = InfluxSink(transport, batch_size=10, spool=spool)
    sink.write(numbered(0, 30))
    segment_files(tmp_path)[1].unlink()
    assert call_with_timeout(lambda: sink.flush(5.0))
    sink.close(1.0)
    assert transport.lines == numbered(0, 10) + numbered(20, 10)
    assert (sink.written_lines, sink.dropped_lines, sink.buffered_lines) == (20, 10, 0)
    assert "vanished" in str(sink.last_error)


def test_lines_split_on_newline_only(tmp_path: Path) -> None:
    """A tag value holding characters str.splitlines() breaks on (\\u2028, \\x85, \\x0b, \\x1c) stays one line."""
    odd = [
        build_line("m", {"t": "a\u2028b"}, {"n": 1}, 1),
        build_line("m", {"t": "a\x85m,s=a n=1i 2"}, {"n": 2}, 2),
        build_line("m", {"t": "x\x0by\x1cz\u2029"}, {"s": "p\x0cq\x1e"}, 3),
    ]
    spool = open_spool(tmp_path)
    spool.append(odd)
    assert drain(spool) == odd
    spool.close()
    again = open_spool(tmp_path)
    again.append(odd)
    again.close()
    reopened = open_spool(tmp_path)
    assert reopened.recovered_lines == 3
    assert drain(reopened) == odd
    reopened.close()


def test_a_line_utf8_cannot_encode_is_counted_never_raised(tmp_path: Path) -> None:
    lone = "m,t=a\ud800 n=1i 1"
    spool = open_spool(tmp_path)
    result = spool.append([*numbered(0, 3), lone, *numbered(3, 2)])
    assert (result.failed, result.error, spool.lines) == (1, None, 5)
    assert drain(spool) == numbered(0, 5)
    spool.close()

    sink = InfluxSink(MemorySink(), batch_size=10, spool=open_spool(tmp_path))
    sink.write([lone])  # must not raise
    assert (sink.dropped_lines, sink.buffered_lines) == (1, 0)
    sink.close(1.0)


def test_retryable_or_statusless_failures_are_retried_not_bisected() -> None:
    """A broken response (ChunkedEncodingError: no status, not retryable) or v2's status 0 is not a refusal."""
    for error in (
        StorageError("InfluxDB write failed: ChunkedEncodingError", retryable=False),
        StorageError("status 0", status=0, retryable=False),
    ):
        transport = ScriptedTransport([error])
        sink = InfluxSink(transport, batch_size=100, flush_interval_s=0.01)
        sink.write(numbered(0, 100))
        assert sink.flush(5.0)
        assert transport.requests == 2  # one failed, one retried whole: no halves
        assert (sink.written_lines, sink.rejected_lines) == (100, 0)
        assert list(sink.recent_refusals) == []


class ScriptedTransport(MemorySink):
    """Raises the scripted errors first, then stores."""

    def __init__(self, errors: Sequence[StorageError]) -> None:
        super().__init__()
        self.errors = list(errors)
        self.requests = 0

    def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
        self.requests += 1
        if self.errors:
            raise self.errors.pop(0)
        super().write(lines)


class TypeConflictTransport(MemorySink):
    """Like InfluxDB 1.x on a field type conflict: stores the good lines, refuses the bad with `dropped=N`."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
        self.requests += 1
        bad = [x for x in lines if "conflict" in x]
        super().write([x for x in lines if "conflict" not in x])
        if bad:
            raise StorageError(
                f"partial write: field type conflict dropped={len(bad)}", status=400, retryable=False, dropped=len(bad)
            )


def test_refused_part_is_split_by_measurement_first(tmp_path: Path) -> None:
    """One bad measurement among several: the split by measurement isolates it in one round."""
    transport = TypeConflictTransport()
    sink = InfluxSink(transport, batch_size=400)
    batch = [f"{name},s=a n=1i {i}" for i in range(100) for name in ("a", "b", "conflict", "d")]
    sink.write(batch)
    assert sink.flush(5.0)
    assert transport.requests == 5  # the batch, then one per measurement; the conflicting one says dropped=100
    assert (sink.written_lines, sink.rejected_lines) == (300, 100)


def test_cap_counts_a_partial_writes_good_lines_as_written() -> None:
    """Past the cap a part that said dropped=N is set aside whole, but only N of its lines count as rejected."""
    transport = TypeConflictTransport()
    sink = InfluxSink(transport, batch_size=1000, max_bisect_bad_lines=4)
    batch = [f"m,s=a n={'conflict' if i % 10 == 0 else '1i'} {i}" for i in range(1000)]
    sink.write(batch)
    assert sink.flush(5.0)
    assert sink.rejected_lines == 100
    assert sink.written_lines == 900
    assert sum(len(x) for x in sink.recent_refusals) >= 100


def test_no_empty_refusal_is_recorded(tmp_path: Path) -> None:
    """A refusal that does not recur on the halves sets nothing aside and logs no 'refused 0'."""
    transport = ScriptedTransport([StorageError("unable to parse", status=400, retryable=False)])
    spool = DiskSpool(tmp_path, batch_size=100, max_bytes=2**20).open()
    sink = InfluxSink(transport, batch_size=100, spool=spool)
    sink.write(numbered(0, 100))
    assert sink.flush(5.0)
    sink.close(1.0)
    assert (sink.written_lines, sink.rejected_lines, list(sink.recent_refusals)) == (100, 0, [])
    assert not (tmp_path / "rejected" / "rejected.lp").exists()


@pytest.mark.parametrize(("bad", "most"), [(1, 27), (10, 199), (64, 1023)])
def test_bisection_request_counts(bad: int, most: int) -> None:
    """The numbers in InfluxSink's docstring: one 5,000-line batch, `bad` refused lines spread evenly."""
    transport = RefusingTransport()
    sink = InfluxSink(transport, batch_size=5000)
    batch = numbered(0, 5000)
    for k in range(bad):
        batch[(k * 5000) // bad + 7] = f"m,s=a n=bad{k} {k}"  # the same measurement: halving finds it
    sink.write(batch)
    assert sink.flush(30.0)
    print(f"{bad} bad lines: {transport.requests} requests")
    assert (sink.rejected_lines, sink.written_lines) == (bad, 5000 - bad)
    assert transport.requests <= most


def test_segments_are_sealed_by_size_so_overflow_never_empties_the_spool(tmp_path: Path) -> None:
    """Lines much longer than usual fill `batch_size` lines past the whole bound: the byte seal keeps each
    segment at a sixteenth of the spool, so an eviction costs one of them, not everything."""
    max_bytes = 2 * 2**20
    spool = DiskSpool(tmp_path, batch_size=5000, max_bytes=max_bytes).open()
    assert spool.segment_bytes == max_bytes // 16
    long = [f'm,s=a v="{"x" * 1000}" {i}' for i in range(6000)]  # about 6 MB, 5000 lines are > max_bytes
    for start in range(0, 6000, 500):
        spool.append(long[start : start + 500])
        assert spool.stats(T0).bytes <= max_bytes + spool.segment_bytes
    assert all(f.stat().st_size <= spool.segment_bytes for f in segment_files(tmp_path))
    assert spool.stats(T0).bytes > max_bytes * 14 // 16
    out = drain(spool)
    assert out == long[-len(out) :]
    spool.close()


def test_spool_config_needs_room_for_several_segments() -> None:
    from collector.config import MIN_SPOOL_SEGMENTS, SpoolConfig
    from collector.sinks.spool import segment_bytes_for

    config = SpoolConfig(max_size_mb=1)
    assert (1 * 2**20) // segment_bytes_for(1 * 2**20) >= MIN_SPOOL_SEGMENTS
    assert config.max_size_mb == 1
    with pytest.raises(ValueError, match="max_size_mb"):
        SpoolConfig(max_size_mb=0)


class FlakySpool(DiskSpool):
    """A real disk spool whose `purge` raises (a read-only remount) the first `failures` times."""

    def __init__(self, *args: object, failures: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.failures = failures

    def purge(self) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(30, "Read-only file system")
        super().purge()


def test_writer_thread_survives_an_exception(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    transport = MemorySink()
    spool = FlakySpool(tmp_path, batch_size=10, max_bytes=2**20, failures=3).open()
    sink = InfluxSink(transport, batch_size=10, flush_interval_s=0.01, spool=spool)
    sink.start()
    sink.write(numbered(0, 50))
    assert sink.flush(10.0)
    assert sink._thread is not None
    assert sink._thread.is_alive()
    sink.write(numbered(50, 10))
    assert sink.flush(10.0)
    sink.close(1.0)
    assert transport.lines == numbered(0, 60)
    assert sink.written_lines == 60
    assert sum("unexpected error in the writer" in r.message for r in caplog.records) == 1


def test_unreadable_segment_is_retried_then_moved_aside(tmp_path: Path) -> None:
    """A segment that cannot be read (here: a directory in its place) is reported once, retried, and after
    five failures moved to rejected/unreadable-<name>; its lines count as dropped and the rest flows."""
    transport = MemorySink()
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20).open()
    sink = InfluxSink(transport, batch_size=10, flush_interval_s=0.01, spool=spool)
    sink.write(numbered(0, 20))
    first = segment_files(tmp_path)[0]
    first.unlink()
    first.mkdir()  # read_bytes() now raises IsADirectoryError
    assert call_with_timeout(lambda: sink.flush(10.0))
    assert (tmp_path / "rejected" / f"unreadable-{first.name}").is_dir()
    assert transport.lines == numbered(10, 10)
    assert (sink.written_lines, sink.dropped_lines, sink.buffered_lines) == (10, 10, 0)
    assert "unreadable 5 times" in str(sink.last_error)
    sink.close(1.0)


class ProbeSpool(DiskSpool):
    """Checks, from inside its disk operations, that `write()` is not blocked meanwhile."""

    sink: InfluxSink
    blocked: list[str]

    def _probe(self, what: str) -> None:
        other = threading.Thread(target=self.sink.write, args=(numbered(900, 1),))
        other.start()
        other.join(2.0)
        if other.is_alive():
            self.blocked.append(what)
        other.join()

    def purge(self) -> None:
        self._probe("purge")
        super().purge()

    def set_aside(self, lines: Sequence[str], reason: str) -> None:
        self._probe("set_aside")
        super().set_aside(lines, reason)


def test_disk_io_of_a_settled_batch_happens_outside_the_write_lock(tmp_path: Path) -> None:
    spool = ProbeSpool(tmp_path, batch_size=10, max_bytes=2**20).open()
    spool.blocked = []
    transport = RefusingTransport()
    sink = InfluxSink(transport, batch_size=10, spool=spool)
    spool.sink = sink
    batch = numbered(0, 10)
    batch[3] = "m,s=a n=bad 3"
    sink.write(batch)
    sink._send_next()
    assert spool.blocked == []
    assert (sink.written_lines, sink.rejected_lines) == (9, 1)
    sink.close(1.0)


class SlowTransport(MemorySink):
    """Stores every request after a pause (a slow InfluxDB); thread-safe."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
        time.sleep(self.delay_s)
        with self.lock:
            super().write(lines)


def test_a_batch_in_flight_during_overflow_counts_as_written(tmp_path: Path) -> None:
    """InfluxDB stores the batch in flight while overflow evicts: it counts as written (it was stored)."""
    one = len(numbered(0, 1)[0]) + 1
    gate = threading.Event()
    entered = threading.Event()

    class Gated(MemorySink):
        def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
            entered.set()
            gate.wait(5)
            super().write(lines)

    transport = Gated()
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=30 * one, segment_bytes=10 * one).open()
    sink = InfluxSink(transport, batch_size=10, flush_interval_s=0.01, spool=spool)
    sink.start()
    sink.write(numbered(0, 10))
    assert entered.wait(5)
    sink.write(numbered(10, 60))  # far more than the spool holds, while lines 0..9 are in flight
    gate.set()
    assert sink.flush(5.0)
    sink.close(1.0)
    assert transport.lines[:10] == numbered(0, 10)
    assert set(transport.lines) <= set(numbered(0, 70))
    assert sink.written_lines == len(transport.lines)
    assert sink.written_lines + sink.dropped_lines == 70


def test_overflow_episode_ends_once_below_90_percent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Under steady overload the 'spool full' / 'catches up' pair is logged once, not on every batch."""
    one = len(numbered(0, 1)[0]) + 1
    transport = MemorySink()
    spool = DiskSpool(tmp_path, batch_size=5, max_bytes=100 * one, segment_bytes=5 * one).open()
    sink = InfluxSink(transport, batch_size=5, spool=spool)
    caplog.set_level(logging.INFO)
    n = 0
    for _ in range(40):  # each round: 10 lines in, one batch of 5 out: the spool fills and stays above 90 %
        sink.write(numbered(n, 10))
        n += 10
        sink._send_next()
    assert sink.dropped_lines > 0
    assert sum("spool full" in r.message for r in caplog.records) == 1
    assert sum("InfluxDB catches up;" in r.message for r in caplog.records) == 0
    assert sink.flush(5.0)
    assert sum("InfluxDB catches up;" in r.message for r in caplog.records) == 1
    sink.close(1.0)


def test_a_closed_spool_does_nothing(tmp_path: Path) -> None:
    """A request still in flight after close() must not delete a segment the next process has recovered."""
    spool = open_spool(tmp_path)
    spool.append(numbered(0, 20))
    batch = spool.take()
    assert batch is not None
    spool.close()
    successor = open_spool(tmp_path)
    assert spool.ack(batch) == 0
    spool.purge()
    assert spool.take() is None
    assert spool.append(numbered(20, 5)).failed == 5
    assert successor.lines == 20
    assert drain(successor) == numbered(0, 20)
    successor.close()


def test_enospc_evicts_the_oldest_segment_and_retries_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = open_spool(tmp_path)
    spool.append(numbered(0, 25))  # segments of 10, 10, 5
    batch = spool.take()  # the first is in flight: it is not the victim
    assert batch is not None
    real_write = os.write
    fail = [1]

    def full_once(fd: int, data: bytes | memoryview) -> int:
        if fail[0]:
            fail[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_once)
    result = spool.append(numbered(25, 3))
    assert (result.evicted, result.failed, result.error) == (10, 0, None)
    assert spool.ack(batch) == 10
    assert drain(spool) == numbered(20, 8)
    spool.close()


def test_little_free_space_is_a_warning(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=2**62).open()
    assert any("free" in w for w in spool.warnings)
    spool.close()
    assert open_spool(tmp_path).warnings == []


def test_spool_records_its_target_and_warns_on_a_change(tmp_path: Path) -> None:
    old = {"api": "v1", "url": "http://db1:8086", "database": "minewatch", "retention_policy": None}
    new = {**old, "url": "http://db2:8086"}
    first = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20, target=old).open()
    assert first.warnings == []
    first.append(numbered(0, 5))
    first.close()
    assert json.loads((tmp_path / "target.json").read_text()) == old
    second = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20, target=new).open()
    assert len(second.warnings) == 1
    assert "db1:8086" in second.warnings[0]
    assert "db2:8086" in second.warnings[0]
    assert json.loads((tmp_path / "target.json").read_text()) == new
    assert drain(second) == numbered(0, 5)  # still sent
    second.close()


def test_spool_target_has_no_credentials() -> None:
    """api, host:port, database and retention policy: the username and password stay out."""
    from collector.app import spool_target
    from collector.config import InfluxConfig

    settings = InfluxConfig(url="http://db.example:8086/", username="user", password_env="PW")
    target = spool_target(settings)
    assert target == {"api": "v1", "url": "http://db.example:8086", "database": "minewatch", "retention_policy": None}


def test_stranded_spools_of_another_sharding(tmp_path: Path) -> None:
    from collector.sinks.spool import stranded_spools

    base = tmp_path / "spool"
    for directory in (base, base / "shard-0-of-2", base / "shard-1-of-2"):
        spool = open_spool(directory)
        spool.append(numbered(0, 3))
        spool.close()
    (base / "shard-0-of-3").mkdir()  # empty: not reported
    assert stranded_spools(base, base) == [(base / "shard-0-of-2", 1), (base / "shard-1-of-2", 1)]
    assert stranded_spools(base, base / "shard-0-of-2") == [(base, 1), (base / "shard-1-of-2", 1)]


def assert_invariant(sink: InfluxSink, accepted: int) -> None:
    total = sink.written_lines + sink.dropped_lines + sink.rejected_lines + sink.buffered_lines
    assert accepted + sink.recovered_lines == total


def test_invariant_holds_across_a_restart(tmp_path: Path) -> None:
    transport = RefusingTransport()
    first = InfluxSink(transport, batch_size=10, spool=open_spool(tmp_path))
    batch = numbered(0, 30)
    batch[4] = "m,s=a n=bad 4"
    first.write(batch)
    first._send_next()
    assert_invariant(first, 30)
    first.close(0.0)
    second = InfluxSink(transport, batch_size=10, spool=open_spool(tmp_path))
    assert second.recovered_lines == 20
    second.write(numbered(30, 5))
    assert_invariant(second, 5)
    assert second.flush(5.0)
    assert_invariant(second, 5)
    assert (second.written_lines, second.buffered_lines) == (25, 0)
    second.close(1.0)


def test_invariant_holds_under_eight_writers_with_eviction(tmp_path: Path) -> None:
    """8 threads append into a small spool while a slow sender delivers: every line is accounted for once."""
    transport = SlowTransport(0.002)
    one = len(numbered(0, 1)[0]) + 1
    spool = DiskSpool(tmp_path, batch_size=20, max_bytes=200 * one, segment_bytes=20 * one).open()
    sink = InfluxSink(transport, batch_size=20, flush_interval_s=0.005, spool=spool)
    sink.start()

    def writer(k: int) -> None:
        for i in range(100):
            sink.write(numbered(k * 10_000 + i * 5, 5))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sink.flush(20.0)
    sink.close(1.0)
    assert_invariant(sink, 8 * 100 * 5)
    assert sink.dropped_lines > 0  # eviction happened
    assert sink.written_lines == len(transport.lines) == len(set(transport.lines))
