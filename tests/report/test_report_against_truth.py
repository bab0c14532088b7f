"""The monthly report of a simulated month, against the scenario's ground truth (issue 6, item 5).

March 2026 of `simulator/scenarios/month.toml` runs through the simulator and the real collector into a real
InfluxDB (`month_world.py`: a permit change with a lower quota, a site on daylight-saving time, a week the
collector was down). The report computed from that store must give the truth's satoshis, credits, payouts,
pools and polls exactly, and its hashrate and energy within the tolerances the harness derives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from servers import InfluxdServer

from exporters.reports.generate import ReportResult, generate_monthly
from exporters.reports.row import ReportRow

from .month_world import MonthRow, MonthWorld, shared_month_world

GENERATED_AT = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory) -> MonthWorld:
    return shared_month_world(influxd, tmp_path_factory)


@pytest.fixture(scope="module")
def report(world: MonthWorld, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return generate_monthly(
        world.config,
        world.month,
        transport=world.transport,
        formats=("csv", "json"),
        out_dir=tmp_path_factory.mktemp("month-report"),
        now=GENERATED_AT,
    )


def reported(report: ReportResult, truth: MonthRow) -> ReportRow:
    [row] = [r for r in report.rows if (r.group_id, r.site_id, r.coin) == (truth.group_id, truth.site, truth.coin)]
    return row


def truths(world: MonthWorld) -> list[MonthRow]:
    return sorted(world.rows.values(), key=lambda row: row.group_id)


def test_one_row_per_group_site_and_coin(world: MonthWorld, report: ReportResult) -> None:
    assert sorted((r.group_id, r.site_id, r.coin) for r in report.rows) == sorted(world.rows)


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_production_and_payouts_are_exact(world: MonthWorld, report: ReportResult, group_id: str) -> None:
    truth = world.row(group_id)
    row = reported(report, truth)

    assert row.mined_sats == truth.sats
    assert row.credit_count == truth.credit_count
    assert row.first_credit_date == str(truth.first_credit_date)
    assert row.last_credit_date == str(truth.last_credit_date)
    assert row.payout_count == len(truth.payouts)
    assert row.payout_total_sats == sum(p.amount_sats for p in truth.payouts)
    assert row.payout_undeclared_sats == sum(p.amount_sats for p in truth.payouts if not p.declared)
    assert set(row.payout_addresses_declared or []) == {p.address for p in truth.payouts if p.declared}
    assert set(row.payout_addresses_undeclared or []) == {p.address for p in truth.payouts if not p.declared}


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_permits_pools_devices_polls_and_due_date(world: MonthWorld, report: ReportResult, group_id: str) -> None:
    truth = world.row(group_id)
    row = reported(report, truth)

    assert row.period == world.month
    assert row.timezone == truth.zone
    assert (row.legal_name, row.inn, row.register_record, row.region) == (
        truth.legal_name,
        truth.inn,
        truth.register_record,
        truth.region,
    )
    assert row.permit_versions == [span.version for span in truth.permits]
    assert set(row.pools_permitted or []) == {use.pool for use in truth.pools if use.permitted_throughout}
    assert set(row.pools_not_permitted or []) == {use.pool for use in truth.pools if not use.permitted_throughout}
    assert (row.devices_active, row.devices_registered) == (truth.devices_active, truth.devices_registered)
    # Polls are counted per source: every pool account and miner of the row is expected once per interval.
    sources = len(truth.targets)
    assert (row.polls_expected, row.polls_succeeded) == (
        truth.expected_polls * sources,
        truth.successful_polls * sources,
    )
    assert row.data_completeness == pytest.approx(truth.successful_polls / truth.expected_polls)
    assert row.filing_due == str(truth.filing_due)


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_hashrate_and_energy_within_the_tolerances(world: MonthWorld, report: ReportResult, group_id: str) -> None:
    truth = world.row(group_id)
    row = reported(report, truth)
    tolerances = world.tolerances

    assert row.hashrate_avg_hs is not None
    assert tolerances.hashrate_ok(row.hashrate_avg_hs, truth.mean_hashrate_hs), (row.hashrate_avg_hs, truth)
    assert row.hashrate_peak_hs is not None
    assert tolerances.peak_ok(row.hashrate_peak_hs, truth.peak_hashrate_hs)
    assert row.hashrate_share_above_quota is not None
    assert tolerances.share_ok(row.hashrate_share_above_quota, truth.samples_above_quota / truth.samples, truth.samples)
    assert row.energy_kwh is not None
    assert tolerances.energy_ok(row.energy_kwh, truth.energy_kwh), (row.energy_kwh, truth.energy_kwh)
    assert row.power_peak_w is not None
    assert tolerances.peak_ok(row.power_peak_w, truth.peak_power_w)
    assert row.capacity_w == truth.capacity_w


def test_the_group_above_its_lowered_quota_shows_it(world: MonthWorld, report: ReportResult) -> None:
    truth = world.row("redriver")
    row = reported(report, truth)

    assert truth.samples_above_quota > 0
    assert row.hashrate_quotas_hs == [span.quota_hs for span in truth.permits]
    assert row.hashrate_share_above_quota is not None
    assert row.hashrate_share_above_quota > 0
    assert row.pools_not_permitted == ["emcd"]


def test_energy_in_the_blackout_window(world: MonthWorld, report: ReportResult) -> None:
    truth = world.row("tverhash")
    row = reported(report, truth)

    assert truth.blackout_energy_kwh > 0
    assert row.energy_blackout_kwh is not None
    assert world.tolerances.blackout_energy_ok(row.energy_blackout_kwh, truth.blackout_energy_kwh)


def test_the_missing_week_lowers_completeness_and_is_never_a_zero(world: MonthWorld, report: ReportResult) -> None:
    for truth in truths(world):
        row = reported(report, truth)
        assert row.data_completeness is not None
        assert row.data_completeness < 0.8
        assert row.hashrate_coverage is not None
        assert row.hashrate_coverage < 0.8
        assert row.energy_coverage is not None
        assert row.energy_coverage < 0.8
        # Missing is not zero: the mean is over the covered time, not diluted by the week.
        assert row.hashrate_avg_hs == pytest.approx(truth.mean_hashrate_hs, rel=world.tolerances.hashrate_rel)


def test_the_files_name_the_month(report: ReportResult, world: MonthWorld) -> None:
    assert sorted(Path(path).name for path in report.paths) == [
        f"minewatch-report-{world.month}.csv",
        f"minewatch-report-{world.month}.json",
    ]
