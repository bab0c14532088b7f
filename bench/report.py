"""Benchmark: the monthly report over N groups × one month at one-minute resolution (target: 1,000 groups in minutes).

Run by hand:
    .venv/bin/python bench/report.py [--groups 1000] [--month 2026-10] [--formats csv,json,pdf] [--keep]

Starts a throwaway influxd (simulator.local_servers.InfluxdServer, 127.0.0.1, temp dir), writes a config with N
groups (one site, one braiins account, one two-miner fleet each; zones alternate Europe/Moscow and Asia/Irkutsk
so two month windows are queried), seeds every measurement the report reads at one-minute resolution
(compliance, compliance_pool, pool_account, device ×2, source_health ×3 per minute; daily credits, payouts,
alert transitions) in 5,000-line batches on 4 writer threads, then times `generate_monthly` and prints seed
time, report time, rows, files and peak RSS of this process. No assertions.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.adapters.registry import source_registry
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.influx import V1Transport
from exporters.reports.generate import generate_monthly
from exporters.reports.period import parse_month
from exporters.reports.progress import progress_for
from simulator.local_servers import InfluxdServer

BATCH = 5000
ZONES = ("Europe/Moscow", "Asia/Irkutsk")
MAIN = """\
[influxdb]
url = "http://127.0.0.1:9"
[schedule]
interval_s = 60
timeout_s = 20
[registry]
groups_dir = "groups"
regions_file = "regions.toml"
"""


def group_toml(index: int) -> str:
    zone = ZONES[index % len(ZONES)]
    return f"""\
id = "g{index:05d}"
legal_name = "Bench Group {index}"
inn = "{7700000000 + index}"
register_record = "R{index}"
timezone = "{zone}"
[[sites]]
id = "s1"
region = "RU-IRK"
timezone = "{zone}"
capacity = "10 kW"
[[devices]]
id = "lot"
site = "s1"
model = "S19"
count = 2
[[pool_accounts]]
id = "acc"
kind = "braiins"
site = "s1"
token_file = "../secret"
base_url = "http://127.0.0.1:9"
[[miner_fleets]]
id = "f1"
kind = "cgminer"
site = "s1"
miners = [{{ address = "127.0.0.1:4029", name = "m1" }}, {{ address = "127.0.0.1:4030", name = "m2" }}]
[[permits]]
version = "v1"
valid_from = 2026-01-01
coins = ["BTC"]
pools = ["braiins"]
max_hashrate = "100 TH/s"
"""


def write_config(root: Path, groups: int) -> Path:
    (root / "groups").mkdir(parents=True)
    (root / "secret").write_text("token\n")
    (root / "minewatch.toml").write_text(MAIN)
    (root / "regions.toml").write_text(
        '[[bans]]\nid = "siberia"\nkind = "seasonal"\nregions = ["RU-IRK"]\nseason_start = "11-15"\n'
        'season_end = "03-15"\nvalid_from = 2025-01-01\n'
    )
    for index in range(groups):
        (root / "groups" / f"g{index:05d}.toml").write_text(group_toml(index))
    return root / "minewatch.toml"


def group_lines(index: int, start: datetime, end: datetime) -> Iterator[str]:
    gid = f"g{index:05d}"
    t = start
    minute = 0
    while t < end:
        ns = int(t.timestamp()) * 1_000_000_000
        hs = 9e13 + (minute % 97) * 1e11
        yield (
            f"compliance,group_id={gid} status_code=0i,pool_total_hs={hs},pool_permitted_hs={hs},quota_hs=1e14,"
            f"quota_utilisation={hs / 1e14},power_w=6500.0 {ns}"
        )
        yield f"compliance_pool,group_id={gid},permitted=yes,pool=braiins hashrate_hs={hs} {ns}"
        yield f"pool_account,account=acc,coin=BTC,group_id={gid},pool=braiins hashrate_hs={hs} {ns}"
        for miner, watts in (("m1", 3000.0), ("m2", 3500.0)):
            yield (
                f"device,device={miner},group_id={gid},model=S19,site=s1 "
                f"power_w={watts},hashrate_hs={hs / 2},online=1i {ns}"
            )
            yield f"source_health,group_id={gid},kind=cgminer,target={miner} success=1i,stale=0i {ns}"
        yield f"source_health,group_id={gid},kind=braiins,target=acc success={int(minute % 500 != 0)}i,stale=0i {ns}"
        if minute % 1440 == 0:
            yield f"pool_earning,account=acc,coin=BTC,group_id={gid},pool=braiins amount_sats={1_000_000 + index}i {ns}"
        if minute % 10080 == 0:
            yield (
                f"pool_payout,account=acc,coin=BTC,group_id={gid},pool=braiins amount_sats=5000000i,"
                f'address="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",txid="t{minute}",declared=1i {ns}'
            )
        if minute % 4321 == 0:
            state = "firing" if (minute // 4321) % 2 == 0 else "resolved"
            yield f'violation,group_id={gid},rule=hashrate_quota,severity=critical state="{state}",subject="" {ns}'
        t += timedelta(minutes=1)
        minute += 1


def seed(transport: V1Transport, groups: int, start: datetime, end: datetime) -> int:
    """Write group by group (Executor.map takes its whole input at once: per group keeps memory bounded)."""

    def batches(index: int) -> Iterator[list[str]]:
        batch: list[str] = []
        for line in group_lines(index, start, end):
            batch.append(line)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    written = 0
    with ThreadPoolExecutor(4) as pool:
        for index in range(groups):
            written += sum(pool.map(lambda b: (transport.write(b), len(b))[1], batches(index)))
    return written


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--formats", default="csv,json,pdf")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (config, data, reports)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    month = parse_month(args.month)
    workdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    (workdir / "influxd").mkdir()
    server = InfluxdServer(workdir / "influxd")
    server.start()
    try:
        transport = V1Transport(server.url, "bench", timeout_s=600.0)
        transport.ensure_database()
        config_path = write_config(workdir / "config", args.groups)
        config = load_config(config_path, source_registry(), redactor=Redactor())
        # Seed the union of both zones' months, so every row's window is full.
        start, end = month.window("Asia/Irkutsk").start, month.window("Europe/Moscow").end
        began = time.perf_counter()
        points = seed(transport, args.groups, start, end)
        seed_s = time.perf_counter() - began
        print(f"seeded {points:,} points for {args.groups} groups in {seed_s:.1f} s ({points / seed_s:,.0f} points/s)")
        began = time.perf_counter()
        result = generate_monthly(
            config,
            str(month),
            transport=transport,
            formats=tuple(args.formats.split(",")),  # type: ignore[arg-type]
            out_dir=workdir / "reports",
            now=datetime.now(UTC),
            progress=progress_for(sys.stderr),
        )
        report_s = time.perf_counter() - began
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"report {month}: {len(result.rows)} rows, {len(result.paths)} files in {report_s:.1f} s "
            f"({report_s / max(1, args.groups) * 1000:.1f} ms per group); peak RSS {peak_mb:.0f} MB"
        )
    finally:
        server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
