"""The report row: one group × site × coin × month. Field order is the column order of every format.

Base units: satoshis (1e-8 coin) as exact integers, hashrate in H/s, power in W; energy in kWh and episode
durations in minutes, as the filing asks for them. None means "not known" (no data, or no source for it) and is
never written as zero. List columns hold strings in a fixed order; map columns are rule → number, sorted by
rule. Every column is described in exporters/reports/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# 2: the document gained `warnings` (what the run found to look at, e.g. stored data no row draws on).
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class ReportRow:
    # --- what and when
    period: str
    period_start_utc: str
    period_end_utc: str
    timezone: str
    # --- who and where
    group_id: str
    legal_name: str
    inn: str
    register_record: str
    register_status: str
    row_scope: str
    site_id: str | None
    region: str | None
    permit_versions: list[str]
    coin: str
    # --- production
    mined_sats: int | None
    credit_count: int | None
    first_credit_date: str | None
    last_credit_date: str | None
    # --- where it went
    payout_count: int | None
    payout_total_sats: int | None
    payout_undeclared_sats: int | None
    payout_addresses_declared: list[str] | None
    payout_addresses_undeclared: list[str] | None
    pools_permitted: list[str] | None
    pools_not_permitted: list[str] | None
    # --- hashrate against the quota (group-wide, from `compliance`)
    hashrate_avg_hs: float | None
    hashrate_peak_hs: float | None
    hashrate_quotas_hs: list[float]
    hashrate_peak_quota_ratio: float | None
    hashrate_share_above_quota: float | None
    hashrate_coverage: float | None
    # --- energy and power (site-side)
    energy_kwh: float | None
    energy_coverage: float | None
    energy_blackout_kwh: float | None
    blackout_hours: float | None
    power_peak_w: float | None
    capacity_w: float | None
    power_peak_capacity_ratio: float | None
    devices_active: int | None
    devices_registered: int | None
    # --- violations (group-wide, from `violation` transitions)
    violation_episodes: dict[str, int] | None
    violation_minutes: dict[str, float] | None
    violation_episodes_total: int | None
    violation_minutes_total: float | None
    # --- data completeness and filing
    polls_expected: int | None
    polls_succeeded: int | None
    data_completeness: float | None
    filing_due: str


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ReportRow))
LIST_COLUMNS = frozenset(
    {
        "permit_versions",
        "payout_addresses_declared",
        "payout_addresses_undeclared",
        "pools_permitted",
        "pools_not_permitted",
        "hashrate_quotas_hs",
    }
)
MAP_COLUMNS = frozenset({"violation_episodes", "violation_minutes"})
