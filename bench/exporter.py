"""Benchmark: one Prometheus scrape of the exporter for a large fleet (the design's scale is 50,000 miners).

Run by hand:
    .venv/bin/python bench/exporter.py [--miners 50000] [--accounts 2000] [--repeat 5]

Builds the exporter's registry over a state store holding one successful poll of every miner and pool account
(no group config: the per-group families are a few series per group and cost nothing next to the per-source
ones), then renders the scrape `--repeat` times and prints the median and worst render time, the number of
samples and the payload size. Prometheus' default scrape timeout is 10 s; the render must stay well inside it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from collector.models import DeviceSnapshot, PoolAccountSnapshot
from collector.sinks.base import MemorySink
from collector.state import StateStore
from exporters.prometheus.collector import build_registry
from exporters.prometheus.server import render_scrape

NOW = 1_790_000_000.0


@dataclass(frozen=True)
class BenchTarget:
    key: str
    health_tags: tuple[str, str, str]


@dataclass
class BenchFleet:
    targets: list[BenchTarget]


@dataclass
class BenchCollector:
    state: StateStore
    targets: list[BenchTarget]
    fleets: list[BenchFleet]
    networks: Sequence[BenchTarget] = ()
    groups: Sequence[object] = ()
    sink: object = field(default_factory=MemorySink)
    clock: Callable[[], float] = lambda: NOW


def build(miners: int, accounts: int, groups: int) -> BenchCollector:
    state = StateStore()
    targets = []
    for n in range(accounts):
        group = f"group{n % groups:04d}"
        target = BenchTarget(f"{group}/braiins/acct{n:05d}", (group, "braiins", f"acct{n:05d}"))
        snapshot = PoolAccountSnapshot(int(NOW), "BTC", hashrate_hs=1.2e15)
        state.record_success(target.key, snapshot, at=NOW, duration_s=0.2)
        targets.append(target)
    devices = []
    for n in range(miners):
        group = f"group{n % groups:04d}"
        target = BenchTarget(f"{group}/cgminer/miner{n:06d}", (group, "cgminer", f"miner{n:06d}"))
        snapshot = DeviceSnapshot(observed_at=int(NOW), model="Antminer S21", hashrate_hs=2.0e14, power_w=3500.0)
        if n % 50 == 0:  # some miners are down
            state.record_failure(target.key, at=NOW, duration_s=5.0, error_kind="timeout")
        else:
            state.record_success(target.key, snapshot, at=NOW, duration_s=0.05)
        devices.append(target)
    return BenchCollector(state=state, targets=targets, fleets=[BenchFleet(devices)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    collector = build(args.miners, args.accounts, args.groups)
    registry = build_registry(collector, version="bench")  # type: ignore[arg-type]  # duck-typed inputs
    timings = []
    text = ""
    for _ in range(args.repeat):
        started = time.perf_counter()
        text = render_scrape(registry)
        timings.append(time.perf_counter() - started)
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    print(
        f"{args.miners} miners, {args.accounts} accounts: {samples} samples, {len(text) / 2**20:.1f} MiB; "
        f"render median {statistics.median(timings):.2f} s, worst {max(timings):.2f} s over {args.repeat}"
    )


if __name__ == "__main__":
    main()
