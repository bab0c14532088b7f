"""Ground truth: window averages are true averages, earnings follow the formula, history never rewrites itself."""

from __future__ import annotations

import re

import pytest
from sim_support import FIXED_T

from simulator import truth
from simulator.scenario import Account, Scenario, Worker, day_start_ts


def _numeric_mean(scenario: Scenario, account: Account, worker: Worker, start: int, end: int, steps: int) -> float:
    """Midpoint-rule mean of the instantaneous curve over [start, end]: an independent check of the closed form.

    The sum stops at the worker's outage so the step at the discontinuity adds no discretisation error.
    """
    online_end = end if worker.offline_from is None else max(start, min(end, worker.offline_from))
    width = (online_end - start) / steps
    total = sum(truth.worker_rate(scenario, account, worker, start + (i + 0.5) * width) for i in range(steps))
    return total * width / (end - start)


@pytest.mark.parametrize("window", [truth.WINDOW_5M_S, truth.WINDOW_1H_S, truth.WINDOW_24H_S])
def test_window_averages_are_true_averages(features_scenario: Scenario, window: int) -> None:
    account = features_scenario.account("emcd", "emcduser")
    for worker in account.workers:
        # e2 went offline at 10:00 on 2026-11-25: FIXED_T's 24 h window straddles the outage.
        for t in (FIXED_T, FIXED_T - 7_777, FIXED_T - 86_400 * 3):
            expected = _numeric_mean(features_scenario, account, worker, t - window, t, steps=2_000)
            got = truth.worker_hashrate(features_scenario, account, worker, t, window)
            assert got == pytest.approx(expected, rel=1e-5, abs=1.0)


def test_curve_stays_near_nominal(demo_scenario: Scenario) -> None:
    for account in demo_scenario.accounts:
        for worker in account.workers:
            if worker.offline_from is not None:
                continue
            nominal = worker.nominal_ths * 1e12
            for t in range(FIXED_T - 86_400, FIXED_T, 3_571):
                rate = truth.worker_rate(demo_scenario, account, worker, t)
                assert nominal * (1 - 2 * worker.variation) <= rate <= nominal * (1 + 2 * worker.variation)


def test_account_windows_sum_the_workers(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "uralhash")
    windows = truth.account_windows(demo_scenario, account, FIXED_T)
    workers = truth.workers(demo_scenario, account, FIXED_T)
    assert windows.h5m == pytest.approx(sum(w.hashrate.h5m for w in workers))
    assert windows.h1h == pytest.approx(sum(w.hashrate.h1h for w in workers))
    assert windows.h24h == pytest.approx(sum(w.hashrate.h24h for w in workers))
    assert 6 * 250e12 < windows.h5m < 6 * 290e12


def test_worker_states(features_scenario: Scenario) -> None:
    account = features_scenario.account("emcd", "emcduser")
    e1, e2, e3 = truth.workers(features_scenario, account, FIXED_T)
    assert (e1.online, e1.dead) == (True, False)
    assert FIXED_T - 20 < e1.last_share_ts <= FIXED_T
    # e2: off since 10:00 today, so inactive (not dead), 5 min / 60 min averages 0, 24 h average not.
    assert (e2.online, e2.dead) == (False, False)
    assert e2.hashrate.h5m == 0
    assert e2.hashrate.h1h == 0
    assert e2.hashrate.h24h > 0
    assert e2.last_share_ts < day_start_ts(truth.utc_day(FIXED_T)) + 10 * 3600
    assert e2.reject_pct == 0.0
    # e3: online = false, off since history_start: dead, nothing at all.
    assert (e3.online, e3.dead) == (False, True)
    assert e3.hashrate == truth.Windows(0.0, 0.0, 0.0)
    assert e3.last_share_ts < features_scenario.history_start_ts
    braiins = features_scenario.account("braiins", "thsuser")
    _, a2, _ = truth.workers(features_scenario, braiins, FIXED_T)
    assert a2.disabled
    assert a2.online
    assert a2.hashrate.h5m > 0


def test_last_share_moves_forward_and_stays_close(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "baikal")
    worker = account.workers[0]
    previous = 0
    for t in range(FIXED_T, FIXED_T + 200):
        share = truth.last_share_ts(demo_scenario, account, worker, t)
        assert previous <= share <= t
        assert t - share < 20
        previous = share


def test_daily_earnings_formula(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "baikal_x")
    earnings = truth.daily_earnings(demo_scenario, account, FIXED_T)
    assert len(earnings) == 46  # 2026-10-10 .. 2026-11-24
    assert earnings[0].day == demo_scenario.history_start
    assert earnings[-1].credited_at == day_start_ts(truth.utc_day(FIXED_T))
    for earning in earnings[::15]:
        start = earning.day_start_ts
        mean = sum(
            _numeric_mean(demo_scenario, account, w, start, start + truth.DAY_S, steps=2_000) for w in account.workers
        )
        assert earning.mean_hashrate_hs == pytest.approx(mean, rel=1e-6)
        assert earning.amount_sats == round(45_000 * earning.mean_hashrate_hs / 1e15)
    # About 1 PH/s at 45,000 sats per PH/s-day.
    assert all(44_000 < e.amount_sats < 46_500 for e in earnings)


def test_day_boundaries(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    start = demo_scenario.history_start_ts
    assert truth.daily_earnings(demo_scenario, account, start - 1) == ()
    assert truth.daily_earnings(demo_scenario, account, start + truth.DAY_S - 1) == ()
    assert len(truth.daily_earnings(demo_scenario, account, start + truth.DAY_S)) == 1
    assert truth.today_accrual_sats(demo_scenario, account, start - 10) == 0


def test_offline_worker_earns_nothing(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    off = next(w for w in account.workers if w.offline_from is not None)
    assert truth.worker_hashrate(demo_scenario, account, off, FIXED_T, truth.DAY_S * 30) == 0.0


def test_payouts_balance_and_rotation(demo_scenario: Scenario) -> None:
    for account in demo_scenario.accounts:
        payouts = truth.payout_schedule(demo_scenario, account, FIXED_T)
        earned = truth.earned_sats(demo_scenario, account, FIXED_T)
        balance = truth.balance_sats(demo_scenario, account, FIXED_T)
        assert 5 <= len(payouts) <= 6
        assert balance == earned - sum(p.amount_sats for p in payouts)
        assert balance >= 0
        assert [p.index for p in payouts] == list(range(len(payouts)))
        for p in payouts:
            assert p.address == account.payout_addresses[p.index % len(account.payout_addresses)]
            assert re.fullmatch(r"[0-9a-f]{64}", p.txid)
            assert p.amount_sats >= max(account.min_payout_sats, 1)
            assert p.requested_at <= FIXED_T
            if p.sent_at is None:
                assert p.status == "queued"
                assert p.requested_at + account.payout_delay_hours * 3600 > FIXED_T
            else:
                assert p.status == "confirmed"
                assert p.sent_at == p.requested_at + round(account.payout_delay_hours * 3600) <= FIXED_T
        assert len({p.txid for p in payouts}) == len(payouts)
        sent = sum(p.amount_sats for p in payouts if p.sent_at is not None)
        assert truth.total_paid_sats(demo_scenario, account, FIXED_T) == sent


def test_demo_has_queued_payouts_on_both_pools(demo_scenario: Scenario) -> None:
    queued = {
        a.pool
        for a in demo_scenario.accounts
        if any(p.status == "queued" for p in truth.payout_schedule(demo_scenario, a, FIXED_T))
    }
    assert queued == {"braiins", "emcd"}


def test_baikal_pays_to_both_addresses(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "baikal")
    addresses = {p.address for p in truth.payout_schedule(demo_scenario, account, FIXED_T)}
    assert addresses == set(account.payout_addresses)


def test_payout_sweeps_credits_before_request(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("emcd", "tverpower")
    earnings = truth.daily_earnings(demo_scenario, account, FIXED_T)
    paid_before = 0
    for p in truth.payout_schedule(demo_scenario, account, FIXED_T):
        credited = sum(e.amount_sats for e in earnings if e.credited_at <= p.requested_at)
        assert p.amount_sats == credited - paid_before
        paid_before += p.amount_sats


def test_min_payout_rolls_the_balance_over(features_scenario: Scenario) -> None:
    account = features_scenario.account("emcd", "emcduser")
    # ~0.33 PH/s → ~14,800 sats a day: 5 days are enough (74k ≥ 60k) but not 4.
    payouts = truth.payout_schedule(features_scenario, account, FIXED_T)
    assert payouts
    assert all(p.amount_sats >= 60_000 for p in payouts)


def test_history_is_stable_over_time(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "sibgaz_main")
    early = FIXED_T - 9 * truth.DAY_S
    later_earnings = truth.daily_earnings(demo_scenario, account, FIXED_T)
    early_earnings = truth.daily_earnings(demo_scenario, account, early)
    assert later_earnings[: len(early_earnings)] == early_earnings
    early_payouts = truth.payout_schedule(demo_scenario, account, early)
    later_payouts = truth.payout_schedule(demo_scenario, account, FIXED_T)
    for before, after in zip(early_payouts, later_payouts, strict=False):
        assert (before.amount_sats, before.address, before.txid, before.requested_at) == (
            after.amount_sats,
            after.address,
            after.txid,
            after.requested_at,
        )
        if before.sent_at is not None:
            assert before == after


def test_daily_credits_do_not_repeat_weekly(demo_scenario: Scenario) -> None:
    account = demo_scenario.account("braiins", "uralhash")
    amounts = [e.amount_sats for e in truth.daily_earnings(demo_scenario, account, FIXED_T)]
    assert amounts[:7] != amounts[7:14]
    payouts = [p.amount_sats for p in truth.payout_schedule(demo_scenario, account, FIXED_T)]
    assert len(set(payouts)) > 1


def test_seeded_values_depend_on_the_seed_only(demo_scenario: Scenario) -> None:
    assert truth.seeded_fraction(1, "a", "b") == truth.seeded_fraction(1, "a", "b")
    assert truth.seeded_fraction(1, "a", "b") != truth.seeded_fraction(2, "a", "b")
    assert truth.seeded_fraction(1, "ab", "") != truth.seeded_fraction(1, "a", "b")
    account = demo_scenario.accounts[0]
    assert truth.workers(demo_scenario, account, FIXED_T) == truth.workers(demo_scenario, account, FIXED_T)
