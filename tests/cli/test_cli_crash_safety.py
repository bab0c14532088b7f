"""Crash safety of `minewatch run` with real processes: influxd and the collector are killed with SIGKILL while
the collector polls the simulator, and every point the spool had taken must arrive, with its content, once.

The ground truth is the spool itself: whatever its segment files hold at the moment of a kill is what the
collector had taken (acknowledged to the job that wrote it), so after the restarts every one of those lines must
be in InfluxDB with the same tags, fields and timestamp.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest
from cli_support import CliRunner, MakeConfig, Point, Running, parse_line, unique_name, wait_for
from demo_config import DemoConfig, copy_demo_config
from servers import StubHTTPServer, StubResponse
from stored_points import missing_or_different
from test_cli_run import FAST_SCHEDULE, RAISED_BUDGETS, health_counts

from collector.compliance.alerts import StateFileError, read_state
from collector.compliance.delivery import change_id
from collector.compliance.findings import AlertEvent
from collector.sinks.influx import V1Transport
from simulator.local_servers import InfluxdServer
from simulator.server import SimulatorServer

pytestmark = pytest.mark.integration

INTERVAL_S = float(FAST_SCHEDULE["interval_s"])
START_UP_S = 2 * INTERVAL_S  # from exec to the first poll of a restarted collector, on a busy machine


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterable[InfluxdServer]:
    """A private influxd this test may kill and restart (same data directory and ports)."""
    workdir = tmp_path / "influxd"
    workdir.mkdir()
    server = InfluxdServer(workdir)
    server.start()
    yield server
    server.stop(kill=True)


def spool_dir(config: DemoConfig) -> Path:
    """The spool of a demo config copy: `[spool] dir` defaults to `state/spool` beside the main file."""
    return config.main.parent / "state" / "spool"


def spooled_points(directory: Path) -> list[Point]:
    """Every complete line in the spool's segment files (what the collector has taken and not yet delivered).

    Split on b"\n" only, as the spool writes them (`splitlines` would also split inside a line at a \r or
    \u2028 a string field may hold); a segment the running collector deletes between the glob and the read has
    been delivered, and is skipped.
    """
    points: list[Point] = []
    for segment in sorted(directory.glob("*.lp")):
        try:
            data = segment.read_bytes()
        except FileNotFoundError:
            continue
        *complete, _partial = data.split(b"\n")  # what follows the last newline is a line still being written
        points.extend(parse_line(line.decode("utf-8")) for line in complete if line)
    return points


def assert_all_stored(db: V1Transport, taken: list[Point], what: str) -> None:
    assert taken, f"{what}: the spool held nothing, so the test proves nothing"
    problems = missing_or_different(db, taken)
    assert not problems, f"{what}: {len(problems)} of {len(taken)} spooled points not stored as taken: {problems[:5]}"


def assert_no_poll_lost(db: V1Transport, accounts: Iterable[tuple[str, str]], max_gap_s: float) -> None:
    """Every account's source_health points follow each other at most `max_gap_s` apart."""
    series = db.query("SELECT success FROM source_health GROUP BY group_id, target", epoch="ns")
    times = {(s.tags["group_id"], s.tags["target"].rsplit("/", 1)[-1]): [row[0] for row in s.rows] for s in series}
    for account in accounts:
        polls = times.get(account, [])
        assert polls, f"no source_health for {account}"
        gaps = [(b - a) / 1e9 for a, b in pairwise(polls)]
        assert max(gaps, default=0.0) <= max_gap_s, f"{account}: a {max(gaps):.1f} s gap in the polls"


def start_daemon(cli: CliRunner, config: DemoConfig) -> Running:
    """`minewatch run`, returned once it serves metrics: its SIGTERM handler is installed by then (a SIGTERM
    during Python's start-up would end it with the default action, which is not what these tests are about)."""
    daemon = cli.start("run", "-c", str(config.main))

    def serving() -> bool | None:
        assert daemon.is_running(), f"the daemon exited during start-up:\n{daemon.err}"
        return True if "Prometheus exporter on" in daemon.err else None

    wait_for("the daemon to serve metrics", serving, timeout_s=30)
    return daemon


def wait_for_polls(daemon: Running, db: V1Transport, config: DemoConfig, at_least: int) -> None:
    def enough() -> bool | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        counts = health_counts(db)
        return True if all(counts.get(account, 0) >= at_least for account in config.accounts) else None

    wait_for(f"{at_least} polls of every account in InfluxDB", enough, timeout_s=60)


def wait_until_drained(daemon: Running, db: V1Transport, taken: list[Point]) -> None:
    """Wait until InfluxDB holds every point in `taken` (the spool's segment files come and go meanwhile)."""

    def drained() -> bool | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        return True if missing_or_different(db, taken) == [] else None

    wait_for("the spooled points to reach InfluxDB", drained, timeout_s=60, interval_s=0.5)


def test_influxd_killed_during_collection_loses_no_point(
    cli: CliRunner, make_config: MakeConfig, own_influxd: InfluxdServer
) -> None:
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    config = make_config(influx_url=own_influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
    daemon = start_daemon(cli, config)
    wait_for_polls(daemon, db, config, at_least=2)

    own_influxd.kill()
    time.sleep(3 * INTERVAL_S)  # three rounds of polls with nowhere to write
    assert daemon.is_running(), f"the daemon died with InfluxDB:\n{daemon.err}"
    taken = spooled_points(spool_dir(config))
    own_influxd.start()
    wait_until_drained(daemon, db, taken)

    daemon.terminate()
    run = daemon.wait(timeout_s=20)
    assert run.code == 0, str(run)
    assert "Traceback" not in run.err
    assert_all_stored(db, taken, "after InfluxDB came back")
    outage_polls = [p for p in taken if p.measurement == "source_health"]
    assert len(outage_polls) >= 2 * len(config.accounts), "the polls during the outage were not spooled"
    assert_no_poll_lost(db, config.accounts, max_gap_s=2 * INTERVAL_S + 1)


def test_the_collector_killed_at_random_moments_loses_nothing_the_spool_took(
    cli: CliRunner, make_config: MakeConfig, own_influxd: InfluxdServer
) -> None:
    seed = random.randrange(1_000_000)
    print(f"seed {seed}")  # pytest shows it when the test fails
    rng = random.Random(seed)
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    config = make_config(influx_url=own_influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
    daemon = start_daemon(cli, config)
    wait_for_polls(daemon, db, config, at_least=1)
    taken: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}

    # Twice: the collector is killed mid-flight, once while InfluxDB is down (the spool holds rounds) and once
    # while it is up (a batch may be in flight), each at a random moment within a poll interval.
    downtimes: list[float] = []
    for influx_down in (True, False):
        if influx_down:
            own_influxd.kill()
        time.sleep(INTERVAL_S + rng.uniform(0.0, INTERVAL_S))
        daemon.process.kill()
        killed_at = time.monotonic()
        daemon.wait(timeout_s=10)
        for point in spooled_points(spool_dir(config)):
            taken[(point.measurement, tuple(sorted(point.tags.items())), point.timestamp)] = point
        if influx_down:
            own_influxd.start()
        # Samples have one-second resolution: a restarted collector polling a source within the same second as
        # the killed one writes the same sample again (newer values overwrite), which is not a lost point.
        time.sleep(max(0.0, killed_at + 1.1 - time.monotonic()))
        daemon = start_daemon(cli, config)
        downtimes.append(daemon.started - killed_at + START_UP_S)

    wait_until_drained(daemon, db, list(taken.values()))
    daemon.terminate()
    run = daemon.wait(timeout_s=20)
    assert run.code == 0, f"seed {seed}: {run}"
    assert_all_stored(db, list(taken.values()), f"seed {seed}")
    # Polls go on across the kills: a gap may span one restart's downtime (and its start-up) on top of the usual
    # interval; the two downtimes are allowed together, so one slow start-up does not fail the test.
    assert_no_poll_lost(db, config.accounts, max_gap_s=2 * INTERVAL_S + 1 + sum(downtimes))


def test_sigterm_while_influxdb_is_down_exits_within_the_shutdown_bound_and_keeps_the_spool(
    cli: CliRunner, make_config: MakeConfig, own_influxd: InfluxdServer
) -> None:
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    config = make_config(influx_url=own_influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
    daemon = start_daemon(cli, config)
    wait_for_polls(daemon, db, config, at_least=1)
    own_influxd.kill()
    time.sleep(INTERVAL_S + 1)

    daemon.terminate()
    run = daemon.wait(timeout_s=15)  # shutdown_flush_s (5 s) plus the scheduler's own stop
    assert run.code == 0, str(run)
    assert "stay in the spool" in run.err, run.err[-2000:]
    left = spooled_points(spool_dir(config))
    assert left, "SIGTERM emptied the spool without InfluxDB: the lines were thrown away"

    own_influxd.start()
    daemon = start_daemon(cli, config)
    wait_until_drained(daemon, db, left)
    daemon.terminate()
    assert daemon.wait(timeout_s=20).code == 0
    assert_all_stored(db, left, "after the restart")


def firing_ids(receiver: StubHTTPServer) -> list[str]:
    """The `id` of every firing alert the webhook received, in order, repeats included."""
    with receiver._lock:
        bodies = [request.body for request in receiver.requests]
    return [alert["id"] for body in bodies for alert in json.loads(body)["alerts"] if alert["state"] == "firing"]


def recorded_webhook_firings(state_file: Path) -> set[str]:
    """The ids of the firings the alert state file records as taken by the webhook."""
    try:
        open_alerts, resolved = read_state(state_file)
    except (FileNotFoundError, StateFileError):
        return set()
    return {
        change_id(AlertEvent(record.finding, "firing", record.since, record.started_at))
        for record in [*open_alerts, *resolved]
        if "webhook" in record.delivered_to
    }


def test_a_collector_killed_and_restarted_sends_no_notification_twice(
    cli: CliRunner, simulator: SimulatorServer, own_influxd: InfluxdServer, tmp_path: Path
) -> None:
    """Alertmanager (the primary) is down the whole time, so no alert is ever `notified` and every round re-sends
    every firing alert as the change it is: only the per-notifier records keep the webhook from getting them again,
    before the kill and after the restart."""
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    with (
        StubHTTPServer([StubResponse(status=503, body="down")]) as alertmanager,
        StubHTTPServer([StubResponse(status=200, body="ok")]) as receiver,
    ):
        config = copy_demo_config(
            tmp_path / "config",
            simulator_url=simulator.url,
            influx_url=own_influxd.url,
            database=db.database,
            schedule=FAST_SCHEDULE,
            alerting={
                "alertmanager_url": f'"{alertmanager.url}"',
                "webhook_url": f'"{receiver.url}/hook"',
                "resend_s": "1",  # AlertingConfig's minimum: every round re-sends
            },
            extra=RAISED_BUDGETS,
            network=False,
        )
        state_file = config.main.parent / "state" / "alerts.json"
        daemon = start_daemon(cli, config)

        def posted_and_recorded() -> bool | None:
            assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
            posted = set(firing_ids(receiver))
            return True if posted and posted <= recorded_webhook_firings(state_file) else None

        wait_for("firings at the webhook, recorded in the state file", posted_and_recorded, timeout_s=90)
        daemon.process.kill()
        daemon.wait(timeout_s=10)
        before = firing_ids(receiver)
        recorded = recorded_webhook_firings(state_file)
        am_posts = len(alertmanager.requests)

        daemon = start_daemon(cli, config)
        wait_for(
            "the restarted collector's rounds to re-send to Alertmanager",
            lambda: True if len(alertmanager.requests) >= am_posts + 2 else None,
            timeout_s=60,
        )
        daemon.terminate()
        assert daemon.wait(timeout_s=20).code == 0
        after = firing_ids(receiver)

    assert recorded, "the webhook took no firing, so the test proves nothing"
    assert len(before) == len(set(before)), f"a firing was posted twice before the kill: {before}"
    twice = sorted(i for i in recorded if after.count(i) > 1)
    assert not twice, f"firings the webhook had taken were posted again after the restart: {twice}"
    # A firing posted in the instant between the webhook's answer and the save may go again (its `id` lets the
    # receiver drop it); nothing more than that.
    assert all(after.count(i) <= 2 for i in set(after) - recorded), after
    assert set(before) <= set(after)
