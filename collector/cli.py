"""The `minewatch` command line. Bad input exits 2 with a message; it never prints a traceback."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from collector.adapters.registry import source_registry
from collector.config import AppConfig, ConfigInvalid, default_config_path, load_config
from collector.errors import StorageError
from collector.redact import RedactingFilter, Redactor
from collector.sharding import ShardError, parse_shard, shard_of
from collector.sinks.spool import SpoolError, stranded_spools

DEMO_SCENARIO = Path(__file__).resolve().parent.parent / "simulator" / "scenarios" / "demo.toml"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _setup_logging(redactor: Redactor, level: str, stream: TextIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job execution at INFO; keep its warnings (missed runs) only.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return logging.getLogger("minewatch")


def _load(path: Path | None, redactor: Redactor, stderr: TextIO, *, warn: bool = False) -> AppConfig | None:
    config_path = path or default_config_path()
    try:
        config = load_config(config_path, source_registry(), redactor=redactor)
    except ConfigInvalid as invalid:
        for error in invalid.errors:
            print(f"minewatch: config error: {redactor(str(error))}", file=stderr)
        return None
    if warn:
        for warning in config.warnings:
            print(f"minewatch: warning: {warning}", file=stderr)
    return config


def cmd_check_config(args: argparse.Namespace, redactor: Redactor) -> int:
    config = _load(args.config, redactor, sys.stderr, warn=True)
    if config is None:
        return EXIT_USAGE
    accounts = sum(len(g.accounts) for g in config.groups)
    miners = sum(len(fleet.settings.addresses) for g in config.groups for fleet in g.fleets)
    print(
        f"{config.path}: ok: {len(config.groups)} groups, {accounts} pool accounts, {miners} miners, "
        f"{len(config.networks)} network feeds, {len(config.regions.bans)} bans"
    )
    return EXIT_OK


def cmd_collect(args: argparse.Namespace, redactor: Redactor) -> int:
    from collector.app import DatabaseSetup, build_collector, build_influx_sink, collect_once, summarize
    from collector.sinks.base import Sink, StdoutSink

    if not args.once:
        print("minewatch: collect needs --once (use `minewatch run` for the daemon)", file=sys.stderr)
        return EXIT_USAGE
    log = _setup_logging(redactor, args.log_level, sys.stderr)
    config = _load(args.config, redactor, sys.stderr)
    if config is None:
        return EXIT_USAGE
    if args.group is not None and args.group not in {g.id for g in config.groups}:
        print(f"minewatch: no group {args.group!r} in {config.path}", file=sys.stderr)
        return EXIT_USAGE
    influx = None
    if not args.print:
        influx = build_influx_sink(config.main.influxdb, redactor, log)
        if not DatabaseSetup(influx, log)():
            print(f"minewatch: InfluxDB at {config.main.influxdb.url} is not ready; nothing polled", file=sys.stderr)
            influx.close(timeout_s=0)
            return EXIT_FAILED
    sink: Sink = influx if influx is not None else StdoutSink(sys.stdout, redact=redactor)
    selected = None if args.group is None else frozenset({args.group})
    collector = build_collector(config, source_registry(), sink, redactor=redactor, log=log, selected=selected)
    results = collect_once(collector)
    stored = sink.flush(timeout_s=config.main.influxdb.timeout_s * 3)
    if influx is not None:
        influx.close(timeout_s=0)  # flushed above; do not wait a second time
    else:
        sink.close()
    ok, failed = summarize(results)
    for result in results:
        if not result.success:
            print(f"minewatch: {result.key}: {result.error_kind}: {redactor(result.message or '')}", file=sys.stderr)
    print(f"minewatch: polled {len(results)} sources: {ok} ok, {failed} failed", file=sys.stderr)
    if influx is not None and not stored:
        print(f"minewatch: InfluxDB did not take every point: {redactor(influx.last_error or '')}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


def _spool_dir(log: logging.Logger, base: Path, shard: tuple[int, int] | None) -> Path:
    """This run's spool directory; warn about those of another sharding (or none) that still hold lines this
    run will not send."""
    spool_dir = base
    if shard is not None:  # replicas sharing one config each need their own (locked) spool directory
        spool_dir = base / f"shard-{shard[0]}-of-{shard[1]}"
    for stranded, segments in stranded_spools(base, spool_dir):
        log.warning(
            "spool: %s holds %d undelivered segments that this run does not send (another sharding of the "
            "same config left them); run with the matching --shard, or move them into %s",
            stranded,
            segments,
            spool_dir,
        )
    return spool_dir


def cmd_run(args: argparse.Namespace, redactor: Redactor) -> int:
    from collector.app import (
        DatabaseSetup,
        build_collector,
        build_compliance,
        build_influx_sink,
        build_query_transport,
        run_scheduled,
    )
    from exporters.prometheus import start_exporter
    from exporters.reports.scheduled import ScheduledReports

    try:
        shard = None if args.shard is None else parse_shard(args.shard)
    except ShardError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log = _setup_logging(redactor, args.log_level, sys.stderr)
    config = _load(args.config, redactor, sys.stderr)
    if config is None:
        return EXIT_USAGE
    selected = None
    if shard is not None:
        index, count = shard
        selected = frozenset(g.id for g in config.groups if shard_of(g.id, count) == index)
        log.info("shard %d/%d: %d of %d groups", index, count, len(selected), len(config.groups))
    for warning in config.warnings:
        log.warning("config: %s", warning)
    spool = config.main.spool
    spool_dir = _spool_dir(log, spool.path(config.path), shard)
    try:
        sink = build_influx_sink(config.main.influxdb, redactor, log, spool=spool, spool_dir=spool_dir)
    except SpoolError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sink.start()
    collector = build_collector(config, source_registry(), sink, redactor=redactor, log=log, selected=selected)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "minewatch run: %d groups, %d pool accounts, %d miners, %d network feeds",
        len(collector.groups),
        len(collector.targets),
        collector.device_count,
        len(collector.networks),
    )
    compliance = build_compliance(collector, redactor=redactor, log=log, shard=shard)
    exporter = None
    settings = config.main.exporter
    if settings.enabled:
        try:
            exporter = start_exporter(
                collector,
                compliance,
                address=str(settings.listen_address),
                port=settings.port,
                basic_auth=settings.basic_auth,
                log=log,
            )
        except OSError as exc:
            log.error("cannot serve metrics on %s port %d: %s", settings.listen_address, settings.port, exc.strerror)
            sink.close(timeout_s=spool.shutdown_flush_s)
            return EXIT_FAILED
    reports = None
    if config.main.reports.enabled and (shard is None or shard[0] == 0):  # one replica writes the reports
        transport = build_query_transport(config.main.influxdb, redactor)
        reports = ScheduledReports.from_config(config, config.main.reports, transport, redact=redactor)
    try:
        run_scheduled(
            collector,
            log=log,
            stop=stop,
            setup_database=DatabaseSetup(sink, log),
            compliance=compliance,
            reports=reports,
        )
    finally:
        if exporter is not None:
            exporter.stop()
    # SIGTERM/SIGINT: the scheduler has stopped; deliver what is spooled for at most shutdown_flush_s. What is
    # left stays on disk (close() logs how many lines) and is sent at the next start.
    sink.close(timeout_s=spool.shutdown_flush_s)
    log.info("stopped")
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace, redactor: Redactor) -> int:
    from collector.compliance.alerts import StateFileError, read_state, state_file_path

    config = _load(args.config, redactor, sys.stderr)
    if config is None:
        return EXIT_USAGE
    path = state_file_path(config)
    # `run --shard I/N` keeps one file per shard next to the configured one: read them all.
    paths = [p for p in (path, *sorted(path.parent.glob(f"{path.stem}.shard-*{path.suffix}"))) if p.exists()]
    if not paths:
        print(f"no alerts recorded yet ({path})")
        return EXIT_OK
    open_alerts, resolved = [], []
    for state in paths:
        try:
            shard_open, shard_resolved = read_state(state)
        except (FileNotFoundError, StateFileError) as exc:
            print(f"minewatch: {state}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        open_alerts += shard_open
        resolved += shard_resolved
    records = sorted(open_alerts, key=lambda r: (r.state != "firing", r.state != "pending", r.key))
    if args.active:
        records = [r for r in records if r.active]
    else:
        records += sorted(resolved, key=lambda r: r.since, reverse=True)
    if not records:
        print("no active alerts" if args.active else "no alerts recorded yet")
        return EXIT_OK
    header = ("GROUP", "RULE", "SUBJECT", "STATE", "SINCE (UTC)", "VALUE / LIMIT", "EVIDENCE")
    rows = [
        (
            r.finding.group_id,
            r.finding.rule,
            r.finding.subject or "-",
            r.state if r.excuse is None else f"{r.state} ({r.excuse})",
            datetime.fromtimestamp(r.since, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            f"{_quantity(r.finding.value)} / {_quantity(r.finding.limit)}",
            redactor(r.finding.evidence.replace("\n", " ")),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return EXIT_OK


def _quantity(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float | int) and not isinstance(value, bool) else str(value)


def cmd_simulate(args: argparse.Namespace, redactor: Redactor) -> int:
    from simulator.scenario import ScenarioError
    from simulator.server import run

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"minewatch: --listen wants HOST:PORT, got {args.listen!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run(args.scenario, host, int(port), allow_external=args.allow_external)
    except (ScenarioError, ValueError) as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"minewatch: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_dashboards_build(args: argparse.Namespace, redactor: Redactor) -> int:
    from dashboards.build import DashboardSourceError, build

    try:
        written = build(args.out)
    except DashboardSourceError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"minewatch: cannot write dashboards to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    return EXIT_OK


def cmd_report_monthly(args: argparse.Namespace, redactor: Redactor) -> int:
    from collector.app import build_query_transport
    from exporters.reports.generate import generate_monthly
    from exporters.reports.period import MonthError
    from exporters.reports.progress import BarProgress, cli_progress
    from exporters.reports.settings import ALL_FORMATS, ReportFormat

    formats: list[ReportFormat] = []
    for name in (part.strip() for part in args.format.split(",")):
        if name not in ALL_FORMATS:
            known = ", ".join(ALL_FORMATS)
            print(f"minewatch: --format {args.format!r}: {name!r} is not one of {known}", file=sys.stderr)
            return EXIT_USAGE
        formats.append(name)
    config = _load(args.config, redactor, sys.stderr)
    if config is None:
        return EXIT_USAGE
    if args.group is not None and args.group not in {group.id for group in config.groups}:
        print(f"minewatch: --group {args.group!r}: no such group in {config.path}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out if args.out is not None else config.path.parent / config.main.reports.out_dir
    transport = build_query_transport(config.main.influxdb, redactor)
    # A bar on stderr when it is a terminal (stdout stays clean: the file list), JSON lines on stdout otherwise.
    progress = cli_progress(sys.stdout, sys.stderr)
    try:
        result = generate_monthly(
            config,
            args.month,
            transport=transport,
            formats=formats,
            out_dir=out,
            group_id=args.group,
            now=datetime.now(UTC),
            progress=progress,
        )
    except MonthError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:
        print(f"minewatch: cannot read InfluxDB: {redactor(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"minewatch: cannot write the report to {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        transport.close()
    if isinstance(progress, BarProgress):  # otherwise the JSON lines named every file
        for path in result.paths:
            print(path)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minewatch", description="Watch mining groups against their permits.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            help="main config file (default: $MINEWATCH_CONFIG, then config/minewatch.toml)",
        )
        p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        return p

    with_config(sub.add_parser("check-config", help="validate the configuration")).set_defaults(func=cmd_check_config)
    run = with_config(sub.add_parser("run", help="the daemon: poll on schedule, write InfluxDB"))
    run.add_argument("--shard", metavar="I/N", help="poll only the groups of shard I of N (0-based)")
    run.set_defaults(func=cmd_run)
    collect = with_config(sub.add_parser("collect", help="poll every source once"))
    collect.add_argument("--once", action="store_true", help="poll once and exit (required)")
    collect.add_argument("--print", action="store_true", help="print line protocol to stdout instead of writing")
    collect.add_argument("--group", help="only this group id")
    collect.set_defaults(func=cmd_collect)
    alerts = with_config(sub.add_parser("alerts", help="list the alerts the collector has recorded"))
    alerts.add_argument("--active", action="store_true", help="only pending and firing alerts")
    alerts.set_defaults(func=cmd_alerts)
    simulate = sub.add_parser("simulate", help="serve simulated pool APIs on loopback")
    simulate.add_argument("--scenario", type=Path, default=DEMO_SCENARIO, help="scenario file (default: the demo's)")
    simulate.add_argument("--listen", default="127.0.0.1:18400", help="HOST:PORT (default 127.0.0.1:18400)")
    simulate.add_argument(
        "--allow-external", action="store_true", help="allow a non-loopback --listen address (containers only)"
    )
    simulate.set_defaults(func=cmd_simulate)
    dashboards = sub.add_parser("dashboards", help="Grafana dashboards generated from dashboards/*.dashboard.py")
    dashboards_sub = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    build = dashboards_sub.add_parser("build", help="render every dashboard to JSON")
    build.add_argument(
        "--out", type=Path, default=Path("dashboards") / "generated", help="directory (default: dashboards/generated)"
    )
    build.set_defaults(func=cmd_dashboards_build)
    report = sub.add_parser("report", help="reports computed from what InfluxDB holds")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="KIND")
    monthly = with_config(report_sub.add_parser("monthly", help="the monthly production summary of every group"))
    monthly.add_argument("--month", required=True, help="YYYY-MM (month boundaries in each site's time zone)")
    monthly.add_argument("--group", help="only this group (default: every group)")
    monthly.add_argument("--format", default="csv,json,pdf", help="comma-separated: csv, json, pdf (default: all)")
    monthly.add_argument("--out", type=Path, help="directory (default: [reports] out_dir of the config)")
    monthly.set_defaults(func=cmd_report_monthly)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `minewatch` console script."""
    args = build_parser().parse_args(argv)
    redactor = Redactor()
    try:
        code: int = args.func(args, redactor)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
