"""The disk spool under faults, against the real influxd: influxd SIGKILLed mid-stream, refused lines, the
size bound during an outage, and the collector itself SIGKILLed mid-batch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import InfluxdServer, free_port
from stored_points import FieldValue, missing_or_different, stored_points
from unit.support import field_value, parse_line

from collector.sinks.buffered import InfluxSink
from collector.sinks.influx import V1Transport
from collector.sinks.lineprotocol import build_line
from collector.sinks.spool import DiskSpool

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000 * 1_000_000_000
MEASUREMENTS = ("spool_a", "spool_b", "spool_c")
SERIES = 4


def point(i: int) -> str:
    """Line `i` of the stream: its measurement, series, fields and timestamp all follow from `i`."""
    return build_line(
        MEASUREMENTS[i % len(MEASUREMENTS)], {"s": f"s{i % SERIES}"}, {"n": i, "x": i * 0.5, "t": f"p{i}"}, T0 + i
    )


@dataclass(frozen=True)
class Typed:
    """A parsed line with typed field values, as `missing_or_different` compares them."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    timestamp: int


def typed(line: str) -> Typed:
    parsed = parse_line(line)
    fields: dict[str, FieldValue] = {key: field_value(value) for key, value in parsed.fields.items()}
    return Typed(parsed.measurement, parsed.tags, fields, parsed.timestamp)


def points(indexes: Iterable[int]) -> list[Typed]:
    return [typed(point(i)) for i in indexes]


def stored_count(db: V1Transport, measurements: Iterable[str], first: int, last: int) -> int:
    """How many distinct points (series, time) InfluxDB holds for lines `first`..`last` of the measurements."""
    return sum(len(stored_points(db, m, T0 + first, T0 + last)) for m in measurements)


def held_indexes(directory: Path) -> list[int]:
    """The stream indexes (field n) of the lines the spool's segments hold, in order."""
    held: list[int] = []
    for segment in sorted(directory.glob("*.lp")):
        held += [int(m.group(1)) for m in re.finditer(r" n=(\d+)i", segment.read_text())]
    return held


@pytest.fixture
def sinks() -> Iterator[list[InfluxSink]]:
    """Sinks a test built, closed quickly whatever happened (their spool locks released)."""
    built: list[InfluxSink] = []
    yield built
    for sink in built:
        sink.close(timeout_s=0.2)


def disk_sink(
    influxd: InfluxdServer,
    db: V1Transport,
    directory: Path,
    sinks: list[InfluxSink],
    *,
    batch_size: int = 1000,
    max_bytes: int = 2**30,
    segment_bytes: int | None = None,
    start: bool = True,
) -> InfluxSink:
    spool = DiskSpool(directory, batch_size=batch_size, max_bytes=max_bytes, segment_bytes=segment_bytes).open()
    sink = InfluxSink(
        V1Transport(influxd.url, db.database, timeout_s=2.0),
        batch_size=batch_size,
        flush_interval_s=0.2,
        max_backoff_s=0.5,
        spool=spool,
    )
    sinks.append(sink)
    if start:
        sink.start()
    return sink


@pytest.mark.integration
def test_influxd_sigkilled_mid_stream_loses_and_duplicates_nothing(
    influxd: InfluxdServer, influx_db: V1Transport, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    """50,000 lines at a steady rate over ~10 s; influxd SIGKILLed at ~3 s and restarted ~3 s later on the same
    data: every line is stored once, with its exact fields, and write() never waited for the store."""
    sink = disk_sink(influxd, influx_db, tmp_path / "spool", sinks)
    total, per_tick, tick_s = 50_000, 500, 0.1
    killed_at, restarted = 30, threading.Event()

    def restart() -> None:
        influxd.start()
        restarted.set()

    slowest = 0.0
    began = time.monotonic()
    try:
        for tick in range(total // per_tick):
            if tick == killed_at:
                influxd.kill()
                threading.Timer(3.0, restart).start()
            started = time.monotonic()
            sink.write([point(i) for i in range(tick * per_tick, (tick + 1) * per_tick)])
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(max(0.0, began + (tick + 1) * tick_s - time.monotonic()))
        assert restarted.wait(10.0)
        assert sink.flush(20.0), sink.last_error
    finally:
        restarted.wait(10.0)
        influxd.start()

    assert missing_or_different(influx_db, points(range(total))) == []
    assert stored_count(influx_db, MEASUREMENTS, 0, total) == total
    assert (sink.written_lines, sink.dropped_lines, sink.rejected_lines, sink.buffered_lines) == (total, 0, 0, 0)
    assert sink.write_errors > 0  # the outage happened while lines were waiting
    assert slowest < 0.25, f"write() blocked for {slowest:.3f} s"
    assert [p for p in (tmp_path / "spool").iterdir() if p.suffix == ".lp"] == []


@pytest.mark.integration
def test_refused_lines_are_isolated_and_set_aside(
    influxd: InfluxdServer, influx_db: V1Transport, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    """A batch holding a field-type conflict and a garbage line among good lines: the good ones are stored,
    the two bad ones are counted and kept in the set-aside file, and nothing is retried forever."""
    sink = disk_sink(influxd, influx_db, tmp_path / "spool", sinks, batch_size=200)
    sink.write([build_line("sink", {"src": "t"}, {"n": -1}, T0 - 1)])  # `n` is an integer field from now on
    assert sink.flush(10.0)

    good = [build_line("sink", {"src": "t"}, {"n": i}, T0 + i) for i in range(200)]
    conflict = build_line("sink", {"src": "t"}, {"n": 0.5}, T0 + 1000)
    garbage = "this is not line protocol"
    batch = [*good[:50], conflict, *good[50:120], garbage, *good[120:]]
    sink.write(batch[:200])
    sink.write(batch[200:])
    assert sink.flush(10.0)

    first = build_line("sink", {"src": "t"}, {"n": -1}, T0 - 1)
    assert missing_or_different(influx_db, [typed(x) for x in [first, *good]]) == []
    assert len(stored_points(influx_db, "sink", T0 - 1, T0 + 1000)) == 201  # -1 and the good ones only
    assert (sink.written_lines, sink.rejected_lines, sink.buffered_lines) == (201, 2, 0)
    rejected = (tmp_path / "spool" / "rejected" / "rejected.lp").read_text().splitlines()
    assert sorted(x for x in rejected if not x.startswith("#")) == sorted([conflict, garbage])
    assert sink.consecutive_failures == 0


@pytest.mark.integration
def test_full_spool_during_an_outage_drops_the_oldest(
    influxd: InfluxdServer, influx_db: V1Transport, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    """influxd down, the spool fills to its bound: the oldest lines are dropped and counted, the depth never
    exceeds the bound by more than the segment in flight (never evicted), and after the restart the lines
    the spool held (that segment, then the newest) are the ones delivered."""
    limit = 64 * 1024
    segment = limit // 16
    sink = disk_sink(
        influxd, influx_db, tmp_path / "spool", sinks, batch_size=100, max_bytes=limit, segment_bytes=segment
    )
    total = 3000
    deepest = 0
    influxd.kill()
    try:
        for start in range(0, total, 30):
            sink.write([point(i) for i in range(start, start + 30)])
            deepest = max(deepest, sink.spool_stats().bytes)
            on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.lp"))
            assert on_disk <= limit + segment
        held = sink.buffered_lines
        kept = held_indexes(tmp_path / "spool")
    finally:
        influxd.start()
    assert sink.flush(15.0), sink.last_error

    assert 0 < deepest <= limit + segment
    assert len(kept) == held
    assert kept[-1] == total - 1
    assert sink.dropped_lines == total - held > 0
    assert sink.written_lines == held
    assert missing_or_different(influx_db, points(kept)) == []
    assert stored_count(influx_db, MEASUREMENTS, 0, total) == held


@pytest.mark.integration
def test_collector_sigkilled_mid_batch_loses_nothing_it_appended(
    influxd: InfluxdServer, influx_db: V1Transport, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    """A child process appends through a sink to a disk spool while its store is unreachable and is SIGKILLed;
    the next process on that spool delivers every line the child saw write() return for."""
    directory = tmp_path / "spool"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import pathlib, sys, time
                from collector.sinks.buffered import InfluxSink
                from collector.sinks.influx import V1Transport
                from collector.sinks.spool import DiskSpool
                spool = DiskSpool(pathlib.Path({str(directory)!r}), batch_size=500, max_bytes=2**30).open()
                sink = InfluxSink(V1Transport("http://127.0.0.1:{free_port()}", "x", timeout_s=0.5),
                                  batch_size=500, flush_interval_s=0.05, spool=spool)
                sink.start()
                n = 0
                while True:
                    sink.write([f"kid,s=a n={{i}}i {{{T0} + i}}" for i in range(n, n + 7)])
                    n += 7
                    print(n, flush=True)
                    time.sleep(0.0005)
            """),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    reported = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line, "the child died early"
        reported = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    for line in child.stdout:  # what it printed before the kill also counts
        reported = int(line)
    assert reported > 1000

    sink = disk_sink(influxd, influx_db, directory, sinks, batch_size=500, start=False)
    recovered = sink.buffered_lines
    sink.start()
    assert sink.flush(20.0), sink.last_error

    assert recovered >= reported
    kid = [typed(f"kid,s=a n={i}i {T0 + i}") for i in range(recovered)]
    assert missing_or_different(influx_db, kid) == []  # every line, in one piece
    assert len(stored_points(influx_db, "kid", T0, T0 + 10 * recovered)) == recovered  # and nothing else
