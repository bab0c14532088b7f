"""The spool's depth and age in a scrape: read from the sink's spool at scrape time, absent when unknown."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from exporter_support import scrape
from exporter_world import ExporterWorld

from collector.sinks.base import MemorySink
from collector.sinks.buffered import InfluxSink
from collector.sinks.spool import DiskSpool


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_disk_spool_depth_and_age(world: ExporterWorld, tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0)
    spool = DiskSpool(tmp_path, batch_size=10, max_bytes=2**20, clock=clock).open()
    sink = InfluxSink(MemorySink(), batch_size=10, spool=spool, clock=clock)  # never started: nothing is sent
    lines = [f"m n={i}i {i}" for i in range(25)]
    sink.write(lines)
    clock.now += 42.0

    result = scrape(replace(world.collector, sink=sink), world.engine)
    assert result.value("minewatch_spool_lines") == 25 == result.value("minewatch_points_buffered")
    assert result.value("minewatch_spool_bytes") == sum(len(x) + 1 for x in lines)
    assert result.value("minewatch_spool_segments") == 3
    assert result.value("minewatch_spool_oldest_age_seconds") == pytest.approx(42.0)

    assert sink.flush(5.0)
    drained = scrape(replace(world.collector, sink=sink), world.engine)
    assert (drained.value("minewatch_spool_lines"), drained.value("minewatch_spool_segments")) == (0, 0)
    assert not drained.has("minewatch_spool_oldest_age_seconds")  # empty: no oldest line, no sample
    sink.close(0.1)


def test_memory_spool_has_no_segments(world: ExporterWorld) -> None:
    result = scrape(world.collector, world.engine)
    assert result.value("minewatch_spool_lines") == 0
    assert not result.has("minewatch_spool_segments")
    bare = scrape(replace(world.collector, sink=MemorySink()), world.engine)
    assert not {s.name for s in bare.samples if s.name.startswith("minewatch_spool_")}
