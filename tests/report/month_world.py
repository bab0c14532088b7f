"""A simulated month with known ground truth, for the monthly report's end-to-end test (issue 6, item 5).

`build_month_world(influx_url, workdir)` runs March 2026 of `simulator/scenarios/month.toml` **time compressed**
through the simulator (pools and miners on one virtual clock) and the **real collector** (its config loader,
sources, Runner, group facts and compliance engine, each on the same virtual clock) into a **real InfluxDB**
(line protocol over the v1 `/write` API through the collector's own buffered sink, flushed as it goes). It returns
a `MonthWorld`: the loaded `AppConfig`, the database, the month, and the ground truth per group × site × coin,
computed from the scenario with `simulator/truth.py` and `simulator/miners/truth.py` (never from what was stored).
The month runs once per pytest session, however many modules ask for it (`shared_month_world` memoises it per
influxd; the `month_world` fixture wraps it, for a conftest.py or a test module to import)::

    from .month_world import MonthWorld, shared_month_world

    @pytest.fixture(scope="module")
    def world(influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory) -> MonthWorld:
        return shared_month_world(influxd, tmp_path_factory)

    def test_report(world: MonthWorld) -> None:
        row = world.row("redriver")                    # or world.rows[("redriver", "tx-1", "BTC")]
        # report world.month ("2026-03") from world.transport (database world.database) with world.config, then:
        assert report_sats == row.sats                                     # exact
        assert world.tolerances.energy_ok(report_kwh, row.energy_kwh)      # 0.2 %

Outside pytest: `build_month_world(influx_url, workdir)` with any InfluxDB 1.x URL (it creates its own database).

## The world (local times)
- **redriver**, site `tx-1` in America/Chicago: daylight-saving time starts on Sun 2026-03-08 02:00 CST, so the
  local month is 743 hours, [2026-03-01 06:00Z, 2026-04-01 05:00Z). A Braiins account (permitted) with three
  200 TH/s workers, a fourth (150 TH/s) from Mar 19 00:00 CDT, and `rr_02` out from Mar 12 09:00 to Mar 13 16:00 CDT
  (its miner idles meanwhile); an EMCD account with one 220 TH/s worker on a pool neither permit lists. Permit `2025-09`
  (to Mar 15, quota 1.0 PH/s) is replaced by `2026-03` (from Mar 16 local, quota 0.9 PH/s): the group runs
  ≈0.82 PH/s, ≈0.97 PH/s from Mar 19, so it is above the quota for part of the month. Braiins payouts alternate
  between the declared and an undeclared address; EMCD pays to another undeclared address (shown by the pool as
  its configured payout address: EMCD payout records carry no address). Five Whatsminers, each hashing one
  worker's curve.
- **tverhash**, site `tver-1` in Europe/Moscow (UTC+3, no DST; month [2026-02-28 21:00Z, 2026-03-31 21:00Z)):
  one Braiins account (two 300 TH/s workers), one declared address, quota 0.7 PH/s never reached; it mines
  through the blackout its permit declares (Mar 12 18:00-22:00 MSK); a third, spare miner is powered (idle power)
  but hashes nothing all month.
- **The missing week**: the collector is down from 2026-03-23 05:00Z to 2026-03-30 05:00Z (Mar 23 00:00 to
  Mar 30 00:00 CDT; 08:00 to 08:00 MSK): nothing is polled and nothing is written — no samples, no
  `source_health`, no `permit`/`site`/`compliance` points. It then restarts (new sources, new state, the alert
  book reloaded from its file), and the first poll of every pool reaches back through the pools' history (Braiins
  `history_days`, EMCD's whole list), so **the week's credits and payouts are recovered**: they are in the store,
  stamped inside the missing week, and belong in the report. Hashrate, energy and poll counts of the week are
  missing and must be shown as missing (lower completeness), never as zero and never interpolated.
- The virtual clock steps every `STEP_S` = 900 s (the config's `interval_s`, so 4 expected polls an hour), from
  2026-02-28 18:00Z to 2026-04-02 01:00Z (exclusive): 3 hours before the Moscow month, and long enough after the
  Chicago month for its last credits (UTC day Apr 1, credited Apr 2 00:00Z) to be fetched. Every step: each
  group's `permit`/`site` facts, one poll of every pool account and miner (in parallel, as `collect --once` does),
  then one compliance round per group (`engine.evaluate(group, t)`, grace 0). 2,428 steps; the whole run takes
  70-80 s on 2 cores (`MonthWorld.run_seconds`), the truth 2 s of it. The simulator (pools and miners) runs in a
  spawned child process reading the virtual clock from shared memory, so it has a core of its own; every step
  costs the collector itself about 22 ms of CPU (HTTP clients, parsing, line protocol, rules), which is why the
  step is 15 minutes and not 5 or 10 (10 minutes: ≈ 130 s).

## Ground truth (per group × site × coin: `MonthRow`)
Times are unix seconds; the month is [`month_start`, `month_end`) in the **site's** zone; "samples" are the
collector's poll instants inside the month (one every 900 s, except the missing week).
- **Credits** (`credits`, `sats`, `credit_count`, `first_credit_date`, `last_credit_date`, `daily_sats`,
  `sats_by_pool`): every `truth.daily_earning` of the site's accounts whose stored time falls in the month. Both
  pools' credits are stored at 00:00 UTC of the UTC day earned (`pool_earning`, plus a sub-second offset), so the
  month takes the UTC days whose 00:00Z lies in the local month: for Chicago (UTC−6/−5) that is UTC days Mar 2 ..
  Apr 1 (the Mar 1 credit is Feb 28 18:00 local), for Moscow Mar 1 .. Mar 31. A credit's date is the local date
  of that stored time. Zero-sats credits are counted (there are none in this world). **Exact.**
- **Payouts** (`payouts`): every payout of `truth.payout_schedule` the collector can have stored by the end of
  the run (Braiins stores only confirmed ones), at its stored time — Braiins: `requested_at`; EMCD: the send
  time — inside the month. `address`: the payout's destination (Braiins) or, for EMCD, whose records carry none,
  the account's configured payout address (`pool_settings.payout_address`), `address_source` says which.
  `declared`: the address (Bech32 case-insensitive) is in the `payout_addresses` of the permit in force at the
  payout's time. **Exact.**
- **Pools** (`pools`): each pool the site's accounts use, with whether each permit version in force in the month
  lists it (`permitted`) and `permitted_throughout`.
- **Permits** (`permits`): the versions in force during the month (by the calendar day in the group's zone, as
  `Group.permit_at` decides), each with its local first/last day and UTC span clipped to the month, its quota,
  the samples under it and how many were above its quota.
- **Hashrate** — the site's pool-reported hashrate = the sum over its accounts (permitted pools or not) of the
  pools' 5-minute figure (`pool_account.hashrate_hs`, = `truth.account_hashrate(t, 300)`).
  `mean_hashrate_hs`: the exact mean over the covered time (hashes the accounts' workers computed in the covered
  intervals / covered seconds, from the closed-form integral). `sampled_mean_hashrate_hs`: the mean of the
  per-sample sums (what a report averaging the stored samples gets, up to the pools' rounding).
  `peak_hashrate_hs` (at `peak_hashrate_at`): the largest per-sample sum. `samples_above_quota` /
  `share_above_quota`: samples whose sum exceeds the quota in force at that instant (the quota itself, not the
  rule's tolerance), over all samples of the month (the missing week is not counted either way).
- **Energy** — `energy_kwh`: the exact integral over the covered time of every site miner's power model
  (`simulator/miners/truth.py`: nominal × (0.1 + 0.9 × load), load = hashrate / nominal; the spare idles at 10 %).
  `sampled_energy_kwh`: Σ over samples of the site's reported `power_w` × 900 s (exactly what the stored `device`
  points give). `blackout_energy_kwh` / `sampled_blackout_energy_kwh`: the same inside the permit's blackout
  windows (local times of the site). `peak_power_w` (at `peak_power_at`): the largest per-sample sum of reported
  power; `capacity_w`: the site's connected capacity. Only time the collector saw counts: the missing week's
  energy is unknown, not zero.
- **Devices**: `devices_active` = miners of the site that reported a non-zero hashrate in at least one sample of
  the month; `devices_polled` = miners polled; `devices_registered` = the permit's `registered_devices` (the last
  version in force in the month); `devices_declared` = the group file's declared device count at the site.
- **Completeness**: `expected_polls` = month seconds / `interval_s` per target (743 h × 4 = 2,972 for Chicago,
  744 h × 4 = 2,976 for Moscow: exact integers, so a month that ignores daylight-saving time is off),
  `successful_polls` = samples of the month (the same for every target: every poll succeeds, which the harness
  checks; 2,300 and 2,304 here), `completeness` = their ratio; `targets` lists the row's pool accounts and miners
  as `source_health` tags them (`<kind>/<target>`).
- `missing`: the missing window, in UTC and in the site's zone; `filing_due`: the 20th of the next month.

## Tolerances (`MonthWorld.tolerances`)
Satoshi totals, credit counts and dates, payouts, poll counts and device counts are exact. Hashrate and energy are
sampled every 900 s, so a report can only approximate the continuous truth; the tolerance is **0.2 % relative**
(`Tolerances.hashrate_rel`, `energy_rel`) against `mean_hashrate_hs` / `energy_kwh` (exact). Why that is sound:
the worker curves are sums of sinusoids with periods 45 min, 1 day, ≈5.3 d and ≈17.9 d plus steps (joins,
outages). Samples every 900 s hit the 45-minute term at 3 equally spaced phases every 45 minutes and the daily
term at 96 every day, so both average out exactly over whole 45-minute blocks; the slow terms change by < 0.1 %
within a step; what is left are the ends of the two covered stretches and the steps of the scripted events, each
worth at most one sample (≈ 900 s out of ≈ 2.07 million covered seconds, ≈ 0.04 %), plus the pools' and miners'
short averaging windows (a 5-minute or 1-minute trailing mean lags the curve by ≤ 150 s). Measured: the sampled
figures are within 0.01 % of the exact ones; the harness's own test requires 0.05 %, leaving a 4× margin for a
report's own way of summing (left or right Riemann sums, per-sample or per-interval means). Mistakes the tolerance
must not hide are far larger: one missed day ≈ 4 %, interpolating across the missing week ≈ 30 %. A month cut at
UTC instead of local midnight moves the Chicago energy by only ≈ 0.2 % (its two ends nearly cancel): the exact
credit totals (UTC days Mar 2 .. Apr 1, not Mar 1 .. 31) and poll counts (2,972, not 2,976) are what catch that,
and the DST hour. Blackout energy covers 4 hours (16 samples), where the ends weigh more: `blackout_energy_rel` =
1 %. Peaks are per-sample maxima of stored values: `peak_rel` = 1e-5 (Braiins rounds to 0.001 of its unit, 1 GH/s
for the Th/s account; miners report whole watts). The share above the quota is exact in samples (`share_abs` =
half a sample).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import re
import shutil
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Literal, cast
from zoneinfo import ZoneInfo

import pytest
from servers import InfluxdServer

from collector.adapters.registry import source_registry
from collector.addresses import normalize_address
from collector.app import DatabaseSetup, build_collector, build_compliance, build_influx_sink
from collector.compliance.engine import ComplianceEngine
from collector.config import AppConfig, Group, PermitVersion, declared_addresses, load_config
from collector.redact import Redactor
from collector.runner import PollResult
from collector.sinks.buffered import InfluxSink
from collector.sinks.influx import V1Transport
from collector.targets import Target
from simulator import truth
from simulator.miners import truth as miner_truth
from simulator.miners.fleet import MinerFleet
from simulator.scenario import Account, Miner, Pool, Scenario, day_start_ts, load_scenario
from simulator.server import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_FILE = ROOT / "simulator" / "scenarios" / "month.toml"
CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "month"
REGIONS_FILE = ROOT / "config" / "regions.toml"
# What the checked-in config points at (`minewatch simulate --listen 127.0.0.1:18500` serves the miners above it).
CONFIG_SIMULATOR_URL = "http://127.0.0.1:18500"

MONTH = "2026-03"
STEP_S = 900


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


RUN_FROM = _utc("2026-02-28T18:00:00")  # 3 h before the Moscow month, 12 h before the Chicago month
RUN_UNTIL = _utc("2026-04-02T01:00:00")  # exclusive; the last credits (UTC day Apr 1) arrive at Apr 2 00:00Z
DOWN_FROM = _utc("2026-03-23T05:00:00")  # the collector is down (Mar 23 00:00 CDT) ...
DOWN_UNTIL = _utc("2026-03-30T05:00:00")  # ... until it restarts (Mar 30 00:00 CDT)
WH_PER_KWH = 1000.0
SPOT_CHECK_EVERY = 97  # samples between checks of the truth's power shortcut against the full miner truth
S_PER_H = 3600.0

LOG = logging.getLogger("month_world")
PayoutAddressSource = Literal["payout", "pool_settings"]


# --- the truth's shape -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerances:
    """How closely a report must match the truth (module docstring: why these values)."""

    hashrate_rel: float = 0.002
    energy_rel: float = 0.002
    # Four hours of 15-minute samples: the ends of the window weigh far more than in a month.
    blackout_energy_rel: float = 0.01
    # The pools round what they send (Braiins to 0.001 of its unit: 1e9 H/s for a Th/s account).
    peak_rel: float = 1e-5
    share_abs: float = 0.5  # in samples: a report's share × samples must be within half a sample

    def hashrate_ok(self, reported: float, exact: float) -> bool:
        return math.isclose(reported, exact, rel_tol=self.hashrate_rel)

    def energy_ok(self, reported: float, exact: float) -> bool:
        return math.isclose(reported, exact, rel_tol=self.energy_rel)

    def blackout_energy_ok(self, reported: float, exact: float) -> bool:
        return math.isclose(reported, exact, rel_tol=self.blackout_energy_rel)

    def peak_ok(self, reported: float, exact: float) -> bool:
        return math.isclose(reported, exact, rel_tol=self.peak_rel)

    def share_ok(self, reported: float, exact: float, samples: int) -> bool:
        return abs(reported - exact) * samples <= self.share_abs


@dataclass(frozen=True)
class MissingWindow:
    """The week the collector was down: [start, end) in unix seconds, and the same moments in a site's zone."""

    start: int
    end: int

    def local(self, zone: str) -> tuple[datetime, datetime]:
        tz = ZoneInfo(zone)
        return datetime.fromtimestamp(self.start, tz), datetime.fromtimestamp(self.end, tz)

    @property
    def polls_missed(self) -> int:
        return (self.end - self.start) // STEP_S


@dataclass(frozen=True)
class Credit:
    """One credit as stored: `at` = 00:00 UTC of the UTC day earned (`day`); `local_date` = its date in the site."""

    pool: str
    account: str
    day: date
    at: int
    local_date: date
    amount_sats: int


@dataclass(frozen=True)
class Payout:
    """One payout as stored (`at`: Braiins request time, EMCD send time), with where it went."""

    pool: str
    account: str
    at: int
    local_date: date
    amount_sats: int
    address: str
    address_source: PayoutAddressSource
    declared: bool
    txid: str


@dataclass(frozen=True)
class PoolUse:
    """A pool the site's accounts use, and whether each permit version in force in the month lists it."""

    pool: str
    accounts: tuple[str, ...]
    permitted: dict[str, bool]

    @property
    def permitted_throughout(self) -> bool:
        return all(self.permitted.values())


@dataclass(frozen=True)
class PermitSpan:
    """A permit version's part of the month: local days, UTC span [start, end), quota and quota use."""

    version: str
    first_day: date
    last_day: date
    start: int
    end: int
    quota_hs: float | None
    registered_devices: int | None
    pools: tuple[str, ...]
    samples: int
    samples_above_quota: int

    @property
    def share_above_quota(self) -> float | None:
        return self.samples_above_quota / self.samples if self.samples else None


@dataclass(frozen=True)
class MonthRow:
    """The ground truth of one report row (group × site × coin × month); module docstring: definitions."""

    group_id: str
    site: str
    coin: str
    zone: str
    region: str
    legal_name: str
    inn: str
    register_record: str
    month: str
    month_start: int
    month_end: int
    filing_due: date
    permits: tuple[PermitSpan, ...]
    credits: tuple[Credit, ...]
    payouts: tuple[Payout, ...]
    pools: tuple[PoolUse, ...]
    covered: tuple[tuple[int, int], ...]
    samples: int
    targets: tuple[str, ...]
    expected_polls: int
    successful_polls: int
    mean_hashrate_hs: float
    sampled_mean_hashrate_hs: float
    peak_hashrate_hs: float
    peak_hashrate_at: int
    samples_above_quota: int
    energy_kwh: float
    sampled_energy_kwh: float
    blackouts: tuple[tuple[int, int], ...]
    blackout_energy_kwh: float
    sampled_blackout_energy_kwh: float
    peak_power_w: float
    peak_power_at: int
    capacity_w: float | None
    devices_active: int
    devices_polled: int
    devices_registered: int | None
    devices_declared: int

    @property
    def hours(self) -> float:
        return (self.month_end - self.month_start) / S_PER_H

    @property
    def covered_s(self) -> int:
        return sum(end - start for start, end in self.covered)

    @property
    def sats(self) -> int:
        return sum(c.amount_sats for c in self.credits)

    @property
    def credit_count(self) -> int:
        return len(self.credits)

    @property
    def first_credit_date(self) -> date | None:
        return min((c.local_date for c in self.credits), default=None)

    @property
    def last_credit_date(self) -> date | None:
        return max((c.local_date for c in self.credits), default=None)

    @property
    def daily_sats(self) -> dict[date, int]:
        days: dict[date, int] = {}
        for c in self.credits:
            days[c.local_date] = days.get(c.local_date, 0) + c.amount_sats
        return dict(sorted(days.items()))

    @property
    def sats_by_pool(self) -> dict[str, int]:
        pools: dict[str, int] = {}
        for c in self.credits:
            pools[c.pool] = pools.get(c.pool, 0) + c.amount_sats
        return pools

    @property
    def share_above_quota(self) -> float:
        return self.samples_above_quota / self.samples if self.samples else 0.0

    @property
    def completeness(self) -> float:
        return self.successful_polls / self.expected_polls

    @property
    def permit_versions(self) -> tuple[str, ...]:
        return tuple(p.version for p in self.permits)


@dataclass
class MonthWorld:
    """The stored month and its truth. `transport` queries the database the collector wrote."""

    config: AppConfig
    config_path: Path
    scenario: Scenario
    transport: V1Transport
    month: str
    step_s: int
    run_from: int
    run_until: int
    missing: MissingWindow
    sample_times: tuple[int, ...]
    rows: dict[tuple[str, str, str], MonthRow]
    tolerances: Tolerances = field(default_factory=Tolerances)
    poll_failures: tuple[str, ...] = ()
    sink_losses: dict[str, int] = field(default_factory=dict)
    run_seconds: float = 0.0

    @property
    def database(self) -> str:
        return self.transport.database

    @property
    def influx_url(self) -> str:
        return self.transport.url

    def row(self, group_id: str, site: str | None = None, coin: str = "BTC") -> MonthRow:
        """The row of `group_id` (and `site`, needed only when the group has several)."""
        matches = [
            r for key, r in self.rows.items() if key[0] == group_id and key[2] == coin and site in (None, key[1])
        ]
        if len(matches) != 1:
            raise KeyError(f"{group_id}/{site}/{coin}: {len(matches)} rows")
        return matches[0]


# --- running the month ----------------------------------------------------------------------------------------


class VirtualClock:
    """The one clock the simulator, the miners and the collector read: set by the harness, step by step.

    The simulator runs in a child process (so it has a core of its own); it reads the same instant from shared
    memory (`shared`), which `set` writes before the collector's clock moves.
    """

    def __init__(self, start: int, shared: Synchronized[int] | None = None) -> None:
        self._now = float(start)
        self._shared = shared
        if shared is not None:
            shared.value = start

    def __call__(self) -> float:
        return self._now

    def set(self, now: int) -> None:
        if self._shared is not None:
            self._shared.value = now
        self._now = float(now)


def _serve_simulator(scenario_file: str, clock: Synchronized[int], ready: Connection, stop: EventType) -> None:
    """The child process: the scenario's pools and miners on free loopback ports, on the shared virtual clock."""
    scenario = load_scenario(Path(scenario_file))

    def now() -> float:
        return float(clock.value)

    with SimulatorServer(scenario, port=0, clock=now) as pools, MinerFleet(scenario, clock=now) as fleet:
        ready.send((pools.url, fleet.addresses()))
        stop.wait()


class SimulatorProcess:
    """`SimulatorServer` + `MinerFleet` in a spawned child process, stepped by `clock` (a context manager)."""

    def __init__(self, scenario_file: Path, start: int) -> None:
        context = multiprocessing.get_context("spawn")
        shared = context.Value("q", start, lock=False)
        self.clock = VirtualClock(start, shared)
        self._stop = context.Event()
        receiver, sender = context.Pipe(duplex=False)
        self._receiver = receiver
        self._process = context.Process(
            target=_serve_simulator,
            args=(str(scenario_file), shared, sender, self._stop),
            name="month-simulator",
            daemon=True,
        )
        self.url = ""
        self.miners: dict[str, tuple[str, int]] = {}

    def __enter__(self) -> SimulatorProcess:
        self._process.start()
        try:
            if not self._receiver.poll(60):
                raise RuntimeError("the month simulator did not start within 60 s")
            self.url, self.miners = self._receiver.recv()
        except (EOFError, RuntimeError) as exc:
            self._process.kill()
            self._process.join(timeout=5)
            raise RuntimeError(f"the month simulator failed to start (exit code {self._process.exitcode})") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=15)
        if self._process.is_alive():  # pragma: no cover - only if stopping hangs
            self._process.kill()
            self._process.join(timeout=5)


def write_config(
    dest: Path, *, simulator_url: str, miners: dict[str, tuple[str, int]], influx_url: str, database: str
) -> Path:
    """Copy tests/report/configs/month under `dest` and point it at the running simulator, miners and InfluxDB."""
    target = dest / "month"
    shutil.copytree(CONFIG_DIR, target)
    main = target / "minewatch.toml"
    text = main.read_text(encoding="utf-8")
    text = _sub_once(text, r'^url = ".*"$', f'url = "{influx_url}"')
    text = _sub_once(text, r'^database = ".*"$', f'database = "{database}"')
    text = _sub_once(text, r'^regions_file = ".*"$', f'regions_file = "{REGIONS_FILE.as_posix()}"')
    main.write_text(text, encoding="utf-8")
    for group_file in (target / "groups").glob("*.toml"):
        text = group_file.read_text(encoding="utf-8").replace(CONFIG_SIMULATOR_URL, simulator_url)

        def repoint(match: re.Match[str]) -> str:
            host, port = miners[match.group(1)]
            return f'{{ address = "{host}:{port}", name = "{match.group(1)}" }}'

        group_file.write_text(re.sub(r'\{ address = "[^"]+", name = "([^"]+)" \}', repoint, text), encoding="utf-8")
    return main


def _sub_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times in the month config"
    return new


class _CollectorRun:
    """One collector process's life: sink, sources, runner, compliance engine. A restart is a new instance."""

    def __init__(self, config_path: Path, clock: VirtualClock, workers: int) -> None:
        self.redactor = Redactor()
        self.config = load_config(config_path, source_registry(), redactor=self.redactor)
        self.sink: InfluxSink = build_influx_sink(self.config.main.influxdb, self.redactor, LOG)
        assert DatabaseSetup(self.sink, LOG)(), "InfluxDB database could not be created"
        self.sink.start()
        self.collector = build_collector(
            self.config, source_registry(), self.sink, redactor=self.redactor, log=LOG, clock=clock
        )
        self.engine: ComplianceEngine = build_compliance(self.collector, redactor=self.redactor, log=LOG, grace_s=0.0)
        self.targets: list[Target] = [
            *self.collector.targets,
            *(target for fleet in self.collector.fleets for target in fleet.targets),
        ]
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="month-poll")

    def step(self, now: int) -> list[PollResult]:
        for group in self.collector.groups:
            self.collector.write_group_facts(group)
        results = list(self.executor.map(self.collector.runner.poll, self.targets))
        for group in self.collector.groups:
            self.engine.evaluate(group, now)
        self.engine.delivery.flush()
        return results

    def close(self) -> dict[str, int]:
        self.executor.shutdown(wait=True)
        self.engine.delivery.flush()
        assert self.sink.flush(timeout_s=60), f"InfluxDB did not take every point: {self.sink.last_error}"
        self.sink.close()
        return {"dropped": self.sink.dropped_lines, "rejected": self.sink.rejected_lines}


def step_times(step_s: int = STEP_S) -> list[int]:
    """The instants the collector polls: every step of the run except the missing week."""
    return [t for t in range(RUN_FROM, RUN_UNTIL, step_s) if not DOWN_FROM <= t < DOWN_UNTIL]


def build_month_world(influx_url: str, workdir: Path, *, database: str | None = None) -> MonthWorld:
    """Run the month through simulator, collector and InfluxDB at `influx_url`; return the world and its truth."""
    started = time.monotonic()
    scenario = load_scenario(SCENARIO_FILE)
    database = database or f"month_world_{uuid.uuid4().hex[:8]}"
    failures: list[str] = []
    losses = {"dropped": 0, "rejected": 0}
    times = step_times()
    with SimulatorProcess(SCENARIO_FILE, RUN_FROM) as simulator:
        clock = simulator.clock
        config_path = write_config(
            workdir, simulator_url=simulator.url, miners=simulator.miners, influx_url=influx_url, database=database
        )
        run: _CollectorRun | None = None
        previous: int | None = None
        for t in times:
            if run is not None and previous is not None and t - previous > STEP_S:
                # The collector goes down: what it had buffered is written before it stops.
                for kind, count in run.close().items():
                    losses[kind] += count
                run = None
            clock.set(t)
            if run is None:
                run = _CollectorRun(config_path, clock, workers=16)
            failures += [
                f"{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%MZ} {r.key}: {r.error_kind}: {r.message}"
                for r in run.step(t)
                if not r.success or r.error_kind
            ]
            previous = t
        assert run is not None
        for kind, count in run.close().items():
            losses[kind] += count
        config = run.config
    transport = V1Transport(influx_url, database, timeout_s=30.0)
    rows = month_truth(scenario, config, tuple(times))
    return MonthWorld(
        config=config,
        config_path=config_path,
        scenario=scenario,
        transport=transport,
        month=MONTH,
        step_s=STEP_S,
        run_from=RUN_FROM,
        run_until=RUN_UNTIL,
        missing=MissingWindow(DOWN_FROM, DOWN_UNTIL),
        sample_times=tuple(times),
        rows=rows,
        poll_failures=tuple(failures),
        sink_losses=losses,
        run_seconds=time.monotonic() - started,
    )


_WORLDS: dict[str, MonthWorld] = {}


def shared_month_world(influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory) -> MonthWorld:
    """The month on the session's influxd, run on first use and shared by every test of the session."""
    if not influxd.is_running:  # a test that killed it failed before restarting it
        influxd.start()
    if influxd.url not in _WORLDS:
        _WORLDS[influxd.url] = build_month_world(influxd.url, tmp_path_factory.mktemp("month-world"))
    return _WORLDS[influxd.url]


@pytest.fixture(scope="session")
def month_world(influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory) -> MonthWorld:
    """`shared_month_world` as a fixture (import it into a test module or a conftest.py)."""
    return shared_month_world(influxd, tmp_path_factory)


# --- the truth -----------------------------------------------------------------------------------------------


def month_bounds(month: str, zone: str) -> tuple[int, int]:
    """[start, end) of `month` (YYYY-MM) in `zone`, as unix seconds."""
    year, number = (int(part) for part in month.split("-"))
    tz = ZoneInfo(zone)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def filing_due(month: str) -> date:
    """The 20th of the month after `month`."""
    year, number = (int(part) for part in month.split("-"))
    return date(year + number // 12, number % 12 + 1, 20)


def _local_date(ts: int, zone: str) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).date()


def _intervals(times: list[int], step_s: int) -> tuple[tuple[int, int], ...]:
    """The union of [t, t + step) over `times` (sorted), merged."""
    merged: list[tuple[int, int]] = []
    for t in times:
        if merged and merged[-1][1] == t:
            merged[-1] = (merged[-1][0], t + step_s)
        else:
            merged.append((t, t + step_s))
    return tuple(merged)


def _local_window(moment: datetime, zone: str) -> int:
    return int(moment.replace(tzinfo=ZoneInfo(zone)).timestamp())


def _permit_at(group: Group, t: int) -> PermitVersion | None:
    return group.permit_at(datetime.fromtimestamp(t, UTC))


def _miner_reading(scenario: Scenario, miner: Miner, t: int) -> tuple[float, float]:
    """(1-minute hashrate, power) the miner reports at `t`: `miner_truth`'s two figures without the rest of it
    (temperatures, fans, share counters), which would make the truth cost more than the run."""
    if not miner_truth.is_online(scenario, miner, t):
        raise NotImplementedError(f"{miner.name}: the truth assumes miners powered all month")
    account, worker = miner_truth.curve(scenario, miner)
    rate_1m = truth.worker_hashrate(scenario, account, worker, t, 60)
    load = rate_1m / (miner.nominal_ths * 1e12)
    return rate_1m, float(round(miner_truth.nominal_power_w(miner) * (0.1 + 0.9 * load)))


def _miner_power_integral(scenario: Scenario, miner: Miner, start: int, end: int) -> float:
    """Watt-seconds the miner's power model draws over [start, end] (it must be powered all that time)."""
    if not (miner_truth.is_online(scenario, miner, start) and miner.online_at(end)):
        raise NotImplementedError(f"{miner.name}: energy truth assumes a miner powered all month")
    account, worker = miner_truth.curve(scenario, miner)
    nominal_hs = miner.nominal_ths * 1e12
    hashes = truth.worker_hashrate(scenario, account, worker, end, end - start) * (end - start)
    watts = miner_truth.nominal_power_w(miner)
    return watts * (0.1 * (end - start) + 0.9 * hashes / nominal_hs)


def _payouts(scenario: Scenario, account: Account, group: Group, zone: str, until: int) -> list[Payout]:
    """Every payout the collector can have stored by `until` (Braiins: confirmed only), as stored."""
    out = []
    for p in truth.payout_schedule(scenario, account, until):
        if p.sent_at is None:
            continue  # queued: neither pool's adapter writes it yet
        at = p.requested_at if account.pool == "braiins" else p.sent_at
        source: PayoutAddressSource
        if account.pool == "braiins":
            address, source = p.address, "payout"
        else:
            assert account.payout_address is not None, f"{account.username}: EMCD payouts need a configured address"
            address, source = account.payout_address, "pool_settings"
        permit = _permit_at(group, at)
        out.append(
            Payout(
                pool=account.pool,
                account=account.username,
                at=at,
                local_date=_local_date(at, zone),
                amount_sats=p.amount_sats,
                address=address,
                address_source=source,
                declared=normalize_address(address) in declared_addresses(permit),
                txid=p.txid,
            )
        )
    return out


def month_truth(
    scenario: Scenario, config: AppConfig, times: tuple[int, ...], month: str = MONTH
) -> dict[tuple[str, str, str], MonthRow]:
    """The truth of every group × site × coin row of `month`, from the scenario, the config and the poll times."""
    rows: dict[tuple[str, str, str], MonthRow] = {}
    last_poll = max(times)
    for group in config.groups:
        for site in group.spec.sites:
            accounts_cfg = [
                a for a in group.accounts if a.site == site.id or (a.site is None and len(group.spec.sites) == 1)
            ]
            coins = sorted({a.coin for a in accounts_cfg})
            for coin in coins:
                accounts = [scenario.account(cast(Pool, a.kind), a.id) for a in accounts_cfg if a.coin == coin]
                rows[(group.id, site.id, coin)] = _row(
                    scenario, config, group, site.id, coin, accounts, times, last_poll, month
                )
    return rows


def _row(
    scenario: Scenario,
    config: AppConfig,
    group: Group,
    site_id: str,
    coin: str,
    accounts: list[Account],
    times: tuple[int, ...],
    last_poll: int,
    month: str,
) -> MonthRow:
    site = next(s for s in group.spec.sites if s.id == site_id)
    zone = site.timezone
    start, end = month_bounds(month, zone)
    step = int(config.main.schedule.interval_s)
    assert (end - start) % step == 0, "the month is not a whole number of poll intervals"
    samples = [t for t in times if start <= t < end]
    covered = _intervals(samples, step)
    miners = [m for m in scenario.miners if m.group_id == group.id and m.site == site_id]

    credits = _credits(scenario, accounts, zone, start, end, last_poll)
    payouts = [p for a in accounts for p in _payouts(scenario, a, group, zone, last_poll) if start <= p.at < end]
    seen = _SampledSite.of(scenario, group, accounts, miners, samples)
    spans = [
        replace(span, samples=seen.by_version[span.version], samples_above_quota=seen.above_by_version[span.version])
        for span in _permit_spans(group, start, end)
    ]
    pool_hs, power_w = seen.pool_hs, seen.power_w

    # exact integrals over the covered time
    hashes = sum(truth.account_hashes(scenario, account, lo, hi) for account in accounts for lo, hi in covered)
    covered_s = sum(hi - lo for lo, hi in covered)
    energy_ws = sum(_miner_power_integral(scenario, m, lo, hi) for m in miners for lo, hi in covered)

    blackouts = tuple(
        (_local_window(window.start, zone), _local_window(window.end, zone))
        for span in spans
        for permit in group.spec.permits
        if permit.version == span.version
        for window in permit.blackouts
        if not window.sites or site_id in window.sites
    )
    blackout_covered = [
        (max(lo, b_lo), min(hi, b_hi))
        for b_lo, b_hi in blackouts
        for lo, hi in covered
        if min(hi, b_hi) > max(lo, b_lo)
    ]
    blackout_ws = sum(_miner_power_integral(scenario, m, lo, hi) for m in miners for lo, hi in blackout_covered)
    blackout_samples = [t for t in samples if any(b_lo <= t < b_hi for b_lo, b_hi in blackouts)]

    peak_at = max(samples, key=lambda t: (pool_hs[t], -t))
    peak_power_at = max(samples, key=lambda t: (power_w[t], -t))
    last_span = spans[-1] if spans else None
    # As `source_health` tags them: "<kind>/<target>" (the config's account ids are the pools' usernames here).
    targets = tuple([f"{a.pool}/{a.username}" for a in accounts] + [f"cgminer/{m.name}" for m in miners])
    return MonthRow(
        group_id=group.id,
        site=site_id,
        coin=coin,
        zone=zone,
        region=site.region,
        legal_name=group.spec.legal_name,
        inn=group.spec.inn,
        register_record=group.spec.register_record,
        month=month,
        month_start=start,
        month_end=end,
        filing_due=filing_due(month),
        permits=tuple(spans),
        credits=tuple(credits),
        payouts=tuple(sorted(payouts, key=lambda p: (p.at, p.pool, p.account))),
        pools=_pool_uses(accounts, spans),
        covered=covered,
        samples=len(samples),
        targets=targets,
        expected_polls=(end - start) // step,
        successful_polls=len(samples),
        mean_hashrate_hs=hashes / covered_s,
        sampled_mean_hashrate_hs=sum(pool_hs.values()) / len(samples),
        peak_hashrate_hs=pool_hs[peak_at],
        peak_hashrate_at=peak_at,
        samples_above_quota=sum(seen.above_by_version.values()),
        energy_kwh=energy_ws / S_PER_H / WH_PER_KWH,
        sampled_energy_kwh=sum(power_w.values()) * step / S_PER_H / WH_PER_KWH,
        blackouts=blackouts,
        blackout_energy_kwh=blackout_ws / S_PER_H / WH_PER_KWH,
        sampled_blackout_energy_kwh=sum(power_w[t] for t in blackout_samples) * step / S_PER_H / WH_PER_KWH,
        peak_power_w=power_w[peak_power_at],
        peak_power_at=peak_power_at,
        capacity_w=site.capacity,
        devices_active=len(seen.active),
        devices_polled=len(miners),
        devices_registered=last_span.registered_devices if last_span else None,
        devices_declared=sum(d.count for d in group.spec.devices if d.site == site_id),
    )


def _credits(
    scenario: Scenario, accounts: list[Account], zone: str, start: int, end: int, last_poll: int
) -> list[Credit]:
    """The accounts' credits stored in [start, end): every UTC day whose 00:00Z is in it, paid by `last_poll`."""
    credits = []
    for account in accounts:
        for day in _days_in(scenario, account, start, end):
            assert day.credited_at <= last_poll, f"the run ends before the credit of {day.day} is paid"
            credits.append(
                Credit(
                    pool=account.pool,
                    account=account.username,
                    day=day.day,
                    at=day.day_start_ts,
                    local_date=_local_date(day.day_start_ts, zone),
                    amount_sats=day.amount_sats,
                )
            )
    return sorted(credits, key=lambda c: (c.at, c.pool, c.account))


def _permit_spans(group: Group, start: int, end: int) -> list[PermitSpan]:
    """The permit versions in force in [start, end), judged by the calendar day in the group's zone."""
    zone = group.spec.timezone
    spans = []
    for permit in group.spec.permits:
        first = max(permit.valid_from, _local_date(start, zone))
        last = min(permit.valid_to or date.max, _local_date(end - 1, zone))
        if first > last:
            continue
        midnight = datetime.min.time()
        spans.append(
            PermitSpan(
                version=permit.version,
                first_day=first,
                last_day=last,
                start=max(start, _local_window(datetime.combine(first, midnight), zone)),
                end=min(end, _local_window(datetime.combine(last + timedelta(days=1), midnight), zone)),
                quota_hs=permit.max_hashrate,
                registered_devices=permit.registered_devices,
                pools=tuple(permit.pools),
                samples=0,
                samples_above_quota=0,
            )
        )
    return sorted(spans, key=lambda span: span.start)


@dataclass
class _SampledSite:
    """What the stored samples of one site show, from the truth at each poll instant."""

    pool_hs: dict[int, float] = field(default_factory=dict)  # sum of the accounts' 5-minute figures
    power_w: dict[int, float] = field(default_factory=dict)  # sum of the miners' reported power
    active: set[str] = field(default_factory=set)  # miners that reported a hashrate above zero
    by_version: Counter[str] = field(default_factory=Counter)  # samples under each permit version
    above_by_version: Counter[str] = field(default_factory=Counter)  # ... above that version's quota

    @classmethod
    def of(
        cls, scenario: Scenario, group: Group, accounts: list[Account], miners: list[Miner], samples: list[int]
    ) -> _SampledSite:
        seen = cls()
        for index, t in enumerate(samples):
            seen.pool_hs[t] = sum(truth.account_hashrate(scenario, a, t, truth.WINDOW_5M_S) for a in accounts)
            seen.power_w[t] = 0.0
            for miner in miners:
                hashrate_hs, watts = _miner_reading(scenario, miner, t)
                if index % SPOT_CHECK_EVERY == 0:
                    # The shortcut must say what the miner itself reports (simulator/miners/truth.py).
                    reading = miner_truth.miner_truth(scenario, miner, t)
                    assert (reading.hashrate_hs, reading.power_w) == (hashrate_hs, watts), f"{miner.name} at {t}"
                seen.power_w[t] += watts
                if hashrate_hs > 0:
                    seen.active.add(miner.name)
            permit = _permit_at(group, t)
            if permit is not None:
                seen.by_version[permit.version] += 1
                if permit.max_hashrate is not None and seen.pool_hs[t] > permit.max_hashrate:
                    seen.above_by_version[permit.version] += 1
        return seen


def _days_in(scenario: Scenario, account: Account, start: int, end: int) -> list[truth.DailyEarning]:
    first = truth.utc_day(start) - timedelta(days=1)
    days = []
    day = first
    while day_start_ts(day) < end:
        if day_start_ts(day) >= start and day >= scenario.history_start:
            days.append(truth.daily_earning(scenario, account, day))
        day += timedelta(days=1)
    return days


def _pool_uses(accounts: list[Account], spans: list[PermitSpan]) -> tuple[PoolUse, ...]:
    pools = sorted({a.pool for a in accounts})
    return tuple(
        PoolUse(
            pool=pool,
            accounts=tuple(a.username for a in accounts if a.pool == pool),
            permitted={span.version: pool in span.pools for span in spans},
        )
        for pool in pools
    )
