"""Benchmark: the disk spool between the collector and InfluxDB (throughput, a long outage, the drain after it).

Run by hand:
    .venv/bin/python bench/spool.py [--lines 500000] [--outage-lines 3000000] [--write-size 500] [--no-fsync]

Starts its own influxd (1.6, as the tests do) on 127.0.0.1 in a temporary directory under the repository's
`.bench/` (a real disk, not /tmp, which is often tmpfs: fsync and the page cache behave differently there)
and measures three things
with the real `InfluxSink` over a `DiskSpool` (batches of 5,000 lines, fsync on seal unless `--no-fsync`):

1. outage: no InfluxDB (the transport points at a closed port), `--outage-lines` appended in writes of
   `--write-size`; prints the append rate, the latency of one `write()` (p50, p99, max: it waits for the local
   append only), the spool's size on disk and the process's RSS before, during (its maximum, sampled) and
   after: memory must stay flat whatever the backlog, since lines live on disk;
2. drain: a new sink opens that spool (recovery scan timed) against the real influxd and delivers the backlog;
3. throughput: lines/s from `write()` to acknowledged by influxd (and `write()` latency again, now with the
   sender busy), the spool empty again at the end.

The lines are realistic `device` points (about 150 bytes; 1,000 series, explicit timestamps), generated as they
are written so that the generator itself holds no backlog in memory.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from collector.sinks.buffered import InfluxSink
from collector.sinks.influx import V1Transport
from collector.sinks.spool import DiskSpool
from simulator.local_servers import InfluxdServer, free_port

T0 = 1_700_000_000 * 1_000_000_000
BENCH_DIR = Path(__file__).resolve().parents[1] / ".bench"  # gitignored
SERIES = 1000
BATCH = 5000


def device_lines(start: int, count: int) -> list[str]:
    """Lines `start`..`start+count` of the stream: 1,000 miners, one point per miner per second."""
    out = []
    for i in range(start, start + count):
        device, second = i % SERIES, i // SERIES
        out.append(
            f"device,device=miner-{device:04d},group_id=bench-group,model=S19j\\ Pro,site=site-{device % 7} "
            f"hashrate_hs={1.04e14 + device * 1e9},power_w={3250 + device % 50}i,temp_max_c={61.5 + device % 9},"
            f"fan_min_rpm={5400 + device}i,online=1i {T0 + second * 1_000_000_000}"
        )
    return out


def latency(samples: list[float]) -> str:
    """p50, p99 and max of `write()` durations, in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return "no writes"

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"write() latency p50 {at(0.5):.3f} ms, p99 {at(0.99):.3f} ms, max {ordered[-1] * 1000:.3f} ms"


def rss_mib() -> float:
    """Resident set size now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spool_size_mib(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.glob("*.lp")) / 2**20


def sink_on(directory: Path, url: str, database: str, *, fsync: bool) -> tuple[InfluxSink, float]:
    """A started sink over a disk spool in `directory`; also the time its open (lock + recovery scan) took."""
    began = time.perf_counter()
    spool = DiskSpool(directory, batch_size=BATCH, max_bytes=8 * 2**30, fsync=fsync).open()
    opened = time.perf_counter() - began
    transport = V1Transport(url, database, timeout_s=30.0)
    sink = InfluxSink(transport, batch_size=BATCH, flush_interval_s=1.0, max_backoff_s=2.0, spool=spool)
    sink.start()
    return sink, opened


def writes(total: int, size: int) -> Iterator[list[str]]:
    for start in range(0, total, size):
        yield device_lines(start, min(size, total - start))


def outage(directory: Path, lines: int, size: int, *, fsync: bool) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    sink, _ = sink_on(directory, dead, "bench", fsync=fsync)
    before, peak_during = rss_mib(), 0.0
    appending = 0.0
    took: list[float] = []
    for n, batch in enumerate(writes(lines, size)):
        began = time.perf_counter()
        sink.write(batch)
        took.append(time.perf_counter() - began)
        appending += took[-1]
        if n % 200 == 0:
            peak_during = max(peak_during, rss_mib())
    stats = sink.spool_stats()
    sink.close(timeout_s=0.1)
    print(f"outage: {lines:,} lines appended in writes of {size}: {lines / appending:,.0f} lines/s in write()")
    print(f"outage: {latency(took)}")
    print(
        f"outage: spool {stats.lines:,} lines, {stats.segments:,} segments, {stats.bytes / 2**20:,.0f} MiB "
        f"({spool_size_mib(directory):,.0f} MiB of files); dropped {sink.dropped_lines}"
    )
    print(
        f"outage: RSS {before:,.0f} MiB before, {peak_during:,.0f} MiB at most during, {rss_mib():,.0f} MiB after; "
        f"peak RSS of the process so far {peak_rss_mib():,.0f} MiB"
    )


def drain(directory: Path, url: str, database: str, *, fsync: bool) -> None:
    sink, opened = sink_on(directory, url, database, fsync=fsync)
    backlog = sink.buffered_lines
    began = time.perf_counter()
    while sink.buffered_lines:
        time.sleep(0.2)
        if sink.consecutive_failures > 5:
            raise SystemExit(f"drain failing: {sink.last_error}")
    elapsed = time.perf_counter() - began
    sink.close(timeout_s=1.0)
    print(f"drain: reopened a spool of {backlog:,} lines in {opened:.2f} s (lock + recovery scan)")
    rate = sink.written_lines / elapsed
    print(f"drain: delivered {sink.written_lines:,} lines in {elapsed:.1f} s: {rate:,.0f} lines/s")


def throughput(directory: Path, url: str, database: str, lines: int, size: int, *, fsync: bool) -> None:
    sink, _ = sink_on(directory, url, database, fsync=fsync)
    batches = list(writes(lines, size))  # generated beforehand: the figure is the spool's and influxd's, not ours
    took: list[float] = []
    began = time.perf_counter()
    for batch in batches:
        one = time.perf_counter()
        sink.write(batch)
        took.append(time.perf_counter() - one)
    appended = time.perf_counter() - began
    assert sink.flush(600.0), sink.last_error
    elapsed = time.perf_counter() - began
    sink.close(timeout_s=1.0)
    print(
        f"throughput: {lines:,} lines, write() to acknowledged by influxd in {elapsed:.1f} s: "
        f"{lines / elapsed:,.0f} lines/s (write() alone: {lines / appended:,.0f} lines/s); "
        f"written {sink.written_lines:,}, dropped {sink.dropped_lines}, rejected {sink.rejected_lines}"
    )
    print(f"throughput: {latency(took)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000, help="lines for the throughput run")
    parser.add_argument("--outage-lines", type=int, default=3_000_000, help="lines appended with InfluxDB away")
    parser.add_argument("--write-size", type=int, default=500, help="lines per write() call")
    parser.add_argument("--no-fsync", action="store_true", help="do not fsync segments when sealing them")
    args = parser.parse_args()
    fsync = not args.no_fsync
    logging.basicConfig(level=logging.ERROR)  # the outage's connection errors are expected
    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="spool-", dir=BENCH_DIR))
    (work / "influxd").mkdir()
    influxd = InfluxdServer(work / "influxd")
    try:
        influxd.start()
        for database in ("bench_drain", "bench_throughput"):
            V1Transport(influxd.url, database).ensure_database()
        size = len(device_lines(0, 1)[0])
        print(f"influxd {influxd.url}; batches of {BATCH} lines; fsync on seal: {fsync}; a line is ~{size} B")
        outage(work / "outage", args.outage_lines, args.write_size, fsync=fsync)
        drain(work / "outage", influxd.url, "bench_drain", fsync=fsync)
        throughput(work / "throughput", influxd.url, "bench_throughput", args.lines, args.write_size, fsync=fsync)
        print(f"peak RSS of the whole run: {peak_rss_mib():,.0f} MiB")
    finally:
        influxd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
