"""End to end: the demo scenario served by the simulator, the real collector, a real influxd, InfluxQL.

Both clocks are fixed at the same instant, so every stored value can be held to the simulator's ground
truth: satoshis exactly, hashrates within the rounding of the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from demo_config import ROOT, copy_demo_config
from scenario_support import FAULT_KINDS, poll_once, problems, rows

from collector.adapters.registry import source_registry
from collector.config import AppConfig, load_config
from collector.redact import Redactor
from collector.sinks.influx import V1Transport, quote_literal
from collector.units import hashrate_factor
from simulator import truth
from simulator.configgen import write_config
from simulator.local_servers import InfluxdServer
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

NOW = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "simulator" / "scenarios" / "demo.toml")


@pytest.fixture
def simulator(scenario: Scenario) -> Iterator[SimulatorServer]:
    server = SimulatorServer(scenario, clock=lambda: NOW)
    server.start()
    yield server
    server.stop()


def _poll_once(config: AppConfig, now: int) -> list[str]:
    return problems(poll_once(config, now))


def _where(account: Account) -> str:
    return f'"group_id" = {quote_literal(account.group_id)} AND "account" = {quote_literal(account.username)}'


def _hashrate_tolerance(account: Account) -> float:
    """Braiins rounds to 3 decimals in its unit; EMCD sends whole H/s."""
    return 1e-3 * hashrate_factor(account.hash_rate_unit) if account.pool == "braiins" else 1.0


@pytest.fixture
def demo_config(
    tmp_path: Path, simulator: SimulatorServer, influxd: InfluxdServer, influx_db: V1Transport
) -> AppConfig:
    path = copy_demo_config(
        tmp_path, simulator_url=simulator.url, influx_url=influxd.url, database=influx_db.database
    ).main
    return load_config(path, source_registry(), redactor=Redactor())


def test_every_demo_account_matches_the_ground_truth(
    demo_config: AppConfig, influx_db: V1Transport, scenario: Scenario
) -> None:
    assert _poll_once(demo_config, NOW) == []

    for account in scenario.accounts:
        where = _where(account)
        label = f"{account.pool}/{account.username}"
        stored = rows(influx_db, f'SELECT * FROM "pool_account" WHERE {where}')
        assert len(stored) == 1, label
        windows = truth.account_windows(scenario, account, NOW)
        tolerance = _hashrate_tolerance(account)
        assert stored[0]["hashrate_hs"] == pytest.approx(windows.h5m, abs=tolerance), label
        assert stored[0]["hashrate_1h_hs"] == pytest.approx(windows.h1h, abs=tolerance), label
        assert stored[0]["hashrate_24h_hs"] == pytest.approx(windows.h24h, abs=tolerance), label
        assert stored[0]["balance_sats"] == truth.balance_sats(scenario, account, NOW), label

        workers = {str(w["worker"]): w for w in rows(influx_db, f'SELECT * FROM "pool_worker" WHERE {where}')}
        expected_workers = truth.workers(scenario, account, NOW)
        assert set(workers) == {w.name for w in expected_workers}, label
        for worker in expected_workers:
            assert workers[worker.name]["online"] == int(worker.online and not worker.disabled), (label, worker.name)
            assert workers[worker.name]["last_share_ts"] == worker.last_share_ts, (label, worker.name)

        # Braiins is asked for `history_days` of credits on a first poll; EMCD returns its whole history.
        first_day = (
            (datetime.fromtimestamp(NOW, UTC) - timedelta(days=40)).date() if account.pool == "braiins" else None
        )
        credits = [e for e in truth.daily_earnings(scenario, account, NOW) if first_day is None or e.day >= first_day]
        earned = rows(
            influx_db, f'SELECT sum("amount_sats") AS s, count("amount_sats") AS n FROM "pool_earning" WHERE {where}'
        )
        assert (earned[0]["s"], earned[0]["n"]) == (sum(e.amount_sats for e in credits), len(credits)), label


def test_payouts_carry_their_address_and_whether_the_permit_declares_it(
    demo_config: AppConfig, influx_db: V1Transport, scenario: Scenario
) -> None:
    assert _poll_once(demo_config, NOW) == []
    baikal = scenario.account("braiins", "baikal")
    declared = set(demo_config.group("baikal").spec.permits[0].payout_addresses)

    stored = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {_where(baikal)}')
    window_start = NOW - 40 * 86_400
    expected = [p for p in truth.payout_schedule(scenario, baikal, NOW) if p.requested_at >= window_start - 86_400]

    by_amount = {row["amount_sats"]: row for row in stored}
    assert sorted(by_amount) == sorted(p.amount_sats for p in expected)
    for payout in expected:
        row = by_amount[payout.amount_sats]
        assert row["address"] == payout.address
        assert row["declared"] == int(payout.address in declared)
        assert row.get("txid") == (payout.txid if payout.status == "confirmed" else None)
    assert {row["declared"] for row in stored} == {0, 1}, "the demo pays to a declared and an undeclared address"

    settings = rows(influx_db, 'SELECT * FROM "pool_settings" WHERE "group_id" = \'baikal\'')
    assert [(s["payout_address"], s["declared"]) for s in settings] == [
        (scenario.account("emcd", "baikal_x").payout_address, 0)
    ]


def test_permit_and_site_facts_follow_the_calendar(demo_config: AppConfig, influx_db: V1Transport) -> None:
    assert _poll_once(demo_config, NOW) == []

    sites = {row["group_id"]: row for row in rows(influx_db, 'SELECT * FROM "site" GROUP BY "group_id"')}
    permits = {row["group_id"]: row for row in rows(influx_db, 'SELECT * FROM "permit" GROUP BY "group_id"')}

    assert (sites["baikal"]["blackout"], sites["baikal"]["banned"]) == (1, 0)  # Buryatia, 15 Nov - 15 Mar
    assert (sites["tverpower"]["blackout"], sites["tverpower"]["banned"]) == (0, 0)
    assert sites["sibgaz"]["capacity_w"] == 1_500_000.0
    assert (permits["uralhash"]["permit_version"], permits["uralhash"]["valid"]) == ("2026-08", 1)
    assert permits["baikal"]["max_hashrate_hs"] == pytest.approx(0.5e15)


def test_a_second_poll_overwrites_instead_of_duplicating(demo_config: AppConfig, influx_db: V1Transport) -> None:
    assert _poll_once(demo_config, NOW) == []
    count = 'SELECT count("amount_sats") AS n FROM "{}" GROUP BY "account"'
    before = {m: rows(influx_db, count.format(m)) for m in ("pool_earning", "pool_payout")}

    assert _poll_once(demo_config, NOW) == []

    assert {m: rows(influx_db, count.format(m)) for m in ("pool_earning", "pool_payout")} == before


def test_each_faulty_account_is_counted_by_kind_and_never_written_as_zero(
    tmp_path: Path, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    scenario = load_scenario(ROOT / "simulator" / "scenarios" / "faults.toml")
    with SimulatorServer(scenario, clock=lambda: NOW, hang_seconds=3) as server:
        path = write_config(
            tmp_path,
            scenario,
            simulator_url=server.url,
            influx_url=influxd.url,
            database=influx_db.database,
            schedule="interval_s = 10\ntimeout_s = 1\n"
            + "".join(
                f"\n[rate_budgets.{pool}]\nrequests_per_minute = 6000\nburst = 100\n"
                for pool in ("braiins", "emcd", "f2pool", "viabtc", "antpool")
            ),
        )
        failures = _poll_once(load_config(path, source_registry(), redactor=Redactor()), NOW)

    messages = [failure.split(": ", 2)[2] for failure in failures]  # key: kind: message
    assert not [a.secret for a in scenario.accounts if any(a.secret in m for m in messages)], "a secret leaked"
    health = {
        str(row["target"]): (row["success"], row["stale"], row.get("error_kind"))
        for row in rows(influx_db, 'SELECT * FROM "source_health"')
    }
    written = {str(row["account"]) for row in rows(influx_db, 'SELECT * FROM "pool_account" GROUP BY "account"')}
    for account in scenario.accounts:
        account_id = f"{account.pool}-{account.username}"
        fault = account.fault_at(NOW)
        if fault in ("wrong_types", "missing_fields"):
            continue  # a poll may succeed with what it could read: tests/scenario/test_faults_against_truth.py
        if fault is None:
            assert health[account_id] == (1, 0, None)
            assert account_id in written
        else:
            kind = FAULT_KINDS[fault]
            assert health[account_id] == (0, 1, kind), account_id
            assert f"faults/{account.pool}/{account_id}: {kind}" in [f.rsplit(": ", 1)[0] for f in failures] or any(
                f.startswith(f"faults/{account.pool}/{account_id}: {kind}: ") for f in failures
            )
            assert account_id not in written, f"{account_id} failed but has a pool_account point"


def test_a_payout_seen_queued_and_then_sent_is_one_point(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    """Polled while a payout waits and again once it has left: each pool still shows it exactly once."""
    now = [NOW]
    accounts = [scenario.account("braiins", "sibgaz_main"), scenario.account("emcd", "tverpower")]
    waiting = [truth.payout_schedule(scenario, account, NOW)[-1] for account in accounts]
    assert [p.status for p in waiting] == ["queued", "queued"], "the demo keeps a payout waiting at NOW"
    later = max(p.requested_at for p in waiting) + 170 * 3600  # both delays are under 170 h
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        path = copy_demo_config(
            tmp_path, simulator_url=server.url, influx_url=influxd.url, database=influx_db.database
        ).main
        config = load_config(path, source_registry(), redactor=Redactor())
        assert _poll_once(config, NOW) == []
        now[0] = later
        assert _poll_once(config, later) == []

    for account, payout in zip(accounts, waiting, strict=True):
        sent = next(p for p in truth.payout_schedule(scenario, account, later) if p.index == payout.index)
        assert sent.status == "confirmed"
        stored = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {_where(account)}')
        txids = [row.get("txid") for row in stored]
        queued_now = [p for p in truth.payout_schedule(scenario, account, later) if p.status == "queued"]
        assert txids.count(sent.txid) == 1, f"{account.pool}/{account.username}"
        # Neither pool writes a payout before it has left the account.
        assert None not in txids, f"{account.pool}/{account.username}: {len(queued_now)} queued now"
        assert len(txids) == len(set(txids))
