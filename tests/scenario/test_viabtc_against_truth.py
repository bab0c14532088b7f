"""End to end for ViaBTC: the simulator's open API (signed requests), the real collector, a real influxd, InfluxQL.

Both clocks are fixed at the same instant, so every stored value is held to the simulator's ground truth:
satoshis exactly, hashrates within the wire's rounding (whole H/s).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
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
from simulator.pools.viabtc import WINDOW_10M_S
from simulator.scenario import Account, Scenario, load_scenario
from simulator.server import SimulatorServer

NOW = 1_795_608_000  # 2026-11-25 12:00 UTC: irk_main's newest payout is still waiting to be broadcast
HISTORY_DAYS = 40  # ViabtcSettings.history_days default: how far back the first poll asks
LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "simulator" / "scenarios" / "viabtc.toml")


def _config(
    tmp: Path,
    scenario: Scenario,
    server: SimulatorServer,
    influxd: InfluxdServer,
    db: V1Transport,
    *,
    signed: bool = True,
) -> AppConfig:
    path = write_config(tmp, scenario, simulator_url=server.url, influx_url=influxd.url, database=db.database)
    if not signed:  # drop the secret keys: requests go out unsigned
        for group in (tmp / "groups").glob("*.toml"):
            group.write_text(re.sub(r"(?m)^secret_key_file = .*\n", "", group.read_text()))
    return load_config(path, source_registry(), redactor=Redactor())


def _poll_once(config: AppConfig, now: int) -> list[str]:
    return problems(poll_once(config, now), partial=True)


def _where(account: Account) -> str:
    return (
        f'"group_id" = {quote_literal(account.group_id)} AND "account" = {quote_literal("viabtc-" + account.username)}'
    )


def _first_day() -> datetime:
    return datetime.fromtimestamp(NOW, UTC) - timedelta(days=HISTORY_DAYS)


def test_every_viabtc_account_matches_the_ground_truth(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        assert _poll_once(_config(tmp_path, scenario, server, influxd, influx_db), NOW) == []

    first_day = _first_day().date()
    for account in scenario.accounts:
        where, label = _where(account), account.username
        stored = rows(influx_db, f'SELECT * FROM "pool_account" WHERE {where}')
        assert len(stored) == 1, label
        row = stored[0]
        assert row["hashrate_hs"] == pytest.approx(truth.account_hashrate(scenario, account, NOW, WINDOW_10M_S), abs=1)
        assert row["hashrate_1h_hs"] == pytest.approx(truth.account_hashrate(scenario, account, NOW, 3600), abs=1)
        assert row["hashrate_24h_hs"] == pytest.approx(truth.account_hashrate(scenario, account, NOW, 86_400), abs=1)
        states = truth.workers(scenario, account, NOW)
        assert (row["workers_active"], row["workers_inactive"]) == (2, 1), label
        assert row["balance_sats"] == truth.balance_sats(scenario, account, NOW), label

        workers = {str(w["worker"]): w for w in rows(influx_db, f'SELECT * FROM "pool_worker" WHERE {where}')}
        assert set(workers) == {w.name for w in states}, label
        for state, spec in zip(states, account.workers, strict=True):
            stored_worker = workers[state.name]
            assert stored_worker["online"] == int(state.online), (label, state.name)
            assert stored_worker["last_share_ts"] == state.last_share_ts, (label, state.name)
            ten_min = truth.worker_hashrate(scenario, account, spec, NOW, WINDOW_10M_S)
            assert stored_worker["hashrate_hs"] == pytest.approx(ten_min, abs=1), (label, state.name)
            assert stored_worker["hashrate_24h_hs"] == pytest.approx(state.hashrate.h24h, abs=1), (label, state.name)

        credits = [e for e in truth.daily_earnings(scenario, account, NOW) if e.day >= first_day]
        earned = rows(
            influx_db, f'SELECT sum("amount_sats") AS s, count("amount_sats") AS n FROM "pool_earning" WHERE {where}'
        )
        assert (earned[0]["s"], earned[0]["n"]) == (sum(e.amount_sats for e in credits), len(credits)), label
        seconds = {int(str(r["time"])) // 10**9 for r in rows(influx_db, f'SELECT * FROM "pool_earning" WHERE {where}')}
        assert seconds == {e.day_start_ts for e in credits}, "credits sit on their UTC day (asked with utc=true)"

        payouts = [  # only payments that have left: a queued one is written once it has a transaction
            p
            for p in truth.payout_schedule(scenario, account, NOW)
            if truth.utc_day(p.requested_at) >= first_day and p.status == "confirmed"
        ]
        stored_payouts = sorted(
            rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {where}'), key=lambda r: str(r["time"])
        )
        assert [r["amount_sats"] for r in stored_payouts] == [p.amount_sats for p in payouts], label
        for stored_payout, payout in zip(stored_payouts, payouts, strict=True):
            assert stored_payout["address"] == payout.address
            assert stored_payout.get("txid") == payout.txid
            assert stored_payout["declared"] == 0  # write_config's permits declare no address

    settings = rows(influx_db, 'SELECT * FROM "pool_settings" GROUP BY "account"')
    irk = scenario.account("viabtc", "irk_main")
    assert [(s["account"], s["payout_address"]) for s in settings] == [("viabtc-irk_main", irk.payout_address)]


def test_a_second_poll_overwrites_instead_of_duplicating(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    count = 'SELECT count("amount_sats") AS n FROM "{}" GROUP BY "account"'
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        config = _config(tmp_path, scenario, server, influxd, influx_db)
        assert _poll_once(config, NOW) == []
        before = {m: rows(influx_db, count.format(m)) for m in ("pool_earning", "pool_payout")}
        assert _poll_once(config, NOW) == []
    assert {m: rows(influx_db, count.format(m)) for m in ("pool_earning", "pool_payout")} == before


def test_a_payout_seen_waiting_and_then_sent_is_one_point(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport
) -> None:
    account = scenario.account("viabtc", "irk_main")
    waiting = truth.payout_schedule(scenario, account, NOW)[-1]
    assert waiting.status == "queued", "the scenario keeps a payout waiting at NOW"
    later = waiting.requested_at + round(account.payout_delay_hours * 3600) + 3600
    now = [NOW]
    with SimulatorServer(scenario, clock=lambda: now[0]) as server:
        config = _config(tmp_path, scenario, server, influxd, influx_db)
        assert _poll_once(config, NOW) == []
        now[0] = later
        assert _poll_once(config, later) == []

    stored = rows(influx_db, f'SELECT * FROM "pool_payout" WHERE {_where(account)}')
    this = [r for r in stored if r["amount_sats"] == waiting.amount_sats]
    assert len(this) == 1, "not written while waiting, written once sent: one point"
    assert this[0]["txid"] == waiting.txid
    assert int(str(this[0]["time"])) // 10**9 == waiting.requested_at, "at its create_time, which never changes"


def test_without_a_secret_key_the_signed_payment_history_is_a_partial_poll(
    tmp_path: Path,
    scenario: Scenario,
    influxd: InfluxdServer,
    influx_db: V1Transport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        problems = _poll_once(_config(tmp_path, scenario, server, influxd, influx_db, signed=False), NOW)
    assert len(problems) == 2
    assert all(": auth: " in p for p in problems), problems
    assert caplog.text.count("partial poll: payments: auth: wallet/payment/history") == 2
    assert "code 12002 (signature error)" in caplog.text
    assert rows(influx_db, 'SELECT count("amount_sats") FROM "pool_payout"') == []
    assert len(rows(influx_db, 'SELECT * FROM "pool_account"')) == 2  # everything else was written
    health = rows(influx_db, 'SELECT * FROM "source_health"')
    assert {(r["success"], r["error_kind"]) for r in health} == {(1, "auth")}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("auth", "auth"), ("rate_limit", "rate_limited"), ("malformed", "bad_response"), ("server_error", "server_error")],
)
def test_a_faulty_account_is_counted_by_kind_and_never_written_as_zero(
    tmp_path: Path, scenario: Scenario, influxd: InfluxdServer, influx_db: V1Transport, fault: str, kind: str
) -> None:
    with SimulatorServer(scenario, clock=lambda: NOW) as server:
        server.set_fault("viabtc", "brt_sub", fault)  # type: ignore[arg-type]
        failures = _poll_once(_config(tmp_path, scenario, server, influxd, influx_db), NOW)
    assert len(failures) == 1
    assert f": {kind}: " in failures[0]
    assert all(a.secret not in failures[0] and (a.api_secret or "-") not in failures[0] for a in scenario.accounts)
    written = {str(r["account"]) for r in rows(influx_db, 'SELECT * FROM "pool_account" GROUP BY "account"')}
    assert written == {"viabtc-irk_main"}
    health = {str(r["target"]): r for r in rows(influx_db, 'SELECT * FROM "source_health"')}
    assert (health["viabtc-brt_sub"]["success"], health["viabtc-brt_sub"]["error_kind"]) == (0, kind)
