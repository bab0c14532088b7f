"""The disk spool on a real directory: append, segments, recovery, torn tails, the bound, the lock, age, disk errors;
and the sink's bisection of a refused batch. Every file operation is real; only the store is scripted here (the
real influxd is in tests/integration/test_spool_faults.py)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.errors import StorageError
from collector.sinks.base import MemorySink
from collector.sinks.buffered import InfluxSink
from collector.sinks.lineprotocol import build_line, line
from collector.sinks.points import source_health_line
from collector.sinks.spool import SEGMENT_NAME, DiskSpool, SpoolError
from unit.support import ConfigDir

REPO = Path(__file__).resolve().parents[2]
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


def test_eviction_of_the_batch_in_flight_is_not_acknowledged(tmp_path: Path) -> None:
    """A batch taken, then evicted by overflow, acks as 0 lines: its outcome counts as dropped, not written."""
    one = len(numbered(0, 1)[0]) + 1
    spool = open_spool(tmp_path, max_bytes=20 * one)
    spool.append(numbered(0, 10))
    batch = spool.take()
    assert batch is not None
    result = spool.append(numbered(10, 20))  # needs the in-flight segment's room
    assert result.evicted == 10
    assert spool.ack(batch) == 0
    assert drain(spool) == numbered(10, 20)
    spool.close()


def test_single_append_larger_than_the_spool_keeps_its_newest_lines(tmp_path: Path) -> None:
    one = len(numbered(0, 1)[0]) + 1
    spool = open_spool(tmp_path, batch_size=100, max_bytes=10 * one)
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
    assert list(sink.set_aside) == [["bad line one", "bad line two"]]
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
