"""Benchmark: snapshot -> line protocol throughput (design target: >= 150k points/s end to end on 2 cores).

Run by hand: .venv/bin/python bench/lineprotocol.py [ACCOUNTS] [WORKERS_PER_ACCOUNT]
Prints points/s for building the lines of ACCOUNTS snapshots with WORKERS_PER_ACCOUNT workers each.
"""

from __future__ import annotations

import sys
import time

from collector.models import Earning, Payout, PoolAccountSnapshot, WorkerStats
from collector.sinks.points import PoolAccountTags, pool_account_lines


def make_snapshot(index: int, workers: int, now: int) -> PoolAccountSnapshot:
    return PoolAccountSnapshot(
        observed_at=now,
        coin="BTC",
        hashrate_hs=4.6e14 + index,
        hashrate_1h_hs=4.7e14,
        hashrate_24h_hs=4.68e14,
        workers_active=workers - 1,
        workers_inactive=1,
        balance_sats=21038 + index,
        workers=tuple(
            WorkerStats(f"rack{index}x{w:03d}", True, 2.0e14 + w, 1.99e14, 2.0e14, now - 5) for w in range(workers)
        ),
        earnings=(Earning(now - 86400, 21038, "daily", f"braiins:daily:{now - 86400}"),),
        payouts=(Payout(now - 3600, 50000, "bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m", None, "queued", f"p{index}"),),
    )


def main() -> None:
    accounts = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    now = 1_790_000_000
    snapshots = [make_snapshot(i, workers, now) for i in range(accounts)]
    declared = {"bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"}
    best = 0.0
    points = 0
    for _ in range(3):
        started = time.perf_counter()
        points = 0
        for i, snapshot in enumerate(snapshots):
            tags = PoolAccountTags(f"group-{i % 100}", "braiins", f"acct{i}", "BTC")
            points += sum(1 for _ in pool_account_lines(snapshot, tags, lambda address, at: address in declared))
        elapsed = time.perf_counter() - started
        best = max(best, points / elapsed)
    print(f"line protocol: {points} points, {accounts} snapshots x {workers} workers: {best:,.0f} points/s (best of 3)")


if __name__ == "__main__":
    main()
