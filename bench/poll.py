"""Benchmark: one `collect --once` round over N simulated pool accounts (design target: 10,000 accounts per 60 s).

Run by hand: .venv/bin/python bench/poll.py [ACCOUNTS] [WORKERS]
The simulator runs in its own process on 127.0.0.1 (so it does not share the collector's GIL); points go to
an in-memory sink. Prints accounts/s, points/s and the per-poll duration percentiles.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from collector.adapters.registry import source_registry
from collector.app import build_collector, collect_once
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from simulator.configgen import write_config
from simulator.local_servers import free_port
from simulator.scenario import load_scenario

NOW_HINT = "history_start = 2026-11-01"


def scenario_text(accounts: int) -> str:
    lines = ['name = "bench"', "seed = 1", NOW_HINT, "sats_per_phs_day = 45000", ""]
    for i in range(accounts):
        pool = "braiins" if i % 2 == 0 else "emcd"
        lines += [
            "[[accounts]]",
            f'group_id = "g{i // 10:04d}"',
            f'pool = "{pool}"',
            f'username = "acct{i:05d}"',
            f'secret = "{pool}-bench-secret-{i:05d}"',
            'payout_addresses = ["bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"]',
        ]
        for w in range(5):
            lines += ["[[accounts.workers]]", f'name = "w{w}"', "nominal_ths = 200.0"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    accounts = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-"))
    scenario_path = work / "bench.toml"
    scenario_path.write_text(scenario_text(accounts))
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "simulate",
            "--scenario",
            str(scenario_path),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(url + "/stats/json/btc/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        budgets = (
            f"interval_s = 60\ntimeout_s = 30\nworkers = {workers}\n\n"
            "[rate_budgets.braiins]\nrequests_per_minute = 1000000\nburst = 1000\n\n"
            "[rate_budgets.emcd]\nrequests_per_minute = 1000000\nburst = 1000000\n"
        )
        config_path = write_config(
            work / "config",
            load_scenario(scenario_path),
            simulator_url=url,
            influx_url="http://127.0.0.1:9",
            database="bench",
            schedule=budgets,
        )
        config = load_config(config_path, source_registry(), redactor=Redactor())
        sink = MemorySink()
        collector = build_collector(
            config, source_registry(), sink, redactor=Redactor(), log=logging.getLogger("bench")
        )
        started = time.perf_counter()
        results = collect_once(collector)
        elapsed = time.perf_counter() - started
        durations = sorted(h.last_duration_s or 0.0 for _, h in collector.state.items())
        failed = sum(1 for r in results if not r.success)
        p99 = durations[int(len(durations) * 0.99) - 1]
        print(
            f"poll: {accounts} accounts ({4 * accounts} requests), {workers} threads: {elapsed:.1f} s, "
            f"{accounts / elapsed:,.0f} accounts/s, {len(sink.lines) / elapsed:,.0f} points/s, {failed} failed"
        )
        print(f"per-poll duration: p50 {statistics.median(durations) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    finally:
        simulator.terminate()
        simulator.wait(10)


if __name__ == "__main__":
    main()
