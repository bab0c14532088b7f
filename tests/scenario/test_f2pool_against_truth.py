"""End to end for F2Pool: the simulator's F2Pool v2 API, the real collector, a real influxd, InfluxQL.

Both clocks are fixed at the same instant, so every stored value is held to the simulator's ground truth:
satoshis exactly, hashrates within the simulator's rounding (3 decimals of H/s).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from demo_config import ROOT
from scenario_support import poll_once, problems, rows

from collector.adapters.registry import source_registry
from collector.config import AppConfig, load_config
from collector.redact import Redactor
from collector.sinks.influx import V1Transport, quote_literal
from simulator import truth
from simulator.configgen import write_config
from simulator.local_servers import InfluxdServer
from simulator.pools.f2pool import WINDOW_CURRENT_S
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

NOW = 1_795_608_000  # 2026-11-25 12:00 UTC: shaft_a's newest payout is still waiting
HISTORY_DAYS = 40  # F2PoolSettings.history_days default: how far back the first poll asks for bills
LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "simulator" / "scenarios" / "f2pool.toml")


def _config(
    tmp: Path, scenario: Scenario, server: SimulatorServer, influxd: InfluxdServer, db: V1Transport
) -> AppConfig:
    path = write_config(tmp, scenario, simulator_url=server.url, influx_url=influxd.url, database=db.database)
    return load_config(path, source_registry(), redactor=Redactor())


def _poll_once(config: AppConfig, now: int) -> list[str]:
    return problems(poll_once(config, now), partial=True)


def _where(account: Account) -> str:
    return (
        f'"group_id" = {quote_literal(account.group_id)} AND "account" = {quote_literal("f2pool-" + account.username)}'
    )


def test_every_f2pool_account_matches_the_ground_truth(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        assert _poll_once(_config(tmp_path, scenario, server, influxd, influx_db), NOW) == []

    for account in scenario.accounts:
        where, label = _where(account), account.username
        stored = rows(influx_db, f'SELECT * FROM "pool_account" WHERE {where}')
        assert len(stored) == 1, label
        windows = truth.account_windows(scenario, account, NOW)
        current = truth.account_hashrate(scenario, account, NOW, WINDOW_CURRENT_S)
        assert stored[0]["hashrate_hs"] == pytest.approx(current, abs=1e-2), label
        assert stored[0]["hashrate_1h_hs"] == pytest.approx(windows.h1h, abs=1e-2), label
        assert stored[0]["hashrate_24h_hs"] == pytest.approx(windows.h24h, abs=1e-2), label
        assert stored[0]["balance_sats"] == truth.balance_sats(scenario, account, NOW), label
        states = truth.workers(scenario, account, NOW)
        assert stored[0]["workers_active"] == sum(w.online for w in states), label
        assert stored[0]["workers_inactive"] == sum(not w.online for w in states), label

        workers = {str(w["worker"]): w for w in rows(influx_db, f'SELECT * FROM "pool_worker" WHERE {where}')}
        assert set(workers) == {w.name for w in states}, label
        for spec, worker in zip(account.workers, states, strict=True):
            row = workers[worker.name]
            assert row["online"] == int(worker.online), (label, worker.name)
            assert row["last_share_ts"] == worker.last_share_ts, (label, worker.name)
            rate = truth.worker_hashrate(scenario, account, spec, NOW, WINDOW_CURRENT_S)
            assert row["hashrate_hs"] == pytest.approx(rate, abs=1e-2), (label, worker.name)
            assert row["hashrate_24h_hs"] == pytest.approx(worker.hashrate.h24h, abs=1e-2), (label, worker.name)

        # The first poll asks for the bills created in the last HISTORY_DAYS; a credit is created at 00:00 UTC
        # after its day and is dated by the day it was mined.
        start = NOW - HISTORY_DAYS * truth.DAY_S
        credits = [e for e in truth.daily_earnings(scenario, account, NOW) if e.credited_at >= start]
        earned = rows(influx_db, f'SELECT "amount_sats" FROM "pool_earning" WHERE {where}')
        expected_times = sorted(e.day_start_ts for e in credits)
        assert sorted(int(str(r["time"])) // 10**9 for r in earned) == expected_times, label
        assert sum(int(str(r["amount_sats"])) for r in earned) == sum(e.amount_sats for e in credits), label

        paid = [p for p in truth.payout_schedule(scenario, account, NOW) if p.requested_at >= start and p.sent_at]
        stored_payouts = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {where}')
        assert sorted((r["txid"], r["amount_sats"], r["address"]) for r in stored_payouts) == sorted(
            (p.txid, p.amount_sats, p.address) for p in paid
        ), label
        # A payout sits at its bill's `created_at` (the request), which never moves.
        assert {int(str(r["time"])) // 10**9 for r in stored_payouts} == {p.requested_at for p in paid}, label

        settings = rows(influx_db, f'SELECT * FROM "pool_settings" WHERE {where}')
        expected_address = [account.payout_address] if account.payout_address else []
        assert [s["payout_address"] for s in settings] == expected_address, label


def test_a_payout_seen_waiting_and_then_sent_is_one_point(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    account = scenario.account("f2pool", "shaft_a")
    waiting = truth.payout_schedule(scenario, account, NOW)[-1]
    assert waiting.status == "queued", "the scenario keeps a payout waiting at NOW"
    later = waiting.requested_at + round(account.payout_delay_hours * 3600) + 3600
    now = [NOW]
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        config = _config(tmp_path, scenario, server, influxd, influx_db)
        assert _poll_once(config, NOW) == []
        assert _poll_once(config, NOW) == []  # a replay overwrites
        now[0] = later
        assert _poll_once(config, later) == []

    stored = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {_where(account)}')
    txids = [row["txid"] for row in stored]
    assert txids.count(waiting.txid) == 1
    assert len(txids) == len(set(txids))
    sent = next(r for r in stored if r["txid"] == waiting.txid)
    assert sent["amount_sats"] == waiting.amount_sats
    assert int(str(sent["time"])) // 10**9 == waiting.requested_at
    earnings = rows(influx_db, f'SELECT count("amount_sats") AS n FROM "pool_earning" WHERE {_where(account)}')
    assert earnings[0]["n"] == len(
        {e.day_start_ts for e in truth.daily_earnings(scenario, account, later) if e.credited_at >= NOW - 40 * 86_400}
    )


@pytest.mark.parametrize(
    ("fault", "kind"), [("auth", "auth"), ("rate_limit", "rate_limited"), ("malformed", "bad_response")]
)
def test_a_faulty_account_is_counted_by_kind_and_never_written_as_zero(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport, fault: str, kind: str
) -> None:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        server.set_fault("f2pool", "shaft_b", fault)  # type: ignore[arg-type]
        failures = _poll_once(_config(tmp_path, scenario, server, influxd, influx_db), NOW)
    assert len(failures) == 1
    assert f": {kind}: " in failures[0]
    assert all(a.secret not in failures[0] for a in scenario.accounts)
    written = {str(r["account"]) for r in rows(influx_db, 'SELECT * FROM "pool_account" GROUP BY "account"')}
    assert written == {"f2pool-shaft_a"}
    health = {str(r["target"]): r for r in rows(influx_db, 'SELECT * FROM "source_health"')}
    assert (health["f2pool-shaft_b"]["success"], health["f2pool-shaft_b"]["error_kind"]) == (0, kind)
