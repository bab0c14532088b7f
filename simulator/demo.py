"""`make demo`: a local InfluxDB, the simulator and the real collector daemon, then what it stored.

Everything listens on 127.0.0.1: InfluxDB on 18086 (RPC 18088), the simulator on 18400 (pools and
mempool.space), its miners on 18401 and up, the collector's Prometheus exporter on 9108. Runs until Ctrl-C,
or for $DEMO_SECONDS seconds, and stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import requests

from collector.adapters.registry import source_registry
from collector.compliance.alerts import StateFileError, read_state, state_file_path
from collector.config import AppConfig, load_config
from collector.errors import StorageError
from collector.redact import Redactor
from collector.sinks.influx import V1Transport, quote_literal
from simulator.local_servers import InfluxdServer, ServerFailed
from simulator.miners.fleet import MinerFleet
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "demo" / "minewatch.toml"
SCENARIO = ROOT / "simulator" / "scenarios" / "demo.toml"
WORKDIR = ROOT / ".demo"
INFLUX_HTTP_PORT = 18086
INFLUX_RPC_PORT = 18088
SIMULATOR_PORT = 18400
FIRST_DATA_TIMEOUT_S = 90.0


def main() -> int:
    """Run the demo; return the process exit code."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    seconds = _demo_seconds()
    if seconds is False:
        return 2
    deadline = None if seconds is None else time.monotonic() + seconds
    # Everything the demo talks to is on loopback; a proxy from the environment must not get in between.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    config = load_config(CONFIG, source_registry(), redactor=Redactor())
    (WORKDIR / "influxdb").mkdir(parents=True, exist_ok=True)
    influxd = InfluxdServer(WORKDIR / "influxdb", http_port=INFLUX_HTTP_PORT, rpc_port=INFLUX_RPC_PORT)
    scenario = load_scenario(SCENARIO)
    simulator = SimulatorServer(scenario, port=SIMULATOR_PORT)
    fleet = MinerFleet(scenario, base_port=SIMULATOR_PORT + 1)
    collector: subprocess.Popen[bytes] | None = None
    try:
        influxd.start()
        print(f"demo: InfluxDB 1.6 on {influxd.url} (data in {WORKDIR / 'influxdb'})")
        _start_simulators(simulator, fleet)
        log_path = WORKDIR / "collector.log"
        collector = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "run", "-c", str(CONFIG)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("ab"),
        )
        print(f"demo: collector running (`minewatch run -c {CONFIG.relative_to(ROOT)}`), log in {log_path}")
        db = V1Transport(influxd.url, config.main.influxdb.database)
        if _wait_for_data(db, config, stop, deadline):
            show_everything(db, config, stop, deadline, influxd.url)
        while not stop.wait(1.0):
            if collector.poll() is not None:
                print(f"demo: the collector exited with {collector.returncode}; see {log_path}", file=sys.stderr)
                return 1
            if deadline is not None and time.monotonic() >= deadline:
                break
        return 0
    except ServerFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("demo: stopping the collector, the simulator and InfluxDB")
        if collector is not None and collector.poll() is None:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(timeout=30)
            except subprocess.TimeoutExpired:
                collector.kill()
        fleet.stop()
        simulator.stop()
        influxd.stop()


def show_everything(
    db: V1Transport, config: AppConfig, stop: threading.Event, deadline: float | None, influx_url: str
) -> None:
    """What the demo is for: the stored data, the alerts, the metrics, the dashboards and the report."""
    print_summary(db, config)
    print_alerts(config, stop, deadline)
    print_metrics(config, stop)
    print_dashboards(WORKDIR / "dashboards")
    print_report(db, config, WORKDIR / "reports")
    print_next_steps(influx_url, config.main.influxdb.database)


def _start_simulators(simulator: SimulatorServer, fleet: MinerFleet) -> None:
    simulator.start()
    print(f"demo: simulator serving Braiins Pool and EMCD accounts and mempool.space on {simulator.url}")
    fleet.start()
    ports = sorted(port for _, port in fleet.addresses().values())
    print(f"demo: {len(ports)} simulated miners (four firmware dialects) on 127.0.0.1:{ports[0]}-{ports[-1]}")


def _demo_seconds() -> float | bool | None:
    raw = os.environ.get("DEMO_SECONDS", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        print(f"demo: DEMO_SECONDS must be a number of seconds, got {raw!r}", file=sys.stderr)
        return False
    return max(0.0, seconds)


def _wait_for_data(db: V1Transport, config: AppConfig, stop: threading.Event, demo_deadline: float | None) -> bool:
    """Wait until every pool account, miner and chain feed has written a `source_health` point (or time is up)."""
    accounts = sum(len(g.accounts) for g in config.groups)
    miners = sum(len(fleet.settings.addresses) for g in config.groups for fleet in g.fleets)
    expected = accounts + miners + len(config.networks)
    deadline = time.monotonic() + FIRST_DATA_TIMEOUT_S
    if demo_deadline is not None:
        deadline = min(deadline, demo_deadline)
    print(
        f"demo: waiting for the first poll of {accounts} pool accounts and {miners} miners (every "
        f"{config.main.schedule.interval_s:g} s) and of the chain statistics (every "
        f"{max((n.interval_s for n in config.networks), default=0):g} s)"
    )
    while not stop.wait(2.0):
        try:
            series = db.query('SELECT last("success") FROM "source_health" GROUP BY "group_id", "kind", "target"')
        except StorageError:
            series = []  # the collector has not created the database yet
        if len(series) >= expected:
            return True
        if time.monotonic() > deadline:
            print(f"demo: {len(series)} of {expected} sources had reported when the wait ended")
            return len(series) > 0
    return False


def _one(db: V1Transport, influxql: str) -> list[dict[str, object]]:
    return [record | series.tags for series in db.query(influxql) for record in series.records()]


def _ph(hashrate_hs: object) -> str:
    return f"{float(hashrate_hs) / 1e15:7.3f} PH/s" if isinstance(hashrate_hs, int | float) else "      n/a"


def _btc(sats: object) -> str:
    return f"{int(sats) / 1e8:.8f} BTC" if isinstance(sats, int | float) else "n/a"


def print_summary(db: V1Transport, config: AppConfig) -> None:
    """Per group: what InfluxDB holds now, and how it compares with the permit in force."""
    print("\n=== What minewatch stored (InfluxQL over the demo database) ===")
    for chain in _one(
        db,
        'SELECT last("difficulty") AS d, last("hashrate_hs") AS h, last("block_reward_sats") AS r '
        'FROM "network" GROUP BY "coin"',
    ):
        print(
            f"\nnetwork {chain['coin']}: difficulty {float(str(chain.get('d'))):.4g}, "
            f"hashrate {float(str(chain.get('h'))) / 1e18:.0f} EH/s, block reward {_btc(chain.get('r'))}"
        )
    for group in config.groups:
        where = f'"group_id" = {quote_literal(group.id)}'
        permit = _one(
            db,
            f'SELECT last("max_hashrate_hs") AS q, last("valid") AS v FROM "permit" WHERE {where} '
            'GROUP BY "permit_version"',
        )
        accounts = _one(
            db,
            f'SELECT last("hashrate_hs") AS h, last("balance_sats") AS b FROM "pool_account" '
            f'WHERE {where} GROUP BY "pool", "account"',
        )
        workers = _one(
            db,
            f'SELECT last("online") AS online FROM "pool_worker" WHERE {where} AND time > now() - 5m '
            'GROUP BY "account", "worker"',
        )
        earned = _one(
            db,
            f'SELECT sum("amount_sats") AS s, count("amount_sats") AS n FROM "pool_earning" '
            f"WHERE {where} AND time > now() - 30d",
        )
        payouts = _one(db, f'SELECT "amount_sats", "address", "declared" FROM "pool_payout" WHERE {where}')
        settings = _one(
            db,
            f'SELECT last("payout_address") AS a, last("declared") AS d FROM "pool_settings" '
            f'WHERE {where} GROUP BY "account"',
        )
        sites = _one(
            db,
            f'SELECT last("blackout") AS blackout, last("banned") AS banned FROM "site" WHERE {where} '
            'GROUP BY "site", "region"',
        )
        health = _one(
            db,
            f'SELECT last("success") AS ok, last("error_kind") AS kind FROM "source_health" '
            f'WHERE {where} GROUP BY "target"',
        )
        devices = _one(
            db,
            f'SELECT last("hashrate_hs") AS h, last("power_w") AS p, last("temp_max_c") AS t FROM "device" '
            f'WHERE {where} AND time > now() - 5m GROUP BY "device", "model"',
        )
        in_force = next((p for p in permit if p.get("v") == 1), permit[-1] if permit else {})
        total_hs = sum(h for a in accounts if isinstance(h := a.get("h"), int | float))
        print(f"\n{group.id} — {group.spec.legal_name} (INN {group.spec.inn})")
        print(
            f"  permit {in_force.get('permit_version', 'none')}: valid={in_force.get('v', 'n/a')}, "
            f"hashrate quota {_ph(in_force.get('q'))}"
        )
        for account in accounts:
            print(
                f"  {account['pool']:>8}/{account['account']:<12} hashrate {_ph(account.get('h'))}  "
                f"balance {_btc(account.get('b'))}"
            )
        online = sum(1 for w in workers if w.get("online") == 1)
        print(f"  workers online {online} of {len(workers)}; pool hashrate total {_ph(total_hs)}")
        if devices:
            device_hs = sum(h for d in devices if isinstance(h := d.get("h"), int | float))
            power = [p for d in devices if isinstance(p := d.get("p"), int | float)]
            hottest = max((t for d in devices if isinstance(t := d.get("t"), int | float)), default=None)
            models = ", ".join(sorted({str(d["model"]) for d in devices}))
            print(
                f"  miners reporting {len(devices)} ({models}): hashrate {_ph(device_hs)}, "
                f"power {sum(power) / 1e3:.1f} kW of {len(power)} that report it, hottest chip {hottest} °C"
            )
        if earned:
            print(f"  credited in the last 30 days: {_btc(earned[0].get('s'))} in {earned[0].get('n')} credits")
        undeclared = [p for p in payouts if p.get("declared") == 0]
        print(f"  payouts seen: {len(payouts)}, to undeclared addresses: {len(undeclared)}")
        for row in settings:
            flag = "declared" if row.get("d") == 1 else "NOT declared"
            print(f"  payout address set at {row['account']}: {row.get('a')} ({flag})")
        for site in sites:
            print(
                f"  site {site['site']} ({site['region']}): blackout={site.get('blackout')} banned={site.get('banned')}"
            )
        failing = [h for h in health if h.get("ok") != 1]
        print(f"  sources: {len(health) - len(failing)} ok, {len(failing)} failing")
        _print_against_permit(group.id, config, in_force, accounts, total_hs, undeclared, settings, sites)


def _print_against_permit(
    group_id: str,
    config: AppConfig,
    in_force: dict[str, object],
    accounts: list[dict[str, object]],
    total_hs: float,
    undeclared: list[dict[str, object]],
    settings: list[dict[str, object]],
    sites: list[dict[str, object]],
) -> None:
    """Facts the data shows against the permit (the alerting rules themselves are a later milestone)."""
    group = config.group(group_id)
    permit = next((p for p in group.spec.permits if p.version == in_force.get("permit_version")), None)
    notes = []
    if permit is not None:
        off_permit = sorted({str(a["pool"]) for a in accounts} - set(permit.pools))
        if off_permit:
            notes.append(f"mines on pools the permit does not list: {', '.join(off_permit)}")
        if permit.max_hashrate and total_hs > permit.max_hashrate:
            notes.append(f"pool hashrate is {total_hs / permit.max_hashrate:.0%} of the quota")
    if undeclared:
        notes.append(f"{len(undeclared)} payouts went to undeclared addresses")
    if any(row.get("d") == 0 for row in settings):
        notes.append("an undeclared payout address is configured at a pool")
    isolated = {s.id for s in group.spec.sites if s.isolated_generation}
    if any(s.get("blackout") == 1 and s.get("site") not in isolated for s in sites):
        notes.append("a site is mining inside a regional blackout window")
    for note in notes:
        print(f"  !! {note}")


def print_alerts(config: AppConfig, stop: threading.Event, demo_deadline: float | None) -> None:
    """Wait for the first compliance rounds to fire, then show `minewatch alerts --active`."""
    path = state_file_path(config)
    deadline = time.monotonic() + 3 * config.main.schedule.interval_s
    if demo_deadline is not None:
        deadline = min(deadline, demo_deadline)
    print("\n=== Alerts (the compliance rules, every interval; `minewatch alerts --active`) ===", flush=True)
    while not stop.wait(2.0) and time.monotonic() < deadline:
        try:
            open_alerts, _ = read_state(path)
        except (FileNotFoundError, StateFileError):
            continue
        if any(record.state == "firing" for record in open_alerts):
            break
    shown = subprocess.run(
        [sys.executable, "-m", "collector.cli", "alerts", "--active", "-c", str(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    print(shown.stdout.rstrip() or shown.stderr.rstrip(), flush=True)


def print_metrics(config: AppConfig, stop: threading.Event) -> None:
    """The exporter's view of each group, once the first compliance round is in: what Prometheus would scrape."""
    exporter = config.main.exporter
    url = f"http://{exporter.listen_address}:{exporter.port}/metrics"
    print(f"\n=== Prometheus metrics ({url}), per group ===", flush=True)
    wanted = ("minewatch_group_compliance_status", "minewatch_group_hashrate_quota_utilisation_ratio")
    deadline = time.monotonic() + 3 * config.main.schedule.interval_s
    lines: list[str] = []
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            lines = requests.get(url, timeout=5).text.splitlines()
        except requests.RequestException as exc:
            print(f"demo: the exporter did not answer: {exc}")
            return
        judged = {line.split('"')[1] for line in lines if line.startswith("minewatch_group_compliance_status{")}
        if judged >= {group.id for group in config.groups}:  # every group's first round is in
            break
        stop.wait(2.0)
    for line in lines:
        if line.startswith(wanted):
            print(f"  {line}")
    print(f"  ... {len(lines)} lines in all (`curl -s {url}`)", flush=True)


def print_dashboards(out: Path) -> None:
    """Build the Grafana dashboards (as `minewatch dashboards build` does) and list their panels."""
    from dashboards.build import build

    print(f"\n=== Grafana dashboards (`minewatch dashboards build --out {out.relative_to(ROOT)}`) ===")
    written = build(out)
    for path in written:
        board = json.loads(path.read_text(encoding="utf-8"))
        panels = [panel["title"] for panel in board["panels"] if panel.get("type") != "row"]
        print(f"  {board['title']} ({path.relative_to(ROOT)}, uid {board['uid']}): {len(panels)} panels")
        print(f"    {'; '.join(panels)}")
    query = json.loads(written[0].read_text(encoding="utf-8"))["panels"][0]["targets"][0]["query"]
    print(f"  a panel's InfluxQL, as Grafana receives it: {query}", flush=True)


def print_report(db: V1Transport, config: AppConfig, out: Path) -> None:
    """This month's production summary so far (what `minewatch report monthly` files), one line per row."""
    from exporters.reports.generate import generate_monthly

    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    print(f"\n=== Monthly report, {month} so far (`minewatch report monthly --month {month}`) ===", flush=True)
    result = generate_monthly(config, month, transport=db, out_dir=out, now=now)
    for row in result.rows:
        where = row.site_id or "(accounts without a site)"
        print(
            f"  {row.group_id:<10} {where:<26} mined {_btc(row.mined_sats)} in {row.credit_count} credits; "
            f"payouts {_btc(row.payout_total_sats)}, undeclared {_btc(row.payout_undeclared_sats)}; "
            f"completeness {_share(row.data_completeness)}"
        )
    for path in result.paths:
        print(f"  {path.relative_to(ROOT)}")


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1%} of the month's polls"


def print_next_steps(influx_url: str, database: str) -> None:
    """Where to look next."""
    print(
        f"""
=== Where to look next ===
  InfluxQL:   curl -sG {influx_url}/query --data-urlencode db={database} \\
                --data-urlencode 'q=SELECT last(hashrate_hs) FROM pool_account GROUP BY group_id, account'
  One poll:   .venv/bin/minewatch collect --once --print -c config/demo/minewatch.toml
  Alerts:     .venv/bin/minewatch alerts -c config/demo/minewatch.toml   (every alert; --active: open ones)
  Metrics:    curl -s http://127.0.0.1:9108/metrics   (while the demo runs)
  Grafana:    import .demo/dashboards/*.json, or `docker-compose --profile demo up` (see README)
  Report:     .venv/bin/minewatch report monthly --month YYYY-MM -c config/demo/minewatch.toml --out .demo/reports
  Config:     config/demo/ (groups, permits), config/regions.toml (ban calendar)
  Scenario:   simulator/scenarios/demo.toml (what the fake pools serve; the ground truth)
  Stop:       Ctrl-C (or set DEMO_SECONDS=N)
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
