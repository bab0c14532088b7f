"""`minewatch collect --once` without `--print`: it writes to a real influxd, and fails clearly when it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_support import CliRunner, Running, databases, unique_name
from demo_config import DemoConfig, copy_demo_config

from collector.errors import StorageError
from collector.sinks.influx import V1Transport, quote_ident
from simulator.local_servers import InfluxdServer, free_port
from simulator.scenario import Scenario
from simulator.server import SimulatorServer


@dataclass(frozen=True)
class CollectRuns:
    """Two `collect --once` runs started together: one into a fresh database, one at a closed InfluxDB port."""

    config: DemoConfig
    database: V1Transport
    reachable: Running
    unreachable: Running


@pytest.fixture(scope="module")
def runs(influxd: InfluxdServer, scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectRuns]:
    # Started at once, so a collector that waits out its sink's retries costs the suite that wait only once.
    tmp: Path = tmp_path_factory.mktemp("collect-influx")
    database = V1Transport(influxd.url, unique_name("t_cli_collect"), timeout_s=5.0)
    with SimulatorServer(scenario, port=0) as simulator, CliRunner(tmp) as cli:
        config = copy_demo_config(
            tmp / "reachable", simulator_url=simulator.url, influx_url=influxd.url, database=database.database
        )
        closed = copy_demo_config(
            tmp / "closed",
            simulator_url=simulator.url,
            influx_url=f"http://127.0.0.1:{free_port()}",
            database=unique_name("t_cli_never"),
        )
        assert database.database not in databases(database)
        yield CollectRuns(
            config=config,
            database=database,
            reachable=cli.start("collect", "--once", "-c", str(config.main)),
            unreachable=cli.start("collect", "--once", "-c", str(closed.main)),
        )
    try:
        database.query(f"DROP DATABASE {quote_ident(database.database)}", epoch=None)
    except StorageError as exc:  # pragma: no cover - only when influxd is broken
        print(f"could not drop {database.database}: {exc}")
    database.close()


def test_collect_once_writes_every_group_into_a_database_it_creates(runs: CollectRuns) -> None:
    run = runs.reachable.wait(timeout_s=90)

    assert run.code == 0, str(run)
    assert runs.database.database in databases(runs.database), "the collector did not create its database\n" + str(run)
    series = runs.database.query("SELECT count(hashrate_hs) FROM pool_account GROUP BY group_id")
    counts = {s.tags["group_id"]: s.records()[0]["count"] for s in series}
    assert counts == {group.id: len(group.accounts) for group in runs.config.groups.values()}
    assert "Traceback" not in run.err


def test_collect_once_with_influxdb_unreachable_exits_1_naming_it(runs: CollectRuns) -> None:
    # The demo config keeps the default [influxdb] timeout_s (10 s); a refused connection fails at once anyway.
    run = runs.unreachable.wait(timeout_s=90)

    assert run.code == 1, str(run)
    assert "InfluxDB" in run.err
    assert "Traceback" not in run.err
    assert run.seconds < 60, str(run)
