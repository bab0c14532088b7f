"""End to end for AntPool: the simulator (signed requests, mixed units, paged histories), the real
collector through a config written by `write_config`, a real influxd, InfluxQL.

Both clocks are fixed at the same instant, so every stored value is held to the simulator's ground truth:
satoshis exactly, hashrates within the rounding of each wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_config import ROOT
from scenario_support import rows

from collector.adapters.registry import source_registry
from collector.app import DatabaseSetup, build_collector, build_influx_sink, collect_once
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.influx import V1Transport, quote_literal
from simulator import truth
from simulator.configgen import write_config
from simulator.local_servers import InfluxdServer
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

NOW = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp())
LOG = logging.getLogger("test")
TEN_MINUTES = 600


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "simulator" / "scenarios" / "antpool.toml")


@pytest.fixture
def simulator(scenario: Scenario) -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        yield server


def _where(account: Account) -> str:
    # write_config names each account `<pool>-<username>`.
    return (
        f'"group_id" = {quote_literal(account.group_id)} AND "account" = {quote_literal("antpool-" + account.username)}'
    )


def _poll(
    tmp_path: Path, scenario: Scenario, server: SimulatorServer, influxd: InfluxdServer, db: V1Transport, polls: int
) -> None:
    path = write_config(tmp_path, scenario, simulator_url=server.url, influx_url=influxd.url, database=db.database)
    config = load_config(path, source_registry(), redactor=Redactor())
    redactor = Redactor()
    sink = build_influx_sink(config.main.influxdb, redactor, LOG)
    assert DatabaseSetup(sink, LOG)()
    collector = build_collector(config, source_registry(), sink, redactor=redactor, log=LOG, clock=lambda: NOW)
    for _ in range(polls):  # one collector: its nonces keep increasing, later polls read one history page
        results = collect_once(collector)
        assert [f"{r.key}: {r.error_kind}: {r.message}" for r in results if not r.success] == []
    assert sink.flush(timeout_s=30), sink.last_error
    sink.close()


def test_every_antpool_account_matches_the_ground_truth(
    tmp_path: Path, scenario: Scenario, simulator: SimulatorServer, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    _poll(tmp_path, scenario, simulator, influxd, influx_db, polls=1)
    for account in scenario.accounts:
        label, where = account.username, _where(account)
        stored = rows(influx_db, f'SELECT * FROM "pool_account" WHERE {where}')
        assert len(stored) == 1, label
        # accountOverview.htm sends whole H/s.
        assert stored[0]["hashrate_hs"] == pytest.approx(
            truth.account_hashrate(scenario, account, NOW, TEN_MINUTES), abs=1
        )
        assert stored[0]["hashrate_1h_hs"] == pytest.approx(truth.account_hashrate(scenario, account, NOW, 3600), abs=1)
        assert stored[0]["hashrate_24h_hs"] == pytest.approx(
            truth.account_hashrate(scenario, account, NOW, 86_400), abs=1
        )
        assert stored[0]["balance_sats"] == truth.balance_sats(scenario, account, NOW), label
        states = truth.workers(scenario, account, NOW)
        assert stored[0]["workers_active"] == sum(1 for w in states if w.online), label
        assert stored[0]["workers_inactive"] == sum(1 for w in states if not w.online), label

        workers = {str(w["worker"]): w for w in rows(influx_db, f'SELECT * FROM "pool_worker" WHERE {where}')}
        assert set(workers) == {w.name for w in states}, label
        for worker, state in zip(account.workers, states, strict=True):
            row = workers[worker.name]
            assert row["online"] == int(state.online), (label, worker.name)
            assert row["last_share_ts"] == state.last_share_ts, (label, worker.name)
            # userWorkerList.htm sends two decimals in an auto-scaled unit ("306.23 TH/s").
            rate = truth.worker_hashrate(scenario, account, worker, NOW, TEN_MINUTES)
            assert row["hashrate_hs"] == pytest.approx(rate, rel=5e-3, abs=5e-3), (label, worker.name)
            assert row["hashrate_24h_hs"] == pytest.approx(state.hashrate.h24h, rel=5e-3, abs=5e-3)

        # The first poll pages back through the whole history (55 days: two pages of 50).
        credits = truth.daily_earnings(scenario, account, NOW)
        earned = rows(
            influx_db, f'SELECT sum("amount_sats") AS s, count("amount_sats") AS n FROM "pool_earning" WHERE {where}'
        )
        assert (earned[0]["s"], earned[0]["n"]) == (sum(e.amount_sats for e in credits), len(credits)), label
        first_credit = rows(influx_db, f'SELECT first("amount_sats") FROM "pool_earning" WHERE {where}')[0]
        assert int(str(first_credit["time"])) // 10**9 == credits[0].day_start_ts, label  # 00:00 UTC of the day

        sent = [p for p in truth.payout_schedule(scenario, account, NOW) if p.sent_at is not None]
        payouts = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {where}')
        assert sorted((r["amount_sats"], r["txid"], r["address"]) for r in payouts) == sorted(
            (p.amount_sats, p.txid, p.address) for p in sent
        ), label
        assert sorted(int(str(r["time"])) // 10**9 for r in payouts) == sorted(p.sent_at or 0 for p in sent), label


def test_a_queued_payout_is_left_out_and_later_polls_overwrite(
    tmp_path: Path, scenario: Scenario, simulator: SimulatorServer, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    _poll(tmp_path, scenario, simulator, influxd, influx_db, polls=3)
    sub = scenario.account("antpool", "antfarm_sub1")
    schedule = truth.payout_schedule(scenario, sub, NOW)
    assert schedule[-1].status == "queued"
    count = 'SELECT count("{}") AS n FROM "{}" WHERE ' + _where(sub)
    assert rows(influx_db, count.format("amount_sats", "pool_payout"))[0]["n"] == len(schedule) - 1
    assert rows(influx_db, count.format("amount_sats", "pool_earning"))[0]["n"] == len(
        truth.daily_earnings(scenario, sub, NOW)
    )
    assert rows(influx_db, count.format("hashrate_hs", "pool_account"))[0]["n"] == 1  # same second: overwritten
