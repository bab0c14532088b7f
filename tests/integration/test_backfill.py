"""Backfill after outages, end to end (issue 7, part 5): the simulator, the real collector, a real influxd.

One collector process polls five simulated pool accounts every 10 minutes on a fake clock shared with the
simulator. F2Pool's and ViaBTC's APIs fail for three hours while the collector keeps polling (their pools keep
mining), then the collector itself is down for five days (no polls at all), then it polls again:

- `pool_hashrate_history` holds every 10-minute bin the pools kept over the pool outage and over the last
  `backfill_hours` (24) of the collector's outage, and nothing between: the bins beyond `backfill_hours` stay
  missing, never 0;
- the credits and payouts of the outage days are present for every pool (each reaches back past its short
  recent window, to its last successful read);
- polling again, and restarting and backfilling again, changes no history bin, credit or payout: neither
  their count nor their values (every point lands on its own pool timestamp, and a bin is written only once
  complete, so a rewrite carries the same figure).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.adapters.registry import source_registry
from collector.app import DatabaseSetup, build_collector, build_influx_sink, collect_once
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.influx import V1Transport, quote_literal
from simulator import truth
from simulator.configgen import write_config
from simulator.local_servers import InfluxdServer
from simulator.scenario import Pool, Scenario, parse_scenario
from simulator.server import SimulatorServer

pytestmark = pytest.mark.integration

LOG = logging.getLogger("test_backfill")
HOUR, DAY, STEP = 3_600, 86_400, 600
T0 = int(datetime(2026, 11, 10, tzinfo=UTC).timestamp())  # the collector starts
POOL_DOWN = (T0 + 2 * HOUR, T0 + 5 * HOUR)  # F2Pool's and ViaBTC's APIs fail; the collector keeps polling
COLLECTOR_DOWN = (T0 + 6 * HOUR, T0 + 6 * HOUR + 5 * DAY)  # no poll at all
BACKFILL_S = 24 * HOUR  # backfill_hours' default
POOLS: tuple[Pool, ...] = ("braiins", "emcd", "f2pool", "viabtc", "antpool")
HISTORY_POOLS: tuple[Pool, ...] = ("f2pool", "viabtc")
ADDRESS = "bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"
SECRETS: dict[str, tuple[str, str | None]] = {
    "braiins": ("bf-braiins-token", None),
    "emcd": ("5f1c2d3e-bbbb-4bbb-8ccc-0123456789ab", None),
    "f2pool": ("bf-f2pool-token", None),
    "viabtc": ("0123456789abcdef0123456789abcdef", "cd" * 32),
    "antpool": ("bf-antpool-key", "bf-antpool-secret"),
}


def _scenario() -> Scenario:
    accounts: list[dict[str, Any]] = []
    for pool in POOLS:
        secret, api_secret = SECRETS[pool]
        account: dict[str, Any] = {
            "group_id": "backfill",
            "pool": pool,
            "username": f"bf_{pool}",
            "secret": secret,
            "payout_address": ADDRESS,
            "payout_addresses": [ADDRESS],
            "payout_every_days": 1,
            "payout_delay_hours": 1,
            "workers": [{"name": "w1", "nominal_ths": 200.0}, {"name": "w2", "nominal_ths": 120.0}],
        }
        if api_secret is not None:
            account["api_secret"] = api_secret
        if pool in HISTORY_POOLS:
            account |= {"fault": "server_error", "fault_from": POOL_DOWN[0], "fault_until": POOL_DOWN[1]}
        accounts.append(account)
    return parse_scenario(
        {"seed": 11, "history_start": date(2026, 10, 1), "sats_per_phs_day": 45000, "accounts": accounts}
    )


def _where(pool: str) -> str:
    return f'"group_id" = {quote_literal("backfill")} AND "account" = {quote_literal(f"{pool}-bf_{pool}")}'


def _field(measurement: str) -> str:
    return "hashrate_hs" if measurement == "pool_hashrate_history" else "amount_sats"


def _times(db: V1Transport, measurement: str, pool: str) -> list[int]:
    return [t for t, _ in _points(db, measurement, pool)]


def _points(db: V1Transport, measurement: str, pool: str) -> list[tuple[int, Any]]:
    """(time, value) of every point of the account in `measurement`, oldest first."""
    field = _field(measurement)
    series = db.query(f'SELECT "{field}" FROM "{measurement}" WHERE {_where(pool)}', epoch="s")
    return [(int(r["time"]), r[field]) for s in series for r in s.records()]


Stored = dict[tuple[str, str], list[tuple[int, Any]]]


def _stored(db: V1Transport) -> Stored:
    return {
        (measurement, pool): _points(db, measurement, pool)
        for measurement in ("pool_hashrate_history", "pool_earning", "pool_payout")
        for pool in POOLS
    }


def _bins(first: int, last: int) -> set[int]:
    """Bin starts from `first` to `last`, both included."""
    return set(range(first, last + 1, STEP))


def _run(tmp_path: Path, influxd: InfluxdServer, influx_db: V1Transport, scenario: Scenario) -> tuple[Stored, Stored]:
    """Run the timeline; return the points (time, value) after the backfill, and after polling again and a
    restart."""
    now = [T0]
    budgets = "".join(f"\n[rate_budgets.{p}]\nrequests_per_minute = 60000\nburst = 1000\n" for p in POOLS)
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        path = write_config(
            tmp_path,
            scenario,
            simulator_url=server.url,
            influx_url=influxd.url,
            database=influx_db.database,
            schedule=f"interval_s = {STEP}\ntimeout_s = 10\n{budgets}\n[compliance]\nstale_after_s = {4 * STEP}\n",
        )
        redactor = Redactor()
        config = load_config(path, source_registry(), redactor=redactor)
        sink = build_influx_sink(config.main.influxdb, redactor, LOG)
        assert DatabaseSetup(sink, LOG)()
        collector = build_collector(config, source_registry(), sink, redactor=redactor, log=LOG, clock=lambda: now[0])

        def poll(at: int) -> dict[str, bool]:
            now[0] = at
            return {r.key.split("/")[1]: r.success and r.error_kind is None for r in collect_once(collector)}

        for at in range(T0, COLLECTOR_DOWN[0] + 1, STEP):  # every 10 minutes until the collector goes down
            ok = poll(at)
            pool_down = POOL_DOWN[0] <= at < POOL_DOWN[1]
            assert ok == {p: not (pool_down and p in HISTORY_POOLS) for p in POOLS}, at
        back = COLLECTOR_DOWN[1]
        assert all(poll(back).values())
        assert sink.flush(timeout_s=30), sink.last_error
        before = _stored(influx_db)

        assert all(poll(back).values())  # polled again: the credits and payouts are replayed onto themselves
        # A restart a second later: its first poll backfills the same bins and the whole history again. (Not in
        # the same millisecond: AntPool wants every request's nonce above the last, and the nonce is the clock.)
        collector = build_collector(config, source_registry(), sink, redactor=redactor, log=LOG, clock=lambda: now[0])
        assert all(poll(back + 1).values())
        assert sink.flush(timeout_s=30), sink.last_error
        after = _stored(influx_db)
        sink.close()
    return before, after


def test_outages_are_filled_from_the_pools_history_and_the_rest_stays_missing(
    tmp_path: Path, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    scenario = _scenario()
    back = COLLECTOR_DOWN[1]

    before, after = _run(tmp_path, influxd, influx_db, scenario)

    assert {key: len(points) for key, points in after.items()} == {key: len(points) for key, points in before.items()}
    assert after == before  # the same values too: a replay or a second backfill rewrites each point unchanged

    _check_history(influx_db, scenario, back)
    _check_credits_and_payouts(influx_db, scenario, back)


def _check_history(influx_db: V1Transport, scenario: Scenario, back: int) -> None:
    last_before_pool_down = POOL_DOWN[0] - STEP
    for pool in HISTORY_POOLS:
        stored = _times(influx_db, "pool_hashrate_history", pool)
        assert len(stored) == len(set(stored))
        expected = (
            _bins(T0 - BACKFILL_S, T0 - STEP)  # the first poll after start-up: backfill_hours before it
            | _bins(last_before_pool_down - STEP, POOL_DOWN[1] - STEP)  # the pool outage, every bin of it
            | _bins(back - BACKFILL_S, back - STEP)  # the collector outage: only backfill_hours of it
        )
        assert set(stored) == expected, pool
        # Between the collector going down and backfill_hours before it came back: missing, not zero.
        assert [t for t in stored if COLLECTOR_DOWN[0] < t < back - BACKFILL_S] == []
        rows = influx_db.query(
            f'SELECT "hashrate_hs", "window_s" FROM "pool_hashrate_history" WHERE {_where(pool)} '
            f"AND time >= {POOL_DOWN[0]}s AND time < {POOL_DOWN[1]}s",
            epoch="s",
        )
        records = [r for s in rows for r in s.records()]
        assert len(records) == (POOL_DOWN[1] - POOL_DOWN[0]) // STEP  # the pool kept mining while its API failed
        account = scenario.account(pool, f"bf_{pool}")
        for record in records:
            at = int(record["time"])
            exact = truth.account_hashes(scenario, account, at, at + STEP) / STEP
            assert record["hashrate_hs"] == pytest.approx(exact, rel=1e-6), (pool, at)
            assert record["window_s"] == STEP
    for pool in ("braiins", "emcd", "antpool"):  # no hashrate history to fill from
        assert _times(influx_db, "pool_hashrate_history", pool) == []


def _check_credits_and_payouts(influx_db: V1Transport, scenario: Scenario, back: int) -> None:
    for pool in POOLS:
        account = scenario.account(pool, f"bf_{pool}")
        credited = {datetime.fromtimestamp(t, UTC).date() for t in _times(influx_db, "pool_earning", pool)}
        outage_days = {
            e.day
            for e in truth.daily_earnings(scenario, account, back)
            if e.day_start_ts >= COLLECTOR_DOWN[0] - COLLECTOR_DOWN[0] % DAY
        }
        assert len(outage_days) >= 5, pool
        assert outage_days <= credited, (pool, sorted(outage_days - credited))
        paid = [
            p for p in truth.payout_schedule(scenario, account, back) if p.sent_at and p.sent_at > COLLECTOR_DOWN[0]
        ]
        assert len(paid) >= 4, pool
        txids = influx_db.query(f'SELECT "txid" FROM "pool_payout" WHERE {_where(pool)}')
        stored_txids = {r["txid"] for s in txids for r in s.records()}
        assert {p.txid for p in paid} <= stored_txids, pool
