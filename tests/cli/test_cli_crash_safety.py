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

from collector.sinks.influx import V1Transport
from simulator.local_servers import InfluxdServer
from simulator.server import SimulatorServer

pytestmark = pytest.mark.integration

INTERVAL_S = float(FAST_SCHEDULE["interval_s"])


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
    """Every complete line in the spool's segment files (what the collector has taken and not yet delivered)."""
    points = []
    for segment in sorted(directory.glob("*.lp")):
        text = segment.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        points.extend(parse_line(line) for line in complete.splitlines())
    return points


def spool_is_empty(directory: Path) -> bool:
    return not spooled_points(directory)


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
    return cli.start("run", "-c", str(config.main))


def wait_for_polls(daemon: Running, db: V1Transport, config: DemoConfig, at_least: int) -> None:
    def enough() -> bool | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        counts = health_counts(db)
        return True if all(counts.get(account, 0) >= at_least for account in config.accounts) else None

    wait_for(f"{at_least} polls of every account in InfluxDB", enough, timeout_s=60)


def wait_until_drained(daemon: Running, config: DemoConfig) -> None:
    def drained() -> bool | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        return True if spool_is_empty(spool_dir(config)) else None

    wait_for("the spool to drain", drained, timeout_s=60)


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
    wait_until_drained(daemon, config)

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
    rng = random.Random(seed)
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    config = make_config(influx_url=own_influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
    daemon = start_daemon(cli, config)
    wait_for_polls(daemon, db, config, at_least=1)
    taken: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}

    # Twice: the collector is killed mid-flight, once while InfluxDB is down (the spool holds rounds) and once
    # while it is up (a batch may be in flight), each at a random moment within a poll interval.
    for influx_down in (True, False):
        if influx_down:
            own_influxd.kill()
        time.sleep(INTERVAL_S + rng.uniform(0.0, INTERVAL_S))
        daemon.process.kill()
        daemon.wait(timeout_s=10)
        for point in spooled_points(spool_dir(config)):
            taken[(point.measurement, tuple(sorted(point.tags.items())), point.timestamp)] = point
        if influx_down:
            own_influxd.start()
        daemon = start_daemon(cli, config)

    wait_until_drained(daemon, config)
    daemon.terminate()
    run = daemon.wait(timeout_s=20)
    assert run.code == 0, f"seed {seed}: {run}"
    assert_all_stored(db, list(taken.values()), f"seed {seed}")


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
    wait_until_drained(daemon, config)
    daemon.terminate()
    assert daemon.wait(timeout_s=20).code == 0
    assert_all_stored(db, left, "after the restart")


def firing_posts(receiver: StubHTTPServer) -> list[tuple[str, str]]:
    """(alert id, startsAt) of every firing alert the webhook received, repeats included."""
    posts = []
    for request in receiver.requests:
        for alert in json.loads(request.body)["alerts"]:
            if alert["state"] == "firing":
                posts.append((alert["id"], alert["startsAt"]))
    return posts


def test_a_collector_killed_and_restarted_sends_no_notification_twice(
    cli: CliRunner, simulator: SimulatorServer, own_influxd: InfluxdServer, tmp_path: Path
) -> None:
    db = V1Transport(own_influxd.url, unique_name("t_crash"), timeout_s=5.0)
    with StubHTTPServer([StubResponse(status=200, body="ok")]) as receiver:
        config = copy_demo_config(
            tmp_path / "config",
            simulator_url=simulator.url,
            influx_url=own_influxd.url,
            database=db.database,
            schedule=FAST_SCHEDULE,
            alerting={"webhook_url": f'"{receiver.url}/hook"'},
            extra=RAISED_BUDGETS,
            network=False,
        )
        daemon = start_daemon(cli, config)
        wait_for("a firing alert at the webhook", lambda: firing_posts(receiver) or None, timeout_s=90)
        time.sleep(1.0)  # let the rest of that round's alerts arrive too
        daemon.process.kill()
        daemon.wait(timeout_s=10)
        before = firing_posts(receiver)

        daemon = start_daemon(cli, config)
        time.sleep(4 * INTERVAL_S)  # rounds judge again and re-evaluate every open alert
        daemon.terminate()
        assert daemon.wait(timeout_s=20).code == 0
        after = firing_posts(receiver)

    assert len(before) == len(set(before)), f"a firing was posted twice before the kill: {before}"
    assert len(after) == len(set(after)), f"a firing was posted again after the restart: {sorted(after)}"
    assert set(before) <= set(after)
