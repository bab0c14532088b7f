"""Benchmark: miner polls/s over N simulated cgminer-family miners (design target: 50,000 devices every 60 s).

Run by hand:
    .venv/bin/python bench/devices.py [--miners 2000] [--workers 64] [--timeout 2] [--rounds 3] [--hung 0]
                                      [--fleet-size 250] [--target 50000] [--profile]

A temp scenario gets N unlinked miners, an even mix of antminer, braiins_os, whatsminer and avalon, split into
fleets (sites) of --fleet-size miners; --hung P makes P % of them `fault = "hang"` (spread over every fleet and
dialect; they hold the connection for an hour). The fake miners (simulator.miners.fleet.MinerFleet, one
127.0.0.1 listener per miner) run in a separate process so they don't share the collector's GIL, but on a
2-core machine they still share its CPU: the polls/s printed are a floor, and the collector's CPU per poll is
the figure that scales. The collector config comes from simulator.configgen (dialect "auto"), points go to a
MemorySink, and each round polls every fleet once the way the daemon does: one job per fleet
(collector.app.poll_fleet) on `schedule.workers` threads, feeding one shared pool of `device_workers` threads.

Round 1 also identifies each miner's dialect (`version` + `devdetails`, 2 extra commands per miner) and is
reported apart from the steady-state rounds. Per round: wall time, polls/s, commands/s, successes/failures by
error kind, p50/p95/p99 of `duration_s` from the `source_health` lines, CPU time and peak RSS of both processes.
Then the verdict against `--target` devices every 60 s. --profile adds one cProfile'd round (each poll profiled
in its worker thread, not counted in the figures) and prints where the collector's time goes. No assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import logging
import math
import multiprocessing
import pstats
import re
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector, poll_fleet
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from simulator.configgen import write_config
from simulator.local_servers import free_port_block
from simulator.scenario import load_scenario

if TYPE_CHECKING:  # annotations only, so the bench does not pin where these classes live
    from collector.runner import PollResult
    from collector.targets import DeviceTarget

INTERVAL_S = 60.0
HANG_SECONDS = 3600  # a hung miner holds its connection this long (released at once when the fleet stops)
FD_MARGIN = 256  # descriptors besides the miners' listeners and connections: logs, pipes, the interpreter
READY_TIMEOUT_S = 300.0
# (dialect, short name for miner names, model, nominal TH/s): what the simulated miners report.
DIALECTS: tuple[tuple[str, str, str, float], ...] = (
    ("antminer", "ant", "Antminer S21", 200.0),
    ("braiins_os", "bos", "Antminer S19j Pro", 104.0),
    ("whatsminer", "wm", "M30S+_VE40", 100.0),
    ("avalon", "avl", "AvalonMiner 1246", 90.0),
)
_FIELD = {
    "success": re.compile(r"[ ,]success=(\d)i"),
    "duration": re.compile(r"[ ,]duration_s=([-+0-9.eE]+)"),
    "kind": re.compile(r'[ ,]error_kind="((?:[^"\\]|\\.)*)"'),
}


# --- scenario ------------------------------------------------------------------------------------------------


def spread(total: int, parts: int) -> list[int]:
    """`total` split into `parts` sizes that differ by at most one, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def scenario_text(miners: int, hung: int, fleet_size: int) -> str:
    """N unlinked miners in fleets of `fleet_size`, the four dialects evenly; `hung` of them `fault = "hang"`."""
    lines = [
        'name = "bench-devices"',
        "seed = 1",
        "history_start = 2026-11-01",
        "sats_per_phs_day = 45000",
        f"hang_seconds = {HANG_SECONDS}",
        "",
        # The scenario format requires an account; the bench never polls it.
        "[[accounts]]",
        'group_id = "bench"',
        'pool = "braiins"',
        'username = "bench"',
        'secret = "braiins-bench-secret-00001"',
        'payout_addresses = ["bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"]',
        "[[accounts.workers]]",
        'name = "w0"',
        "nominal_ths = 200.0",
        "",
    ]
    start = 0
    for fleet_index, size in enumerate(spread(miners, math.ceil(miners / fleet_size))):
        site = f"site-{fleet_index:03d}"
        for (dialect, short, model, nominal), cell in zip(DIALECTS, spread(size, len(DIALECTS)), strict=True):
            # Hung miners spread evenly over the index range (Bresenham), so every fleet and dialect gets its share.
            cell_hung = (start + cell) * hung // miners - start * hung // miners
            start += cell
            for count, fault in ((cell - cell_hung, None), (cell_hung, "hang")):
                if count == 0:
                    continue
                stem = f"{site}-{short}{'-hung' if fault else ''}"
                name, user = (f"{stem}-{{n:04}}", f"bench.{stem}-{{n:04}}") if count > 1 else (stem, f"bench.{stem}")
                lines += [
                    "[[miners]]",
                    'group_id = "bench"',
                    f'site = "{site}"',
                    f'name = "{name}"',
                    f"count = {count}",
                    f'dialect = "{dialect}"',
                    f'model = "{model}"',
                    f"nominal_ths = {nominal}",
                    f'pools = [{{url = "stratum+tcp://btc.f2pool.com:1314", user = "{user}"}}]',
                ]
                if fault:
                    lines.append(f'fault = "{fault}"')
                lines.append("")
    return "\n".join(lines)


# --- the fleet's process -------------------------------------------------------------------------------------


def raise_nofile() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard one; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def usage() -> tuple[float, int]:
    """(user + system CPU seconds, peak RSS in KiB) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def serve_fleet(scenario_path: str, base_port: int, conn: Connection) -> None:
    """Child process: serve the scenario's miners until told "stop"; answer "usage" with (CPU s, peak RSS KiB)."""
    from simulator.miners.fleet import MinerFleet

    logging.basicConfig(level=logging.ERROR)
    limits = raise_nofile()
    try:
        fleet = MinerFleet(load_scenario(Path(scenario_path)), base_port=base_port)
        fleet.start()
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}", limits))
        return
    conn.send(("ready", fleet.addresses(), limits))
    try:
        while True:
            message = conn.recv()
            if message == "usage":
                conn.send((*usage(), threading.active_count()))
            elif message == "stop":
                break
    except EOFError:
        pass  # the parent went away
    finally:
        fleet.stop()


class FleetProcess:
    """The MinerFleet child process and its control pipe."""

    def __init__(self, scenario_path: Path, base_port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=serve_fleet, args=(str(scenario_path), base_port, child_conn), name="miner-fleet", daemon=True
        )
        self._process.start()
        child_conn.close()
        if not self._conn.poll(READY_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"the miner fleet process did not start within {READY_TIMEOUT_S:g} s")
        status, payload, limits = self._conn.recv()
        self.nofile: tuple[int, int] = limits
        if status != "ready":
            self.stop()
            raise RuntimeError(f"the miner fleet process failed: {payload}")
        self.addresses: dict[str, tuple[str, int]] = payload

    def usage(self) -> tuple[float, int, int]:
        """(CPU seconds, peak RSS KiB, live threads) of the fleet process."""
        self._conn.send("usage")
        cpu, rss, threads = self._conn.recv()
        return float(cpu), int(rss), int(threads)

    def stop(self) -> None:
        """Ask the child to stop its fleet and exit; kill it if it does not within 10 s."""
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()


# --- rounds --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """What one round of polling every miner once measured."""

    label: str
    polls: int
    commands: int
    wall_s: float
    outcomes: Counter[str]
    durations: list[float]  # every poll's duration_s, sorted
    ok_durations: list[float]  # successful polls only, sorted
    cpu_s: float
    rss_kib: int
    fleet_cpu_s: float
    fleet_rss_kib: int
    fleet_threads: int

    @property
    def rate(self) -> float:
        return self.polls / self.wall_s


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (nan if empty)."""
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def health_figures(lines: Sequence[str]) -> tuple[Counter[str], list[float], list[float]]:
    """From `source_health` lines: outcome counts ("ok", "ok, partial: <kind>", "<kind>"), durations, ok ones."""
    outcomes: Counter[str] = Counter()
    durations: list[float] = []
    ok_durations: list[float] = []
    for line in lines:
        if not line.startswith("source_health,"):
            continue
        success_match = _FIELD["success"].search(line)
        duration_match = _FIELD["duration"].search(line)
        kind_match = _FIELD["kind"].search(line)
        success = success_match is not None and success_match.group(1) == "1"
        kind = kind_match.group(1) if kind_match else None
        duration = float(duration_match.group(1)) if duration_match else float("nan")
        durations.append(duration)
        if success:
            ok_durations.append(duration)
            outcomes["ok" if kind is None else f"ok, partial: {kind}"] += 1
        else:
            outcomes[kind or "failed"] += 1
    return outcomes, sorted(durations), sorted(ok_durations)


def run_round(
    label: str,
    collector: Collector,
    sink: MemorySink,
    fleet_jobs: ThreadPoolExecutor,
    device_pool: ThreadPoolExecutor,
    fleet: FleetProcess,
) -> Round:
    """Poll every fleet once, as the scheduler's fleet jobs do, and measure it."""
    targets = [t for f in collector.fleets for t in f.targets]
    mark = len(sink.lines)
    commands_before = sum(t.rpc.requests_made for t in targets)
    fleet_cpu_before, _, _ = fleet.usage()
    cpu_before, _ = usage()
    started = time.perf_counter()
    jobs = [fleet_jobs.submit(poll_fleet, (collector.runner, device_pool, f)) for f in collector.fleets]
    for job in jobs:
        job.result()
    wall = time.perf_counter() - started
    cpu_after, rss = usage()
    fleet_cpu_after, fleet_rss, fleet_threads = fleet.usage()
    outcomes, durations, ok_durations = health_figures(sink.lines[mark:])
    return Round(
        label=label,
        polls=len(durations),
        commands=sum(t.rpc.requests_made for t in targets) - commands_before,
        wall_s=wall,
        outcomes=outcomes,
        durations=durations,
        ok_durations=ok_durations,
        cpu_s=cpu_after - cpu_before,
        rss_kib=rss,
        fleet_cpu_s=fleet_cpu_after - fleet_cpu_before,
        fleet_rss_kib=fleet_rss,
        fleet_threads=fleet_threads,
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def report(r: Round) -> None:
    """Print one round's figures."""
    outcomes = ", ".join(f"{kind} {count}" for kind, count in sorted(r.outcomes.items(), key=lambda kv: -kv[1]))
    cpu_per_poll = r.cpu_s / r.polls if r.polls else float("nan")
    print(
        f"{r.label}: {r.polls} polls in {r.wall_s:.2f} s = {r.rate:,.0f} polls/s; "
        f"{r.commands:,} commands ({r.commands / max(r.polls, 1):.2f}/poll, {r.commands / r.wall_s:,.0f}/s)"
    )
    print(f"  outcomes: {outcomes}")
    print(
        f"  duration_s, all polls: p50 {ms(percentile(r.durations, 50))}, p95 {ms(percentile(r.durations, 95))}, "
        f"p99 {ms(percentile(r.durations, 99))}, max {ms(r.durations[-1] if r.durations else float('nan'))}"
    )
    if len(r.ok_durations) != len(r.durations):
        d = r.ok_durations
        print(
            f"  duration_s, ok polls:  p50 {ms(percentile(d, 50))}, p95 {ms(percentile(d, 95))}, "
            f"p99 {ms(percentile(d, 99))}, max {ms(d[-1] if d else float('nan'))}"
        )
    print(
        f"  collector CPU {r.cpu_s:.2f} s ({r.cpu_s / r.wall_s:.0%} of a core, {cpu_per_poll * 1000:.2f} ms/poll), "
        f"peak RSS {r.rss_kib / 1024:,.0f} MiB | fleet process CPU {r.fleet_cpu_s:.2f} s "
        f"({r.fleet_cpu_s / r.wall_s:.0%} of a core), peak RSS {r.fleet_rss_kib / 1024:,.0f} MiB, "
        f"{r.fleet_threads} threads alive"
    )


def profile_round(collector: Collector, device_pool: ThreadPoolExecutor, top: int = 25) -> None:
    """One more round with every poll under cProfile in its worker thread; print where the CPU goes.

    The timer is the thread's CPU time, so waiting on a miner (recv) counts only the CPU it costs.
    """
    profiles: dict[int, cProfile.Profile] = {}
    lock = threading.Lock()

    def profiled(target: DeviceTarget) -> PollResult:
        ident = threading.get_ident()
        with lock:
            profile = profiles.setdefault(ident, cProfile.Profile(time.thread_time))
        return profile.runcall(collector.runner.poll, target)

    targets = [t for f in collector.fleets for t in f.targets]
    started = time.perf_counter()
    for _ in device_pool.map(profiled, targets):
        pass
    wall = time.perf_counter() - started
    print(f"\nprofiled round (not counted; cProfile slows it; thread CPU s): {len(targets)} polls in {wall:.2f} s")
    stats = pstats.Stats(*profiles.values(), stream=(out := io.StringIO()))
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        stats.sort_stats(order).print_stats(top)
    # Drop pstats' header lines ("n function calls in s seconds", the 'Ordered by' legend) down to the tables.
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


# --- main ----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/devices.py",
        description=(
            "Poll N simulated cgminer-family miners (a separate MinerFleet process on 127.0.0.1) for R rounds "
            "and print miner polls/s, outcomes, per-poll duration percentiles, CPU and RSS, and a verdict "
            "against the design target. Round 1 includes dialect identification and is reported apart."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--miners", type=int, default=2000, metavar="N", help="simulated miners (4 dialects evenly)")
    parser.add_argument(
        "--workers", type=int, default=64, metavar="W", help="[schedule] device_workers: threads polling miners"
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="each fleet's timeout_s: deadline of one miner poll"
    )
    parser.add_argument("--rounds", type=int, default=3, metavar="R", help="rounds of polling every miner once")
    parser.add_argument(
        "--hung",
        type=float,
        default=0.0,
        metavar="P",
        help=f'percent of miners with fault = "hang" (accept, never answer for {HANG_SECONDS} s)',
    )
    parser.add_argument(
        "--fleet-size", type=int, default=250, metavar="M", help="miners per [[miner_fleets]] table (one per site)"
    )
    parser.add_argument(
        "--target", type=int, default=50_000, metavar="D", help=f"design target: devices per {INTERVAL_S:g} s"
    )
    parser.add_argument(
        "--profile", action="store_true", help="add one cProfile'd round (thread CPU time) and print the hot spots"
    )
    args = parser.parse_args(argv)
    if args.miners < 1 or args.workers < 1 or args.rounds < 1 or args.fleet_size < 1 or args.timeout <= 0:
        parser.error("--miners, --workers, --rounds, --fleet-size must be >= 1 and --timeout > 0")
    if not 0 <= args.hung <= 100:
        parser.error("--hung is a percentage from 0 to 100")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the runner logs every miner's first failure as a warning
    hung = round(args.miners * args.hung / 100)
    # The fleet process holds a listener per miner, plus a connection per running or hung request.
    fleet_fds = args.miners + 2 * args.workers + hung * (args.rounds + 1) + FD_MARGIN
    collector_fds = 2 * args.workers + FD_MARGIN
    soft, hard = raise_nofile()
    print(
        f"devices: {args.miners} miners ({hung} hung), {math.ceil(args.miners / args.fleet_size)} fleets, "
        f"device_workers {args.workers}, timeout_s {args.timeout:g}, {args.rounds} rounds; "
        f"RLIMIT_NOFILE {soft}/{hard} (fleet needs ~{fleet_fds}, collector ~{collector_fds})"
    )
    if hard < max(fleet_fds, collector_fds):
        print(
            f"RLIMIT_NOFILE hard limit {hard} is too low for {args.miners} miners: the fleet process needs about "
            f"{fleet_fds} descriptors. Raise it (ulimit -Hn, or LimitNOFILE=) or use fewer --miners.",
            file=sys.stderr,
        )
        return 2

    work = Path(tempfile.mkdtemp(prefix="minewatch-bench-devices-"))
    scenario_path = work / "devices.toml"
    scenario_path.write_text(scenario_text(args.miners, hung, args.fleet_size))
    scenario = load_scenario(scenario_path)
    started = time.perf_counter()
    fleet = FleetProcess(scenario_path, free_port_block(args.miners))
    try:
        print(
            f"fleet process up in {time.perf_counter() - started:.1f} s "
            f"(RLIMIT_NOFILE there {fleet.nofile[0]}/{fleet.nofile[1]}); scenario and config in {work}"
        )
        config_path = write_config(
            work / "config",
            scenario,
            simulator_url="http://127.0.0.1:9",  # the one pool account is never polled
            influx_url="http://127.0.0.1:9",
            database="bench",
            schedule=f"interval_s = {INTERVAL_S:g}\ndevice_workers = {args.workers}\n",
            miners=fleet.addresses,
            fleet_settings=f"timeout_s = {args.timeout:g}",
        )
        sources = source_registry()
        config = load_config(config_path, sources, redactor=Redactor())
        sink = MemorySink()
        collector = build_collector(config, sources, sink, redactor=Redactor(), log=logging.getLogger("bench"))
        schedule = config.main.schedule
        rounds: list[Round] = []
        # As run_scheduled: fleet jobs on the scheduler's `workers` threads, miners on one device pool.
        with (
            ThreadPoolExecutor(max_workers=schedule.workers, thread_name_prefix="fleet-job") as fleet_jobs,
            ThreadPoolExecutor(max_workers=schedule.device_workers, thread_name_prefix="device") as device_pool,
        ):
            for index in range(args.rounds):
                label = "round 1 (identifies dialects)" if index == 0 else f"round {index + 1} (steady state)"
                rounds.append(run_round(label, collector, sink, fleet_jobs, device_pool, fleet))
                report(rounds[-1])
            if args.profile:
                profile_round(collector, device_pool)
        verdict(args, rounds)
    finally:
        fleet.stop()
    return 0


def verdict(args: argparse.Namespace, rounds: Sequence[Round]) -> None:
    """First round vs steady state, and the polls/s the design target needs against the slowest steady round."""
    first, steady = rounds[0], list(rounds[1:]) or list(rounds[:1])
    slowest = min(steady, key=lambda r: r.rate)
    mean_rate = sum(r.polls for r in steady) / sum(r.wall_s for r in steady)
    cpu_per_poll = sum(r.cpu_s for r in steady) / sum(r.polls for r in steady)
    fleet_cpu_per_poll = sum(r.fleet_cpu_s for r in steady) / sum(r.polls for r in steady)
    print(
        f"\nfirst round {first.rate:,.0f} polls/s ({first.wall_s:.2f} s, identification included); "
        f"steady state {mean_rate:,.0f} polls/s over {len(steady)} round(s), slowest {slowest.rate:,.0f}; "
        f"collector CPU {cpu_per_poll * 1000:.2f} ms/poll, fleet process {fleet_cpu_per_poll * 1000:.2f} ms/poll"
    )
    for devices in dict.fromkeys((args.miners, args.target)):
        needed = devices / INTERVAL_S
        print(
            f"{devices:,} miners every {INTERVAL_S:g} s needs {needed:,.0f} polls/s; measured {slowest.rate:,.0f} "
            f"polls/s ({slowest.rate / needed:.1f}× headroom)"
        )
    target_rate = args.target / INTERVAL_S
    print(
        f"at {target_rate:,.0f} polls/s the collector's CPU alone would be {cpu_per_poll * target_rate:.2f} cores "
        f"(measured ms/poll × rate; this machine's 2 cores also ran the fleet process)"
    )


if __name__ == "__main__":
    sys.exit(main())
