"""Every column of the October 2026 report for group gamma (Europe/Berlin), against hand-computed values.

Tolerances: sats, counts and dates exactly; hashrate within 1e-9 relative (InfluxDB's mean of floats);
energy within 1e-6 kWh (rounding to 6 decimals); ratios within 1e-6 (rounded to 6 decimals).
"""

from __future__ import annotations

import pytest

from .conftest import Run
from .support import ADDR_UNDECLARED, ADDR_V1, ADDR_V2

pytestmark = pytest.mark.integration

POLLS_IN_MONTH = 745 * 6  # 31 days + the hour DST gives back on 25 Oct, every 10 minutes
ROUNDS = 3462  # the month minus the 7-day gap (1008 polls)


def test_one_row_per_site_and_a_group_level_row_for_the_account_without_a_site(run: Run) -> None:
    assert [(r.row_scope, r.site_id, r.coin) for r in run.result.rows] == [
        ("group", None, "BTC"),
        ("site", "ber-1", "BTC"),
    ]


def test_identity_period_and_filing_due(run: Run) -> None:
    row = run.row("ber-1")
    assert row.period == "2026-10"
    assert row.period_start_utc == "2026-09-30T22:00:00Z"  # local midnight, CEST
    assert row.period_end_utc == "2026-10-31T23:00:00Z"  # local midnight, CET after the DST change
    assert row.timezone == "Europe/Berlin"
    assert (row.group_id, row.legal_name, row.inn, row.register_record) == (
        "gamma",
        'OOO "Gamma Hash"',
        "7701000001",
        "7102500009077",
    )
    assert (row.register_status, row.region) == ("active", "DE-BE")
    assert row.permit_versions == ["v1", "v2"]
    assert row.filing_due == "2026-11-20"


def test_production_is_exact_and_bounded_by_local_midnights(run: Run) -> None:
    row = run.row("ber-1")
    daily = 24 * 1_000_000 + sum(range(1, 8)) + sum(range(15, 32))
    assert row.mined_sats == daily + 312_500_000 + 555 + 5000 + 7000  # the 444 and 999 credits are outside
    assert row.credit_count == 28
    assert (row.first_credit_date, row.last_credit_date) == ("2026-10-01", "2026-10-31")


def test_payouts_flag_undeclared_addresses(run: Run) -> None:
    row = run.row("ber-1")
    assert (row.payout_count, row.payout_total_sats, row.payout_undeclared_sats) == (3, 3_800_000, 300_000)
    assert row.payout_addresses_declared == sorted([ADDR_V1, ADDR_V2])
    assert row.payout_addresses_undeclared == [ADDR_UNDECLARED]


def test_pools_flagged_by_the_permit_in_force(run: Run) -> None:
    row = run.row("ber-1")
    assert (row.pools_permitted, row.pools_not_permitted) == (["braiins"], ["emcd"])


def test_hashrate_against_a_quota_that_changes_mid_month(run: Run) -> None:
    row = run.row("ber-1")
    mean = (1008 * 9e13 + 12 * 1.2e14 + 2436 * 1.5e14 + 6 * 2.5e14) / ROUNDS
    assert row.hashrate_avg_hs == pytest.approx(mean, rel=1e-9)
    assert row.hashrate_peak_hs == pytest.approx(2.5e14, rel=1e-12)
    assert row.hashrate_quotas_hs == [1e14, 2e14]
    assert row.hashrate_peak_quota_ratio == pytest.approx(1.25, abs=1e-6)
    # 1.5e14 after the change would exceed the old quota: only 12 + 6 rounds were above the quota in force
    assert row.hashrate_share_above_quota == pytest.approx(18 / ROUNDS, abs=1e-6)
    assert row.hashrate_coverage == pytest.approx(ROUNDS / POLLS_IN_MONTH, abs=1e-6)


def test_energy_sums_known_power_only_and_reports_coverage(run: Run) -> None:
    row = run.row("ber-1")
    d1 = 3461 * 3000 + 9000
    d2 = (ROUNDS - 144) * 3500  # d2 silent for a day: not interpolated
    assert row.energy_kwh == pytest.approx((d1 + d2) * 600 / 3600 / 1000, abs=1e-6)
    assert row.energy_kwh == pytest.approx(3667.5, abs=1e-6)
    assert row.energy_coverage == pytest.approx((ROUNDS + ROUNDS - 144) / (2 * POLLS_IN_MONTH), abs=1e-6)


def test_energy_in_blackout_windows_from_the_calendar_and_the_permit(run: Run) -> None:
    row = run.row("ber-1")
    # permit window 5 Oct 18-22 local (4 h) + seasonal ban from 28 Oct local midnight to the month's end (96 h)
    assert row.blackout_hours == pytest.approx(100.0)
    assert row.energy_blackout_kwh == pytest.approx((24 + 576) * 6500 * 600 / 3600 / 1000, abs=1e-6)


def test_peak_power_against_capacity_and_devices(run: Run) -> None:
    row = run.row("ber-1")
    assert row.power_peak_w == pytest.approx(12_500.0)
    assert row.capacity_w == pytest.approx(10_000.0)
    assert row.power_peak_capacity_ratio == pytest.approx(1.25, abs=1e-6)
    assert (row.devices_active, row.devices_registered) == (2, 3)


def test_violation_episodes_clipped_to_the_month(run: Run) -> None:
    row = run.row("ber-1")
    assert row.violation_episodes == {"hashrate_quota": 2, "payout_address": 1, "pool_whitelist": 1}
    payout_minutes = 9 * 1440 + 10 * 60 + 55  # 22 Oct 12:05Z to the month's end, 31 Oct 23:00Z
    assert row.violation_minutes == pytest.approx(
        {"hashrate_quota": 110 + 55, "payout_address": payout_minutes, "pool_whitelist": 1440}
    )
    assert row.violation_episodes_total == 4
    assert row.violation_minutes_total == pytest.approx(165 + payout_minutes + 1440)


def test_data_completeness_counts_failed_and_missing_polls(run: Run) -> None:
    row = run.row("ber-1")
    assert row.polls_expected == 4 * POLLS_IN_MONTH
    assert row.polls_succeeded == (ROUNDS - 10) + ROUNDS + ROUNDS + (ROUNDS - 144)
    assert row.data_completeness == pytest.approx(row.polls_succeeded / row.polls_expected, abs=1e-6)


def test_a_row_without_data_shows_missing_not_zero(run: Run) -> None:
    row = run.row(None)  # the account without a site was never polled successfully
    assert row.mined_sats is None
    assert row.credit_count is None
    assert row.payout_total_sats is None
    assert row.pools_permitted is None
    assert row.energy_kwh is None
    assert row.devices_active is None
    assert row.power_peak_w is None
    # ...while the expected polls are known, and none of them succeeded: that is a measured 0
    assert (row.polls_expected, row.polls_succeeded, row.data_completeness) == (POLLS_IN_MONTH, 0, 0.0)


def test_warnings_name_the_undeclared_address_and_the_unpermitted_pool(run: Run) -> None:
    text = "\n".join(run.result.warnings)
    assert ADDR_UNDECLARED in text
    assert "emcd" in text
