"""Every column of the October 2026 report for group gamma (Europe/Berlin), against hand-computed values.

Tolerances: sats, counts and dates exactly; hashrate within 1e-9 relative (InfluxDB's mean of floats);
energy within 1e-6 kWh (rounding to 6 decimals); ratios within 1e-6 (rounded to 6 decimals).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers import InfluxdServer, unique_database

from collector.sinks.influx import Series, V1Transport, quote_ident
from exporters.reports import queries
from exporters.reports.generate import generate_monthly
from exporters.reports.period import Month

from .conftest import GENERATED_AT, Run
from .support import ADDR_UNDECLARED, ADDR_V1, ADDR_V2, ns, write_config

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


# --- review fixes: a small world of its own (own database), read through the real influxd -------------------

LATE = datetime(2026, 10, 10, tzinfo=UTC)


def _small_world_lines() -> list[str]:
    lines = [
        # d1 (1,000 W) polled late (00:00:30) and then on time (00:09:50 is still the same 10-minute bucket);
        # d2 draws 2,000 W once. The site never drew more than 3,000 W.
        f"device,device=d1,group_id=gamma,site=ber-1 power_w=1000.0,online=1i {ns(LATE + timedelta(seconds=30))}",
        f"device,device=d1,group_id=gamma,site=ber-1 power_w=1000.0,online=1i {ns(LATE + timedelta(seconds=590))}",
        f"device,device=d2,group_id=gamma,site=ber-1 power_w=2000.0,online=0i {ns(LATE)}",
        # stored under names the config no longer has: a removed miner, a miner whose site was renamed
        f"device,device=d9,group_id=gamma,site=ber-1 power_w=500.0,online=1i {ns(LATE + timedelta(hours=1))}",
        f"device,device=d1,group_id=gamma,site=old-site power_w=500.0,online=1i {ns(LATE)}",
        f"pool_earning,account=old,coin=BTC,group_id=gamma,pool=braiins amount_sats=777i {ns(LATE)}",
        f'pool_payout,account=old,coin=BTC,group_id=gamma,pool=braiins amount_sats=5i,address="x" {ns(LATE)}',
        # a payout whose amount is unknown: the total must be unknown, not the sum of the rest
        f'pool_payout,account=main,coin=BTC,group_id=gamma,pool=braiins amount_sats=100i,address="{ADDR_V1}",'
        f"declared=1i {ns(LATE)}",
        f'pool_payout,account=main,coin=BTC,group_id=gamma,pool=braiins address="{ADDR_V1}",declared=1i '
        f"{ns(LATE + timedelta(hours=1))}",
        f"source_health,group_id=gamma,kind=braiins,target=main success=1i,stale=0i {ns(LATE)}",
    ]
    # three rounds knew the pool hashrate (0 H/s: utilisation 0.0), two did not
    for minute in range(5):
        t = ns(LATE + timedelta(minutes=10 * minute))
        known = "pool_total_hs=0.0,quota_hs=1e14,quota_utilisation=0.0," if minute < 3 else ""
        lines.append(f"compliance,group_id=gamma {known}status_code=0i {t}")
    return lines


@pytest.fixture(scope="module")
def small(influxd: InfluxdServer, request: pytest.FixtureRequest) -> Iterator[V1Transport]:
    if not influxd.is_running:
        influxd.start()
    transport = V1Transport(influxd.url, unique_database(request.node.name + "-small"), timeout_s=30.0)
    transport.ensure_database()
    transport.write(_small_world_lines())
    yield transport
    transport.query(f"DROP DATABASE {quote_ident(transport.database)}", epoch=None)
    transport.close()


class _Recording:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.total = 0

    def start(self, month: str, steps: int) -> None:
        self.total = steps

    def step_done(self) -> None:
        self.events.append("step")

    def file_written(self, path: Path, fmt: str, group_id: str | None) -> None:
        self.events.append("file")

    def finish(self, month: str, files: list[Path], rows: int, warnings: list[str]) -> None:
        self.events.append("finish")


@pytest.fixture(scope="module")
def small_run(small: V1Transport, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, _Recording]:
    root = tmp_path_factory.mktemp("small-config")
    config = write_config(root / "config")
    progress = _Recording()
    result = generate_monthly(
        config, "2026-10", transport=small, formats=("json",), out_dir=root / "out", now=GENERATED_AT, progress=progress
    )
    return Run(config, result, root / "out"), progress


def test_peak_power_is_not_doubled_by_a_late_poll(small_run: tuple[Run, _Recording]) -> None:
    run, _ = small_run
    assert run.row("ber-1").power_peak_w == pytest.approx(3000.0)  # was 4,000: d1's two samples summed


def test_rounds_without_pool_hashrate_do_not_count_as_coverage(small_run: tuple[Run, _Recording]) -> None:
    run, _ = small_run
    assert run.row("ber-1").hashrate_coverage == pytest.approx(3 / POLLS_IN_MONTH, abs=1e-6)


def test_a_peak_quota_ratio_of_zero_is_zero_not_missing(small_run: tuple[Run, _Recording]) -> None:
    run, _ = small_run
    assert run.row("ber-1").hashrate_peak_quota_ratio == 0.0


def test_a_payout_of_unknown_amount_makes_the_total_unknown(small_run: tuple[Run, _Recording]) -> None:
    run, _ = small_run
    row = run.row("ber-1")
    assert row.payout_count == 2
    assert row.payout_total_sats is None


def test_stored_series_the_config_no_longer_knows_are_warned_about(small_run: tuple[Run, _Recording]) -> None:
    run, _ = small_run
    text = "\n".join(run.result.warnings)
    assert "pool_earning (credits) of pool 'braiins' account 'old'" in text
    assert "pool_payout (payouts) of pool 'braiins' account 'old'" in text
    assert "miner 'd9' at site 'ber-1'" in text
    assert "miner 'd1' at site 'old-site'" in text
    assert "miner 'd1' at site 'ber-1'" not in text
    document = json.loads((run.out_dir / "minewatch-report-2026-10.json").read_text(encoding="utf-8"))
    assert document["warnings"] == run.result.warnings


def test_a_stored_group_the_config_does_not_have_is_warned_about(run: Run) -> None:
    assert any(w.startswith("gamma2: ") and "no such group is configured" in w for w in run.result.warnings)


def test_progress_moves_during_the_query_phase(small_run: tuple[Run, _Recording]) -> None:
    _, progress = small_run
    # steps: one query batch per month window (Berlin only), the blackout sums, then the group
    assert progress.total == 3
    assert progress.events == ["step", "step", "step", "file", "finish"]


class _PayoutsOnly:
    """A transport with one address-less (EMCD) payout per group and no pool settings at all."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, influxql: str, *, epoch: str | None = "ns") -> list[Series]:
        self.queries.append(influxql)
        if 'FROM "pool_payout"' not in influxql or "SELECT amount_sats" not in influxql:
            return []
        groups = re.search(r"\^\(\?:([^)]*)\)\$", influxql)
        assert groups is not None
        return [
            Series(
                "pool_payout",
                ["time", "amount_sats", "address", "declared"],
                [[ns(LATE), 10, None, None]],
                {"group_id": g, "pool": "emcd", "account": "side", "coin": "BTC"},
            )
            for g in groups.group(1).split("|")
        ]


def test_configured_payout_addresses_are_asked_once_per_payout_with_a_lower_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "GROUP_BATCH", 1)  # two batches: the first batch's payout must not be re-asked
    transport = _PayoutsOnly()
    window = Month(2026, 10).window("Europe/Berlin")
    facts = queries.fetch_window(transport, window, ["a", "b"], charts=False, interval_s=600)
    asked = [s for q in transport.queries for s in q.split("; ") if "payout_address" in s]
    assert len(asked) == 2
    assert sorted(re.search(r"group_id = '(\w+)'", s).group(1) for s in asked) == ["a", "b"]  # type: ignore[union-attr]
    lower = ns(LATE) - 40 * 86_400 * 10**9
    assert all(f"time >= {lower} AND time <= {ns(LATE)}" in s for s in asked)
    assert [p.address for points in facts.payouts.values() for p in points] == [None, None]
