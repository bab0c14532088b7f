"""The composition root: config -> sources -> HTTP clients -> runner -> scheduler -> sink. Nothing else builds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.adapters.registry import SourceRegistry
from collector.compliance.alerts import AlertBook, state_file_path
from collector.compliance.engine import ComplianceEngine, build_delivery
from collector.compliance.observe import GroupObserver
from collector.config import AppConfig, Group, InfluxConfig, MinerFleet, NetworkFeed, SpoolConfig
from collector.devices.base import DeviceContext
from collector.devices.cgminer.client import MinerRpc
from collector.errors import StorageError
from collector.group_facts import group_fact_lines
from collector.ratelimit import BudgetBook
from collector.redact import Redactor
from collector.runner import PollResult, Runner
from collector.scheduler import Scheduler
from collector.sinks.base import Sink
from collector.sinks.buffered import InfluxSink
from collector.sinks.influx import V1Transport, V2Transport
from collector.sinks.spool import DiskSpool, SpoolError
from collector.state import StateStore
from collector.targets import DeviceTarget, NetworkTarget, PoolTarget, Target

if TYPE_CHECKING:  # the daemon is handed the report schedule; the collector does not import the reports
    from exporters.reports.scheduled import ScheduledReports

T = TypeVar("T")
REPORT_CHECK_INTERVAL_S = 600.0
USER_AGENT = "minewatch/0.1 (+https://github.com/minewatch)"


@dataclass(frozen=True)
class FleetTargets:
    """The miners of one fleet, polled together by one scheduled job on the device threads."""

    key: str
    targets: list[DeviceTarget]


@dataclass
class Collector:
    """Everything one collector process runs: its targets, the runner and the shared state."""

    config: AppConfig
    targets: list[PoolTarget]
    runner: Runner
    state: StateStore
    sink: Sink
    clock: Callable[[], float]
    groups: list[Group]
    fleets: list[FleetTargets] = field(default_factory=list)
    networks: list[NetworkTarget] = field(default_factory=list)

    def write_group_facts(self, group: Group) -> None:
        """Write the group's `permit` and `site` points for now."""
        self.sink.write(group_fact_lines(group, self.config.regions.bans, int(self.clock())))

    @property
    def device_count(self) -> int:
        return sum(len(fleet.targets) for fleet in self.fleets)


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def build_targets(
    config: AppConfig,
    groups: Sequence[Group],
    sources: SourceRegistry,
    *,
    redactor: Redactor,
    clock: Callable[[], float],
    log: logging.Logger,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[PoolTarget]:
    """One target per pool account of `groups`: a source with its own HTTP client over a per-host session."""
    sessions: dict[str, requests.Session] = {}
    budgets = BudgetBook(monotonic)
    schedule = config.main.schedule
    targets = []
    for group in groups:
        for account in group.accounts:
            source_class = sources[account.kind]
            settings = account.settings
            settings.register_secrets(redactor)
            host = urlsplit(settings.base_url).netloc
            if host not in sessions:
                sessions[host] = _session(max(10, schedule.workers))
            session = sessions[host]
            budget = sources.budget_for(account.kind, config.main.rate_budgets.get(account.kind))
            http = HttpClient(
                session,
                redact=redactor,
                bucket=budgets.bucket(source_class.budget_key(settings), budget),
                read_timeout_s=schedule.timeout_s,
                max_body_bytes=schedule.max_response_bytes,
                monotonic=monotonic,
            )
            ctx = SourceContext(
                http=http,
                clock=clock,
                log=log.getChild(f"{account.kind}.{group.id}.{account.id}"),
                target=account.id,
                coin=account.coin,
                interval_s=schedule.interval_s,
            )
            targets.append(
                PoolTarget(
                    group=group,
                    account=account,
                    source=source_class(settings, ctx),
                    http=http,
                    interval_s=schedule.interval_s,
                    timeout_s=schedule.timeout_s,
                )
            )
    return targets


def build_fleets(
    config: AppConfig,
    groups: Sequence[Group],
    sources: SourceRegistry,
    *,
    clock: Callable[[], float],
    log: logging.Logger,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[FleetTargets]:
    """One target per miner of every fleet of `groups`, each with its own RPC client."""
    return [
        FleetTargets(f"{group.id}/fleet/{fleet.id}", _fleet_targets(config, fleet, sources, clock, log, monotonic))
        for group in groups
        for fleet in group.fleets
    ]


def _fleet_targets(
    config: AppConfig,
    fleet: MinerFleet,
    sources: SourceRegistry,
    clock: Callable[[], float],
    log: logging.Logger,
    monotonic: Callable[[], float],
) -> list[DeviceTarget]:
    settings = fleet.settings
    source_class = sources.devices[fleet.kind]
    targets = []
    for miner in settings.addresses:
        rpc = MinerRpc(
            miner.host,
            miner.port,
            connect_timeout_s=settings.connect_timeout_s,
            max_reply_bytes=config.main.schedule.max_response_bytes,
            monotonic=monotonic,
        )
        ctx = DeviceContext(rpc=rpc, clock=clock, log=log.getChild(f"{fleet.kind}.{fleet.group_id}"), target=miner.name)
        targets.append(
            DeviceTarget(
                group_id=fleet.group_id,
                site=fleet.site,
                fleet=fleet.id,
                device=miner.name,
                source=source_class(settings, ctx),
                rpc=rpc,
                interval_s=config.main.schedule.interval_s,
                timeout_s=settings.timeout_s,
            )
        )
    return targets


def build_networks(
    config: AppConfig,
    sources: SourceRegistry,
    *,
    redactor: Redactor,
    clock: Callable[[], float],
    log: logging.Logger,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[NetworkTarget]:
    """One target per configured network-statistics feed."""
    budgets = BudgetBook(monotonic)
    return [
        _network_target(config, feed, sources, budgets, redactor, clock, log, monotonic) for feed in config.networks
    ]


def _network_target(
    config: AppConfig,
    feed: NetworkFeed,
    sources: SourceRegistry,
    budgets: BudgetBook,
    redactor: Redactor,
    clock: Callable[[], float],
    log: logging.Logger,
    monotonic: Callable[[], float],
) -> NetworkTarget:
    source_class = sources.networks[feed.kind]
    feed.settings.register_secrets(redactor)
    schedule = config.main.schedule
    budget = sources.budget_for(feed.kind, config.main.rate_budgets.get(feed.kind))
    http = HttpClient(
        _session(4),
        redact=redactor,
        bucket=budgets.bucket(source_class.budget_key(feed.settings), budget),
        read_timeout_s=schedule.timeout_s,
        max_body_bytes=schedule.max_response_bytes,
        monotonic=monotonic,
    )
    ctx = SourceContext(
        http=http,
        clock=clock,
        log=log.getChild(feed.kind),
        target=feed.coin,
        coin=feed.coin,
        interval_s=feed.interval_s,
    )
    return NetworkTarget(
        kind=feed.kind,
        coin=feed.coin,
        source=source_class(feed.settings, ctx),
        http=http,
        interval_s=feed.interval_s,
        timeout_s=schedule.timeout_s,
    )


def build_collector(
    config: AppConfig,
    sources: SourceRegistry,
    sink: Sink,
    *,
    redactor: Redactor,
    log: logging.Logger,
    clock: Callable[[], float] = time.time,
    selected: frozenset[str] | None = None,
) -> Collector:
    """Wire a collector around an already-built sink."""
    state = StateStore()
    runner = Runner(sink, state, clock=clock, log=log)
    groups = [g for g in config.groups if selected is None or g.id in selected]
    return Collector(
        config=config,
        targets=build_targets(config, groups, sources, redactor=redactor, clock=clock, log=log),
        runner=runner,
        state=state,
        sink=sink,
        clock=clock,
        groups=groups,
        fleets=build_fleets(config, groups, sources, clock=clock, log=log),
        # Chain statistics belong to no group: a run limited to some groups (--group) leaves them out.
        networks=build_networks(config, sources, redactor=redactor, clock=clock, log=log) if selected is None else [],
    )


def build_influx_sink(
    settings: InfluxConfig,
    redactor: Redactor,
    log: logging.Logger,
    *,
    spool: SpoolConfig | None = None,
    spool_dir: Path | None = None,
) -> InfluxSink:
    """The InfluxDB sink the config asks for (v1 /write by default, or v2 through influxdb-client).

    With `spool_dir` (the daemon) its lines go through a `DiskSpool` there, opened now: its lock is taken and
    what a previous run left is recovered; `SpoolError` if another process holds it. Without (`collect`, tests),
    an in-memory spool of `max_buffered_lines`: a one-shot run reports delivery through its exit code and must
    not contend with a running daemon for the directory.
    """
    settings.register_secrets(redactor)
    transport: V1Transport | V2Transport
    if settings.api == "v2":
        transport = V2Transport(
            settings.url,
            org=settings.org or "",
            bucket=settings.bucket or "",
            token=settings.secret("token") or "",
            timeout_s=settings.timeout_s,
            redact=redactor,
        )
    else:
        transport = build_query_transport(settings, redactor)
    disk: DiskSpool | None = None
    if spool_dir is not None:
        spool = spool if spool is not None else SpoolConfig()
        max_bytes = spool.max_size_mb * 2**20
        disk = DiskSpool(
            spool_dir,
            batch_size=settings.batch_size,
            max_bytes=max_bytes,
            fsync=spool.fsync,
            target=spool_target(settings),
        )
        try:
            disk.open()
        except SpoolError:
            transport.close()
            raise
        for warning in disk.warnings:
            log.warning("spool: %s", warning)
        if disk.recovered_lines:
            log.info("%d lines recovered from the spool at %s; sending them first", disk.recovered_lines, spool_dir)
    return InfluxSink(
        transport,
        batch_size=settings.batch_size,
        flush_interval_s=settings.flush_interval_s,
        max_buffered_lines=settings.max_buffered_lines,
        spool=disk,
        log=log.getChild("influxdb"),
    )


def spool_target(settings: InfluxConfig) -> dict[str, str | None]:
    """What a spool's lines are for (recorded in its `target.json`): api, host:port, database or bucket and
    retention policy; never credentials."""
    parts = urlsplit(str(settings.url))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target: dict[str, str | None] = {"api": settings.api, "url": f"{parts.scheme}://{netloc}:{port}"}
    if settings.api == "v2":
        target["org"] = settings.org
        target["bucket"] = settings.bucket
    else:
        target["database"] = settings.database
        target["retention_policy"] = settings.retention_policy
    return target


def build_query_transport(settings: InfluxConfig, redactor: Redactor) -> V1Transport:
    """A client of the v1 API (`/query` InfluxQL, `/write`), which every InfluxDB generation speaks. With
    `api = "v2"` the bucket is read as the database of the same name (2.x's DBRP mapping)."""
    settings.register_secrets(redactor)
    return V1Transport(
        settings.url,
        settings.bucket or settings.database if settings.api == "v2" else settings.database,
        retention_policy=settings.retention_policy,
        username=settings.username,
        password=settings.secret("password"),
        token=settings.secret("token"),
        timeout_s=settings.timeout_s,
        redact=redactor,
    )


class DatabaseSetup:
    """Creates the v1 database once InfluxDB answers; until then writes wait in the sink's spool."""

    def __init__(self, sink: InfluxSink, log: logging.Logger) -> None:
        self._transport = sink.transport if isinstance(sink.transport, V1Transport) else None
        self._log = log
        self.done = self._transport is None

    def __call__(self) -> bool:
        """Try once; True when the database exists (or the v2 API, which needs none, is used)."""
        if self.done or self._transport is None:
            return True
        try:
            self._transport.ensure_database()
        except StorageError as exc:
            self._log.warning("InfluxDB database not ready yet: %s", exc)
            return False
        self.done = True
        return True


def collect_once(collector: Collector) -> list[PollResult]:
    """Poll every target once, pools and miners on their own threads, and write each group's facts."""
    schedule = collector.config.main.schedule
    for group in collector.groups:
        collector.write_group_facts(group)
    http_targets: list[Target] = [*collector.targets, *collector.networks]
    devices = [target for fleet in collector.fleets for target in fleet.targets]
    with (
        ThreadPoolExecutor(max_workers=max(1, min(schedule.workers, len(http_targets)))) as http_pool,
        ThreadPoolExecutor(max_workers=max(1, min(schedule.device_workers, len(devices)))) as device_pool,
    ):
        polls = [http_pool.submit(collector.runner.poll, t) for t in http_targets]
        polls += [device_pool.submit(collector.runner.poll, t) for t in devices]
        return [poll.result() for poll in polls]


def build_compliance(
    collector: Collector,
    *,
    redactor: Redactor,
    log: logging.Logger,
    grace_s: float | None = None,
    shard: tuple[int, int] | None = None,
) -> ComplianceEngine:
    """The compliance engine over the collector's state: rules, the alert book (loaded from its file), delivery.

    `grace_s` (default: one interval and one poll timeout) is how long after now it only observes. A shard
    keeps its own state file (`alerts.shard-1-of-3.json`): replicas sharing one config must not overwrite
    each other's alerts.
    """
    config = collector.config
    settings = config.main.compliance
    state_file = state_file_path(config)
    if shard is not None:
        state_file = state_file.with_name(f"{state_file.stem}.shard-{shard[0]}-of-{shard[1]}{state_file.suffix}")
    book = AlertBook(config.main.alerting, collector.groups, state_file=state_file, log=log.getChild("alerts"))
    book.load(collector.clock())
    observer = GroupObserver(
        collector.state,
        collector.targets,
        [target for fleet in collector.fleets for target in fleet.targets],
        config.regions.bans,
        # The longest rule window, and a round more, so a window is never cut short by the trimming.
        history_s=max(settings.hashrate_window_s, settings.unaccounted_window_s, settings.drop_window_s)
        + config.main.schedule.interval_s,
        stale_after_s=settings.stale_after_s,
    )
    delivery = build_delivery(
        config.main.alerting,
        book,
        redactor=redactor,
        clock=collector.clock,
        log=log,
        round_interval_s=config.main.schedule.interval_s,
    )
    schedule = config.main.schedule
    return ComplianceEngine(
        observer,
        settings,
        book,
        delivery,
        collector.sink,
        started_at=collector.clock(),
        grace_s=schedule.interval_s + schedule.timeout_s if grace_s is None else grace_s,
    )


def run_scheduled(
    collector: Collector,
    *,
    log: logging.Logger,
    stop: threading.Event,
    setup_database: DatabaseSetup | None = None,
    compliance: ComplianceEngine | None = None,
    reports: ScheduledReports | None = None,
    shutdown_timeout_s: float = 20.0,
) -> Scheduler:
    """Schedule every target, each group's facts and compliance round, and the monthly report's check; return
    once `stop` is set and the jobs have finished."""
    schedule = collector.config.main.schedule
    scheduler = Scheduler(
        interval_s=schedule.interval_s,
        workers=schedule.workers,
        misfire_grace_s=schedule.misfire_grace_s,
        log=log,
        now=lambda: datetime.fromtimestamp(collector.clock(), UTC),
    )
    if setup_database is not None and not setup_database():

        def retry_database_setup() -> None:
            if setup_database():
                scheduler.remove("storage/database")

        scheduler.add("storage/database", retry_database_setup)
    for target in collector.targets:
        scheduler.add(target.key, _bind(collector.runner.poll, target))
    for network in collector.networks:
        scheduler.add(network.key, _bind(collector.runner.poll, network), interval_s=network.interval_s)
    # A fleet is one job: its miners are polled in parallel on the device threads, each within its own
    # timeout, so a dead miner costs one thread for one timeout and never delays the others.
    device_pool = ThreadPoolExecutor(max_workers=schedule.device_workers, thread_name_prefix="device")
    for fleet in collector.fleets:
        scheduler.add(fleet.key, _bind(poll_fleet, (collector.runner, device_pool, fleet)))
    for group in collector.groups:
        scheduler.add(f"{group.id}/facts", _bind(collector.write_group_facts, group))
    delivering = threading.Event()
    if compliance is not None:
        for group in collector.groups:
            scheduler.add(f"{group.id}/compliance", _bind(_compliance_round, (compliance, group, collector.clock)))
        threading.Thread(target=compliance.delivery.run, args=(delivering,), name="alert-delivery", daemon=True).start()
    if reports is not None:
        # Due months (and any missed while the daemon was down) are made within one check of falling due.
        scheduler.add(
            "reports/monthly",
            lambda: reports.run_due(datetime.fromtimestamp(collector.clock(), UTC)),
            interval_s=REPORT_CHECK_INTERVAL_S,
        )
    scheduler.start()
    log.info("scheduled %d jobs every %g s", scheduler.job_count, schedule.interval_s)
    stop.wait()
    log.info("stopping: waiting for running polls (at most %g s)", shutdown_timeout_s)

    def finish() -> None:
        scheduler.shutdown(wait=True)
        device_pool.shutdown(wait=True, cancel_futures=True)
        delivering.set()
        if compliance is not None:
            compliance.delivery.flush()  # what the last rounds raised, once more before exiting

    finisher = threading.Thread(target=finish, daemon=True)
    finisher.start()
    finisher.join(shutdown_timeout_s)
    return scheduler


def _compliance_round(job: tuple[ComplianceEngine, Group, Callable[[], float]]) -> None:
    engine, group, clock = job
    engine.evaluate(group, clock())


def poll_fleet(job: tuple[Runner, ThreadPoolExecutor, FleetTargets]) -> None:
    """The daemon's job for one fleet: every miner polled on the shared device threads, each within its timeout."""
    runner, device_pool, fleet = job
    for _ in device_pool.map(runner.poll, fleet.targets):
        pass


def _bind(function: Callable[[T], object], argument: T) -> Callable[[], None]:
    def job() -> None:
        function(argument)

    return job


def summarize(results: Sequence[PollResult]) -> tuple[int, int]:
    """(succeeded, failed) counts."""
    failed = sum(1 for r in results if not r.success)
    return len(results) - failed, failed
