"""InfluxSink: Telegraf's output model against the real influxd (kill, restart, overflow, refusals), plus the
bookkeeping that needs a scripted transport (a batch in flight during overflow, writes never blocking)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from servers import InfluxdServer, StubHTTPServer, StubResponse

from collector.errors import StorageError
from collector.sinks.base import MemorySink
from collector.sinks.buffered import InfluxSink
from collector.sinks.influx import V1Transport
from collector.sinks.lineprotocol import build_line

T0 = 1_700_000_000 * 1_000_000_000


def lines(start: int, count: int, measurement: str = "sink") -> list[str]:
    """`count` distinct points: field `n` = their index, so the stored set says exactly which arrived."""
    return [build_line(measurement, {"src": "test"}, {"n": i}, T0 + i) for i in range(start, start + count)]


def stored(db: V1Transport, measurement: str = "sink") -> list[int]:
    """The indexes stored in a measurement, sorted."""
    series = db.query(f'SELECT "n" FROM "{measurement}"')
    return sorted(series[0].column("n")) if series else []


def assert_accounted(sink: InfluxSink, accepted: int) -> None:
    """Every accepted line is written, dropped, rejected or still buffered."""
    total = sink.written_lines + sink.dropped_lines + sink.rejected_lines + sink.buffered_lines
    assert total == accepted, vars(sink)


@pytest.fixture
def sink_for(influxd: InfluxdServer) -> Iterator[list[InfluxSink]]:
    """Collects sinks built by a test and closes them, quickly, whatever happened."""
    sinks: list[InfluxSink] = []
    yield sinks
    for sink in sinks:
        sink.close(timeout_s=0.5)


def make_sink(
    influxd: InfluxdServer,
    database: str,
    sinks: list[InfluxSink],
    *,
    batch_size: int = 500,
    max_buffered_lines: int = 100_000,
) -> InfluxSink:
    """A started sink with fast timings, on its own transport (closing the sink closes it)."""
    sink = InfluxSink(
        V1Transport(influxd.url, database, timeout_s=2.0),
        batch_size=batch_size,
        max_buffered_lines=max_buffered_lines,
        flush_interval_s=0.05,
        max_backoff_s=0.2,
    )
    sinks.append(sink)
    sink.start()
    return sink


@pytest.mark.integration
def test_writes_land(influxd: InfluxdServer, influx_db: V1Transport, sink_for: list[InfluxSink]) -> None:
    """Many small writes become few batches and all arrive."""
    sink = make_sink(influxd, influx_db.database, sink_for)

    for start in range(0, 2000, 40):
        sink.write(lines(start, 40))

    assert sink.flush(10.0)
    assert stored(influx_db) == list(range(2000))
    assert (sink.written_lines, sink.dropped_lines, sink.rejected_lines, sink.buffered_lines) == (2000, 0, 0, 0)


@pytest.mark.integration
def test_survives_influxd_sigkill_and_restart(
    influxd: InfluxdServer, influx_db: V1Transport, sink_for: list[InfluxSink]
) -> None:
    """influxd SIGKILLed mid-run: writes keep returning at once, everything buffered arrives after restart."""
    sink = make_sink(influxd, influx_db.database, sink_for)
    sink.write(lines(0, 300))
    assert sink.flush(10.0)

    influxd.kill()
    try:
        slowest = 0.0
        for start in range(300, 1300, 50):
            began = time.monotonic()
            sink.write(lines(start, 50))
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.02)
        assert not sink.flush(0.3)  # nothing can be delivered while the server is down
        assert sink.buffered_lines == 1000
        assert sink.consecutive_failures > 0
        assert sink.last_error is not None
        assert "unreachable" in sink.last_error
    finally:
        influxd.start()

    assert sink.flush(15.0)
    assert stored(influx_db) == list(range(1300))
    assert (sink.written_lines, sink.dropped_lines, sink.rejected_lines, sink.buffered_lines) == (1300, 0, 0, 0)
    assert sink.consecutive_failures == 0
    assert slowest < 0.25, f"write() blocked for {slowest:.3f} s"


@pytest.mark.integration
def test_overflow_drops_the_oldest(influxd: InfluxdServer, influx_db: V1Transport) -> None:
    """A full buffer drops its oldest lines and counts them; the newest lines are the ones delivered."""
    sink = InfluxSink(V1Transport(influxd.url, influx_db.database), batch_size=20, max_buffered_lines=50)

    for start in range(0, 80, 10):  # not started: everything stays buffered
        sink.write(lines(start, 10))
    sink.write(lines(80, 70))  # one write larger than the whole buffer keeps its newest lines

    assert (sink.dropped_lines, sink.buffered_lines) == (100, 50)
    assert sink.flush(10.0)  # no writer thread: flushed from this thread
    assert stored(influx_db) == list(range(100, 150))
    assert (sink.written_lines, sink.dropped_lines, sink.buffered_lines) == (50, 100, 0)
    sink.close()


@pytest.mark.integration
def test_refused_batch_set_aside_later_batches_land(
    influxd: InfluxdServer, influx_db: V1Transport, sink_for: list[InfluxSink]
) -> None:
    """A field type conflict sets that batch aside (counted, kept for inspection); later batches still land."""
    sink = make_sink(influxd, influx_db.database, sink_for)
    sink.write(lines(0, 100))
    assert sink.flush(10.0)

    conflicting = [build_line("sink", {"src": "test"}, {"n": float(i)}, T0 + i) for i in range(1000, 1030)]
    sink.write(conflicting)
    assert sink.flush(10.0)
    sink.write(lines(100, 100))
    assert sink.flush(10.0)

    assert stored(influx_db) == list(range(200))
    assert (sink.written_lines, sink.rejected_lines, sink.dropped_lines, sink.buffered_lines) == (200, 30, 0, 0)
    assert list(sink.recent_refusals) == [conflicting]
    assert sink.last_error is not None
    assert "field type conflict" in sink.last_error
    assert "dropped=30" in sink.last_error


@pytest.mark.integration
def test_close_flushes(influxd: InfluxdServer, influx_db: V1Transport) -> None:
    """close() delivers what is buffered, stops the thread, and later writes are counted as dropped."""
    sink = InfluxSink(V1Transport(influxd.url, influx_db.database), flush_interval_s=60.0)
    sink.start()
    sink.write(lines(0, 10))

    sink.close()
    sink.write(lines(10, 5))

    assert stored(influx_db) == list(range(10))
    assert (sink.written_lines, sink.dropped_lines) == (10, 5)


# -- scripted transports ----------------------------------------------------------------------------------


class GatedTransport(MemorySink):
    """Blocks every write until `gate` is set; optionally fails the first writes with given errors."""

    def __init__(self, errors: Sequence[StorageError] = ()) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.errors = list(errors)

    def write(self, lines: Sequence[str]) -> None:  # type: ignore[override]
        self.entered.set()
        self.gate.wait(10.0)
        if self.errors:
            raise self.errors.pop(0)
        super().write(lines)


def test_write_never_waits_for_a_stuck_store() -> None:
    """While the transport hangs, write() still returns at once."""
    transport = GatedTransport()
    sink = InfluxSink(transport, batch_size=10, flush_interval_s=0.01)
    sink.start()
    sink.write([f"m n={i}i {i}" for i in range(10)])
    assert transport.entered.wait(5.0)

    began = time.monotonic()
    for i in range(100):
        sink.write([f"m n={i}i {i}"])
    elapsed = time.monotonic() - began

    transport.gate.set()
    assert sink.flush(5.0)
    sink.close()
    assert elapsed < 0.25  # the transport is stuck for as long as the gate stays shut
    assert len(transport.lines) == 110


def test_overflow_while_a_batch_is_in_flight() -> None:
    """Lines of the batch in flight that overflow pushes out count as dropped, never twice."""
    transport = GatedTransport()
    sink = InfluxSink(transport, batch_size=10, max_buffered_lines=10, flush_interval_s=0.01)
    sink.start()
    sink.write([f"a{i}" for i in range(10)])
    assert transport.entered.wait(5.0)

    sink.write([f"b{i}" for i in range(4)])  # pushes a0..a3, which are in flight, out of the buffer
    transport.gate.set()
    assert sink.flush(5.0)
    sink.close()

    assert transport.batches[0] == [f"a{i}" for i in range(10)]  # what was sent is sent
    assert transport.lines[10:] == [f"b{i}" for i in range(4)]
    assert (sink.written_lines, sink.dropped_lines, sink.rejected_lines, sink.buffered_lines) == (10, 4, 0, 0)
    assert_accounted(sink, 14)


def test_retryable_failures_back_off_and_keep_order() -> None:
    """503s keep the batch at the head; retries back off; order is preserved once the store is back."""
    errors = [StorageError("503", status=503, retryable=True) for _ in range(3)]
    transport = GatedTransport(errors)
    transport.gate.set()
    sink = InfluxSink(transport, batch_size=5, flush_interval_s=0.02, max_backoff_s=0.1)
    sink.start()
    sink.write([f"l{i}" for i in range(12)])

    assert sink.flush(5.0)
    sink.close()

    assert transport.lines == [f"l{i}" for i in range(12)]
    assert (sink.written_lines, sink.write_errors, sink.rejected_lines) == (12, 3, 0)
    assert sink.last_error == "503"


def test_credentials_refused_are_held_not_discarded() -> None:
    """401s (a rotated password) keep the lines buffered and retried; once accepted, nothing was lost."""
    answers = [StubResponse(401, '{"error":"authorization failed"}')] * 3 + [StubResponse(204)]
    with StubHTTPServer(answers) as stub:
        sink = InfluxSink(
            V1Transport(stub.url, "db", username="u", password="secret-pw"),
            flush_interval_s=0.02,
            max_backoff_s=0.05,
        )
        sink.start()
        sink.write([f"m n={i}i {i}" for i in range(7)])
        assert sink.flush(5.0)
        sink.close()

    assert (sink.written_lines, sink.rejected_lines, sink.write_errors) == (7, 0, 3)
    assert sink.last_error is not None
    assert "secret-pw" not in sink.last_error
    assert stub.requests[-1].body.count(b"\n") == 6


def test_flush_without_thread_gives_up_at_the_deadline() -> None:
    """Inline flush with the store down returns False by the deadline and keeps the lines."""
    transport = GatedTransport([StorageError("down", retryable=True)] * 100)
    transport.gate.set()
    sink = InfluxSink(transport, flush_interval_s=0.05, max_backoff_s=0.1)
    sink.write(["a", "b"])

    began = time.monotonic()
    assert not sink.flush(0.4)
    assert time.monotonic() - began < 0.6
    assert sink.buffered_lines == 2
    assert_accounted(sink, 2)
