"""Every panel query runs against a real InfluxDB seeded by the simulator and the real collector, and has rows.

The demo scenario's `baikal` group mines on a pool its permit does not list, pays out to an address it never
declared and sits in Buryatia's seasonal ban (the fake clock is in late November), so violations,
non-permitted pools, undeclared payouts and the blackout all have data; one of its Braiins accounts is then
rate-limited, so rate-limit pressure and stale sources have rows too.

One query may be empty in that world, for the reason `EMPTY_IN_DEMO` gives (it must still run without error);
a test of its own writes the points it reads through the collector's line builder and checks it has rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dashboard_json import load_generated, targets
from demo_config import ROOT, copy_demo_config
from grafana_macros import DATASOURCE_MIN_INTERVAL_MS, TimeRange, interpolate, panel_interval_ms

from collector.adapters.registry import source_registry
from collector.app import DatabaseSetup, build_collector, build_compliance, build_influx_sink, collect_once
from collector.config import load_config
from collector.errors import StorageError
from collector.models import HashrateSample, PoolAccountSnapshot
from collector.redact import Redactor
from collector.sinks.influx import V1Transport
from collector.sinks.points import PoolAccountTags, pool_account_lines
from simulator.miners.fleet import MinerFleet
from simulator.scenario import Scenario, load_scenario
from simulator.server import SimulatorServer

LOG = logging.getLogger("test")
DEMO_SCENARIO = ROOT / "simulator" / "scenarios" / "demo.toml"
START = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp())  # inside the RU-BU seasonal ban
STEP_S = 60
HEALTHY_ROUNDS = 3
THROTTLED_ROUNDS = 2  # the first is refused with 429, the second skipped while backing off
DETAIL_GROUP = "baikal"
DEMO_GROUPS = {"baikal", "sibgaz", "uralhash", "tverpower"}
# Queries the demo world cannot give rows, each with why. Only F2Pool and ViaBTC keep a hashrate history, the demo
# has no account on either, and the history is read only after a gap in polling.
HISTORY_TARGET = "minewatch-group-detail / Hashrate by pool / B"
EMPTY_IN_DEMO = {HISTORY_TARGET: "pool_hashrate_history: the demo has no F2Pool or ViaBTC account"}
FAST_BUDGETS = "".join(
    f"\n[rate_budgets.{kind}]\nrequests_per_minute = 60000\nburst = 1000\n" for kind in ("braiins", "emcd")
)  # the pools' real budgets are per wall-clock second; the fake clock polls faster than that


class FakeClock:
    """The simulator, the miners and the collector all read this clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def throttled_account(scenario: Scenario) -> str:
    return next(a.username for a in scenario.accounts if a.group_id == DETAIL_GROUP and a.pool == "braiins")


def seed(tmp_path: Path, db: V1Transport, influx_url: str) -> int:
    """Poll, write group facts and judge every group for a few rounds; return the last round's time."""
    scenario = load_scenario(DEMO_SCENARIO)
    clock = FakeClock(START)
    with SimulatorServer(scenario, clock=clock) as pools, MinerFleet(scenario, clock=clock) as fleet:
        config_path = copy_demo_config(
            tmp_path,
            simulator_url=pools.url,
            influx_url=influx_url,
            database=db.database,
            miners=fleet.addresses(),
            extra=FAST_BUDGETS,
        ).main
        config = load_config(config_path, source_registry(), redactor=Redactor())
        sink = build_influx_sink(config.main.influxdb, Redactor(), LOG)
        assert DatabaseSetup(sink, LOG)()
        collector = build_collector(config, source_registry(), sink, redactor=Redactor(), log=LOG, clock=clock)
        engine = build_compliance(collector, redactor=Redactor(), log=LOG, grace_s=0.0)
        for round_index in range(HEALTHY_ROUNDS + THROTTLED_ROUNDS):
            if round_index == HEALTHY_ROUNDS:
                pools.set_fault("braiins", throttled_account(scenario), "rate_limit")
            clock.t = START + round_index * STEP_S
            collect_once(collector)  # writes each group's permit and site facts too
            for group in collector.groups:
                engine.evaluate(group, clock.t)
        engine.delivery.flush()
        assert sink.flush(timeout_s=30), sink.last_error
        sink.close()
        return int(clock.t)


def run(db: V1Transport, query: str) -> tuple[int, str | None]:
    """(rows returned, error text or None)."""
    try:
        return sum(len(series.rows) for series in db.query(query, epoch="ms")), None
    except StorageError as exc:
        return 0, str(exc)


def test_every_panel_query_and_variable_query_runs_and_returns_rows(tmp_path: Path, influx_db: V1Transport) -> None:
    last = seed(tmp_path, influx_db, influx_db.url)
    history_start = load_scenario(DEMO_SCENARIO).history_start_ts
    time_range = TimeRange(history_start * 1000, (last + STEP_S) * 1000)
    boards = load_generated()

    problems: list[str] = []
    values: dict[str, Sequence[str]] = {}
    for board in boards.values():
        for variable in board["templating"]["list"]:
            series = influx_db.query(variable["query"])
            found = sorted(str(row[1]) for s in series for row in s.rows)  # SHOW TAG VALUES: key, value
            assert set(found) >= DEMO_GROUPS, f"{board['uid']} ${variable['name']}: {found}"
            values[board["uid"]] = found if variable["includeAll"] else [DETAIL_GROUP]  # All, or one group

    ran = 0
    for target in targets(boards):
        interval = panel_interval_ms(time_range, target.max_data_points, DATASOURCE_MIN_INTERVAL_MS)
        query = interpolate(
            target.data["query"],
            time_range=time_range,
            interval_ms=interval,
            variables={"group_id": values[target.dashboard]},
        )
        assert not re.search(r"\$(\w|\{)", query), f"{target.where}: macro or variable left in {query}"
        rows, error = run(influx_db, query)
        ran += 1
        if error is not None:
            problems.append(f"{target.where}: {error}\n    {query}")
        elif rows == 0 and target.where not in EMPTY_IN_DEMO:
            problems.append(f"{target.where}: no rows\n    {query}")
    assert ran >= 25
    assert problems == [], "\n".join(problems)


def test_the_pool_history_overlay_has_rows_where_a_pool_kept_a_history(influx_db: V1Transport) -> None:
    """`EMPTY_IN_DEMO`'s query, against the points an F2Pool backfill writes (built by the collector's own code)."""
    (history_target,) = [t for t in targets(load_generated()) if t.where == HISTORY_TARGET]
    bins = tuple(HashrateSample(START - k * 600, 1.0e15 + k, 600) for k in range(1, 7))
    snapshot = PoolAccountSnapshot(observed_at=START, coin="BTC", hashrate_history=bins)
    tags = PoolAccountTags(group_id=DETAIL_GROUP, pool="f2pool", account="f2pool-acct", coin="BTC")
    influx_db.write(list(pool_account_lines(snapshot, tags, lambda address, at: True)))
    time_range = TimeRange((START - 3600) * 1000, START * 1000)
    interval = panel_interval_ms(time_range, history_target.max_data_points, DATASOURCE_MIN_INTERVAL_MS)
    query = interpolate(
        history_target.data["query"],
        time_range=time_range,
        interval_ms=interval,
        variables={"group_id": [DETAIL_GROUP]},
    )

    rows, error = run(influx_db, query)

    assert error is None, error
    assert rows >= len(bins)
