"""`minewatch run`: the daemon polls on schedule into a real influxd, stops cleanly on SIGTERM, and shards groups."""

from __future__ import annotations

import re
import socket

import pytest
import requests
from cli_support import DEMO_SECRETS, CliRunner, MakeConfig, NewDatabase, Running, wait_for

from collector.errors import StorageError
from collector.sinks.influx import V1Transport
from simulator.local_servers import InfluxdServer

FAST_SCHEDULE = {"interval_s": "5", "timeout_s": "3", "misfire_grace_s": "5"}
# A poll is 4 requests: at a 5 s interval the default budgets (Braiins 12/min per token, EMCD 120/min per host shared
# by three demo accounts) are too small, so the test config raises both, as a negotiated higher limit would.
RAISED_BUDGETS = """
[rate_budgets.braiins]
requests_per_minute = 600
burst = 20

[rate_budgets.emcd]
requests_per_minute = 600
burst = 40
"""


def health_counts(db: V1Transport) -> dict[tuple[str, str], int]:
    """source_health points per (group_id, account) so far; empty until the daemon has created the database."""
    try:
        series = db.query("SELECT count(success) FROM source_health GROUP BY group_id, target")
    except StorageError:
        return {}
    return {(s.tags["group_id"], s.tags["target"].rsplit("/", 1)[-1]): s.records()[0]["count"] for s in series}


def groups_in(db: V1Transport, measurement: str) -> set[str]:
    """The group_id tag values of `measurement`; empty until the daemon has created the database."""
    try:
        series = db.query(f"SHOW TAG VALUES FROM {measurement} WITH KEY = group_id")
    except StorageError:
        return set()
    return {value for s in series for _, value in s.rows}


def test_run_polls_every_account_on_schedule_and_exits_0_on_sigterm(
    cli: CliRunner, make_config: MakeConfig, influxd: InfluxdServer, new_database: NewDatabase
) -> None:
    db = new_database()
    config = make_config(influx_url=influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
    daemon = cli.start("run", "-c", str(config.main))

    def two_polls_of_every_account() -> dict[tuple[str, str], int] | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        counts = health_counts(db)
        return counts if all(counts.get(account, 0) >= 2 for account in config.accounts) else None

    counts = wait_for("two source_health points per account", two_polls_of_every_account, timeout_s=40)
    scrape = requests.get(metrics_url(daemon), timeout=5).text
    daemon.terminate()
    run = daemon.wait(timeout_s=25)

    up = {
        line.split('target="', 1)[1].split('"', 1)[0]
        for line in scrape.splitlines()
        if line.startswith("minewatch_source_up{") and 'kind="cgminer"' not in line and line.endswith(" 1.0")
    }
    assert {account for _, account in config.accounts} <= up, "the exporter does not show every account up"
    assert set(counts) == config.accounts
    assert db.query("SELECT success FROM source_health WHERE success = 0") == [], "a scheduled poll failed"
    assert run.code == 0, str(run)
    assert "Traceback" not in run.err
    for secret in DEMO_SECRETS:
        assert secret not in run.err
        assert secret not in scrape


def metrics_url(daemon: Running) -> str:
    """The exporter's address, from the daemon's log line `Prometheus exporter on http://...`."""

    def logged() -> str | None:
        assert daemon.is_running(), f"the daemon exited early:\n{daemon.err}"
        found = re.search(r"Prometheus exporter on (http://\S+)", daemon.err)
        return found.group(1) if found else None

    return wait_for("the exporter's address in the log", logged, timeout_s=20)


def test_run_exits_1_naming_the_address_when_the_exporter_port_is_taken(
    cli: CliRunner, make_config: MakeConfig, influxd: InfluxdServer, new_database: NewDatabase
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(influx_url=influxd.url, database=new_database().database, exporter={"port": str(port)})
        run = cli.run("run", "-c", str(config.main), timeout_s=30)

    assert run.code == 1, str(run)
    assert f"cannot serve metrics on 127.0.0.1 port {port}" in run.err
    assert "Traceback" not in run.err


def test_shards_poll_disjoint_groups_that_cover_all(
    cli: CliRunner, make_config: MakeConfig, influxd: InfluxdServer, new_database: NewDatabase
) -> None:
    shard_dbs = [new_database(), new_database()]
    daemons = []
    for index, db in enumerate(shard_dbs):
        config = make_config(influx_url=influxd.url, database=db.database, schedule=FAST_SCHEDULE, extra=RAISED_BUDGETS)
        daemons.append(cli.start("run", "--shard", f"{index}/2", "-c", str(config.main)))
    all_groups = set(config.groups)

    def covered(measurement: str) -> set[str]:
        return set().union(*(groups_in(db, measurement) for db in shard_dbs))

    def every_group_written() -> bool | None:
        for daemon in daemons:
            assert daemon.is_running(), f"a shard exited early:\n{daemon.err}"
        return covered("source_health") == covered("permit") == all_groups or None

    wait_for(
        "every group's health and permit points in one of the shards' databases", every_group_written, timeout_s=30
    )
    for daemon in daemons:
        daemon.terminate()
    for daemon in daemons:
        assert daemon.wait(timeout_s=25).code == 0, daemon.err
    shard0, shard1 = (groups_in(db, "source_health") for db in shard_dbs)

    assert not shard0 & shard1, f"both shards polled {shard0 & shard1}"
    assert shard0 | shard1 == all_groups
    for db, polled in zip(shard_dbs, (shard0, shard1), strict=True):
        assert groups_in(db, "permit") == polled, "a shard wrote permit facts for groups it does not poll"


@pytest.mark.parametrize("shard", ["2/2", "-1/2", "1/0", "a/b", "1"])
def test_run_rejects_a_bad_shard_with_exit_2(cli: CliRunner, make_config: MakeConfig, shard: str) -> None:
    run = cli.run("run", "--shard", shard, "-c", str(make_config().main), timeout_s=20)

    assert run.code == 2, str(run)
    assert "--shard" in run.err
    assert "Traceback" not in run.err
