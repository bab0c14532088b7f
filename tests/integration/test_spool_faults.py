"""The disk spool under faults, against the real influxd: influxd SIGKILLed mid-stream, refused lines, the
size bound during an outage, and the collector itself SIGKILLed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import InfluxdServer, free_port

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


def rows(db: V1Transport, measurement: str) -> list[tuple[int, str, int, float, str]]:
    """(time, series, n, x, t) of every stored point of a measurement, sorted."""
    found: list[tuple[int, str, int, float, str]] = []
    for series in db.query(f'SELECT "n", "x", "t" FROM "{measurement}" GROUP BY "s"'):
        found += [(r["time"], series.tags["s"], r["n"], r["x"], r["t"]) for r in series.records()]
    return sorted(found)


def expected_rows(indexes: range | list[int], measurement: str) -> list[tuple[int, str, int, float, str]]:
    picked = [i for i in indexes if MEASUREMENTS[i % len(MEASUREMENTS)] == measurement]
    return sorted((T0 + i, f"s{i % SERIES}", i, i * 0.5, f"p{i}") for i in picked)


def stored_n(db: V1Transport, measurement: str) -> list[int]:
    series = db.query(f'SELECT "n" FROM "{measurement}"')
    return sorted(series[0].column("n")) if series else []


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
    start: bool = True,
) -> InfluxSink:
    spool = DiskSpool(directory, batch_size=batch_size, max_bytes=max_bytes).open()
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

    for measurement in MEASUREMENTS:
        assert rows(influx_db, measurement) == expected_rows(range(total), measurement)
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

    assert stored_n(influx_db, "sink") == [-1, *range(200)]
    assert (sink.written_lines, sink.rejected_lines, sink.buffered_lines) == (201, 2, 0)
    rejected = (tmp_path / "spool" / "rejected" / "rejected.lp").read_text().splitlines()
    assert sorted(x for x in rejected if not x.startswith("#")) == sorted([conflict, garbage])
    assert sink.consecutive_failures == 0


@pytest.mark.integration
def test_full_spool_during_an_outage_drops_the_oldest(
    influxd: InfluxdServer, influx_db: V1Transport, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    """influxd down, the spool fills to its bound: the oldest lines are dropped and counted, the depth never
    exceeds the bound, and after the restart the newest lines are the ones delivered."""
    limit = 64 * 1024
    sink = disk_sink(influxd, influx_db, tmp_path / "spool", sinks, batch_size=100, max_bytes=limit)
    total = 3000
    deepest = 0
    influxd.kill()
    try:
        for start in range(0, total, 30):
            sink.write([point(i) for i in range(start, start + 30)])
            deepest = max(deepest, sink.spool_stats().bytes)
            on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.lp"))
            assert on_disk <= limit
        held = sink.buffered_lines
    finally:
        influxd.start()
    assert sink.flush(15.0), sink.last_error

    assert 0 < deepest <= limit
    assert sink.dropped_lines == total - held > 0
    assert sink.written_lines == held
    for measurement in MEASUREMENTS:
        assert rows(influx_db, measurement) == expected_rows(range(total - held, total), measurement)


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

    stored = stored_n(influx_db, "kid")
    assert recovered >= reported
    assert stored == list(range(len(stored)))  # every line, once, in one piece
    assert len(stored) >= reported
