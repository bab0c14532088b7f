"""The month world's store against its truth, with plain InfluxQL: the harness is right before a report is judged.

If these pass, the report test only has to compare report ↔ truth (`month_world.MonthWorld.rows`): every figure
the truth names is in the store as the truth says, and the sampled figures are within a quarter of the stated
tolerance of the exact ones.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from servers import InfluxdServer

from collector.sinks.influx import quote_literal

from .month_world import STEP_S, MonthRow, MonthWorld, month_bounds, shared_month_world

pytestmark = pytest.mark.integration

# Measurements written on every poll or round: none may have a point while the collector was down.
POLLED = (
    "pool_account",
    "pool_worker",
    "pool_settings",
    "device",
    "device_pool",
    "source_health",
    "permit",
    "site",
    "compliance",
    "compliance_rule",
    "compliance_pool",
    "violation",
)
SAMPLING_REL = 0.0005  # the sampled figures must be this close to the exact ones (a quarter of the tolerance)
NS = 1_000_000_000


@pytest.fixture(scope="module")
def world(influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory) -> MonthWorld:
    return shared_month_world(influxd, tmp_path_factory)


def rows(world: MonthWorld, influxql: str) -> list[dict[str, Any]]:
    """Every row of every series, with the series' tags merged in (times in ns)."""
    return [record | series.tags for series in world.transport.query(influxql) for record in series.records()]


def scalar(world: MonthWorld, influxql: str) -> Any:
    found = rows(world, influxql)
    assert len(found) == 1, f"{influxql}: {found}"
    return next(value for key, value in found[0].items() if key != "time")


def where(row: MonthRow, start: int | None = None, end: int | None = None, **tags: str) -> str:
    """`WHERE group_id = ... AND time >= ... AND time < ...` for the row's month (or [start, end))."""
    lo = row.month_start if start is None else start
    hi = row.month_end if end is None else end
    tests = [f"group_id = {quote_literal(row.group_id)}"]
    tests += [f'"{key}" = {quote_literal(value)}' for key, value in tags.items()]
    return " AND ".join([*tests, f"time >= {lo}s", f"time < {hi}s"])


def every_row(world: MonthWorld) -> list[MonthRow]:
    return list(world.rows.values())


def test_the_month_ran_cleanly(world: MonthWorld) -> None:
    print(f"month world: {len(world.sample_times)} steps of {world.step_s} s in {world.run_seconds:.1f} s")
    assert world.poll_failures == ()
    assert world.sink_losses == {"dropped": 0, "rejected": 0}
    assert set(world.rows) == {("redriver", "tx-1", "BTC"), ("tverhash", "tver-1", "BTC")}


def test_the_months_are_local_and_one_has_a_dst_change(world: MonthWorld) -> None:
    tx, tver = world.row("redriver"), world.row("tverhash")
    assert (tx.zone, tx.hours, tx.expected_polls) == ("America/Chicago", 743.0, 743 * 4)
    assert (tver.zone, tver.hours, tver.expected_polls) == ("Europe/Moscow", 744.0, 744 * 4)
    assert datetime.fromtimestamp(tx.month_start, UTC) == datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert datetime.fromtimestamp(tx.month_end, UTC) == datetime(2026, 4, 1, 5, tzinfo=UTC)
    assert month_bounds("2026-03", "Europe/Moscow") == (tver.month_start, tver.month_end)
    missed = world.missing.polls_missed
    for row in (tx, tver):
        assert row.successful_polls == row.expected_polls - missed
        assert math.isclose(row.completeness, (row.expected_polls - missed) / row.expected_polls)
        assert [end - start for start, end in row.covered] == [
            world.missing.start - row.month_start,
            row.month_end - world.missing.end,
        ]


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_credits_in_the_month_are_stored_exactly_as_the_truth_says(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    stored = rows(world, f"SELECT amount_sats FROM pool_earning WHERE {where(row)} GROUP BY pool, account")
    assert sorted((r["time"] // NS, r["pool"], r["account"], r["amount_sats"]) for r in stored) == [
        (c.at, c.pool, c.account, c.amount_sats) for c in row.credits
    ]
    assert scalar(world, f"SELECT sum(amount_sats) FROM pool_earning WHERE {where(row)}") == row.sats
    assert scalar(world, f"SELECT count(amount_sats) FROM pool_earning WHERE {where(row)}") == row.credit_count
    by_pool = rows(world, f"SELECT sum(amount_sats) FROM pool_earning WHERE {where(row)} GROUP BY pool")
    assert {r["pool"]: r["sum"] for r in by_pool} == row.sats_by_pool
    zone = ZoneInfo(row.zone)
    first = rows(world, f"SELECT first(amount_sats) FROM pool_earning WHERE {where(row)}")[0]["time"] // NS
    last = rows(world, f"SELECT last(amount_sats) FROM pool_earning WHERE {where(row)}")[0]["time"] // NS
    assert datetime.fromtimestamp(first, zone).date() == row.first_credit_date
    assert datetime.fromtimestamp(last, zone).date() == row.last_credit_date
    assert all(c.amount_sats > 0 for c in row.credits)


def test_a_utc_month_would_get_the_chicago_site_wrong(world: MonthWorld) -> None:
    # The world is built to catch it: credits are stamped 00:00 UTC, which is the evening before in Chicago.
    row = world.row("redriver")
    utc_start, utc_end = month_bounds("2026-03", "UTC")
    utc_sats = scalar(world, f"SELECT sum(amount_sats) FROM pool_earning WHERE {where(row, utc_start, utc_end)}")
    assert utc_sats != row.sats
    assert [c.day.isoformat() for c in (row.credits[0], row.credits[-1])] == ["2026-03-02", "2026-04-01"]
    assert (str(row.first_credit_date), str(row.last_credit_date)) == ("2026-03-01", "2026-03-31")


def test_the_missing_week_has_no_samples_but_its_credits_were_recovered(world: MonthWorld) -> None:
    missing = world.missing
    window = f"time >= {missing.start}s AND time < {missing.end}s"
    for measurement in POLLED:
        assert rows(world, f"SELECT count(*) FROM {measurement} WHERE {window}") == [], measurement
        before = rows(world, f"SELECT count(*) FROM {measurement} WHERE time < {missing.start}s")
        assert before, f"{measurement}: nothing stored before the missing week"
    for row in every_row(world):
        inside = [c for c in row.credits if missing.start <= c.at < missing.end]
        assert len(inside) == 7 * len({c.account for c in row.credits})
        stored = scalar(
            world, f"SELECT sum(amount_sats) FROM pool_earning WHERE {where(row, missing.start, missing.end)}"
        )
        assert stored == sum(c.amount_sats for c in inside)
    # The first poll after the restart is the first sample after the gap, at the restart instant.
    first_after = rows(world, f"SELECT first(success) FROM source_health WHERE time >= {missing.end}s")[0]["time"]
    assert first_after // NS == missing.end


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_every_poll_of_the_month_succeeded_and_is_stored(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    stored = rows(
        world, f"SELECT count(success), sum(success) FROM source_health WHERE {where(row)} GROUP BY kind, target"
    )
    assert sorted(f"{r['kind']}/{r['target']}" for r in stored) == sorted(row.targets)
    assert {(r["count"], r["sum"]) for r in stored} == {(row.successful_polls, row.successful_polls)}


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_pool_hashrate_samples_match_the_truth(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    per_poll = rows(
        world, f"SELECT sum(hashrate_hs) FROM pool_account WHERE {where(row)} GROUP BY time({STEP_S}s) fill(none)"
    )
    assert len(per_poll) == row.samples
    sums = {r["time"] // NS: r["sum"] for r in per_poll}
    assert math.isclose(sum(sums.values()) / len(sums), row.sampled_mean_hashrate_hs, rel_tol=1e-6)
    peak_at = max(sums, key=lambda t: sums[t])
    assert world.tolerances.peak_ok(sums[peak_at], row.peak_hashrate_hs)
    assert math.isclose(row.sampled_mean_hashrate_hs, row.mean_hashrate_hs, rel_tol=SAMPLING_REL)
    group = world.config.group(group_id)
    above = 0
    for t, total in sums.items():
        permit = group.permit_at(datetime.fromtimestamp(t, UTC))
        assert permit is not None
        assert permit.max_hashrate is not None
        above += total > permit.max_hashrate
    assert above == row.samples_above_quota
    assert sum(span.samples for span in row.permits) == row.samples


def test_the_compliance_points_show_the_same_quota_use(world: MonthWorld) -> None:
    for row in every_row(world):
        points = rows(world, f"SELECT pool_total_hs, quota_hs FROM compliance WHERE {where(row)}")
        assert len(points) == row.samples
        assert sum(p["pool_total_hs"] > p["quota_hs"] for p in points) == row.samples_above_quota
    redriver = world.row("redriver")
    assert 0 < redriver.share_above_quota < 1
    assert [(p.version, p.samples_above_quota > 0) for p in redriver.permits] == [("2025-09", False), ("2026-03", True)]
    assert world.row("tverhash").samples_above_quota == 0


def test_the_permit_change_is_in_the_store(world: MonthWorld) -> None:
    row = world.row("redriver")
    old, new = row.permits
    versions = rows(world, f"SELECT count(max_hashrate_hs) FROM permit WHERE {where(row)} GROUP BY permit_version")
    assert {r["permit_version"]: r["count"] for r in versions} == {old.version: old.samples, new.version: new.samples}
    assert datetime.fromtimestamp(new.start, ZoneInfo(row.zone)) == datetime(2026, 3, 16, tzinfo=ZoneInfo(row.zone))
    group = f"group_id = {quote_literal(row.group_id)}"
    before = rows(world, f"SELECT last(quota_hs) FROM compliance WHERE {group} AND time < {new.start}s")[0]
    after = rows(world, f"SELECT first(quota_hs) FROM compliance WHERE {group} AND time >= {new.start}s")[0]
    assert (before["last"], after["first"]) == (old.quota_hs, new.quota_hs) == (1.0e15, 0.9e15)
    assert (before["time"] // NS, after["time"] // NS) == (new.start - STEP_S, new.start)


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_device_power_gives_the_truths_energy(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    tolerance = world.tolerances
    total_w = scalar(world, f"SELECT sum(power_w) FROM device WHERE {where(row, site=row.site)}")
    count = scalar(world, f"SELECT count(power_w) FROM device WHERE {where(row, site=row.site)}")
    assert count == row.samples * row.devices_polled
    assert math.isclose(total_w * STEP_S / 3.6e6, row.sampled_energy_kwh, rel_tol=1e-12)
    assert math.isclose(row.sampled_energy_kwh, row.energy_kwh, rel_tol=SAMPLING_REL)
    per_poll = rows(
        world, f"SELECT sum(power_w) FROM device WHERE {where(row, site=row.site)} GROUP BY time({STEP_S}s) fill(none)"
    )
    assert max(r["sum"] for r in per_poll) == row.peak_power_w
    assert row.capacity_w is not None
    assert row.peak_power_w < row.capacity_w
    blackout_w = sum(
        scalar(world, f"SELECT sum(power_w) FROM device WHERE {where(row, start, end, site=row.site)}") or 0.0
        for start, end in row.blackouts
    )
    assert math.isclose(blackout_w * STEP_S / 3.6e6, row.sampled_blackout_energy_kwh, rel_tol=1e-12)
    assert tolerance.blackout_energy_ok(row.sampled_blackout_energy_kwh, row.blackout_energy_kwh)
    assert (row.blackout_energy_kwh > 0) == (group_id == "tverhash")


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_active_devices(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    peaks = rows(world, f"SELECT max(hashrate_hs) FROM device WHERE {where(row, site=row.site)} GROUP BY device")
    assert len(peaks) == row.devices_polled
    assert sum(r["max"] > 0 for r in peaks) == row.devices_active
    assert (row.devices_active, row.devices_registered, row.devices_declared) == {
        "redriver": (5, 5, 5),
        "tverhash": (2, 3, 3),
    }[group_id]


@pytest.mark.parametrize("group_id", ["redriver", "tverhash"])
def test_payouts_are_stored_as_the_truth_says(world: MonthWorld, group_id: str) -> None:
    row = world.row(group_id)
    stored = rows(
        world, f"SELECT amount_sats, address, declared, txid FROM pool_payout WHERE {where(row)} GROUP BY pool, account"
    )
    configured = {
        r["account"]: (r["last"], r["declared"])
        for r in rows(
            world,
            f"SELECT last(payout_address), last(declared) AS declared FROM pool_settings WHERE {where(row)} "
            "GROUP BY account",
        )
    }
    seen = []
    for r in sorted(stored, key=lambda r: (r["time"], r["pool"], r["account"])):
        if r["pool"] == "braiins":
            address, declared = r["address"], r["declared"]
        else:  # EMCD payouts carry no address: the pool's configured one is where they went
            assert r["address"] is None
            assert r["declared"] is None
            address, declared = configured[r["account"]]
        seen.append((r["time"] // NS, r["pool"], r["account"], r["amount_sats"], address, bool(declared), r["txid"]))
    assert seen == [(p.at, p.pool, p.account, p.amount_sats, p.address, p.declared, p.txid) for p in row.payouts]
    flags = Counter(p.declared for p in row.payouts)
    assert flags == ({True: 2, False: 8} if group_id == "redriver" else {True: 5})


def test_pools_permitted_and_not(world: MonthWorld) -> None:
    row = world.row("redriver")
    assert {(p.pool, p.permitted_throughout, any(p.permitted.values())) for p in row.pools} == {
        ("braiins", True, True),
        ("emcd", False, False),
    }
    shares = rows(world, f"SELECT count(hashrate_hs) FROM compliance_pool WHERE {where(row)} GROUP BY pool, permitted")
    assert {(r["pool"], r["permitted"]) for r in shares} == {("braiins", "yes"), ("emcd", "no")}


def test_the_violations_the_story_promises_are_recorded(world: MonthWorld) -> None:
    def firing(row: MonthRow) -> dict[str, int]:
        """Each rule's first `firing` transition in the month (unix s)."""
        found = rows(world, f"SELECT state FROM violation WHERE {where(row)} GROUP BY rule")
        first: dict[str, int] = {}
        for r in sorted(found, key=lambda r: r["time"]):
            if r["state"] == "firing":
                first.setdefault(r["rule"], r["time"] // NS)
        return first

    redriver, tverhash = world.row("redriver"), world.row("tverhash")
    red = firing(redriver)
    assert {"payout_address", "hashrate_quota"} <= set(red)
    assert red["hashrate_quota"] >= redriver.permits[1].start  # only under the lower quota
    group = f"group_id = {quote_literal('redriver')}"
    assert rows(world, f"SELECT state FROM violation WHERE {group} AND rule = 'pool_whitelist'")  # from the first round
    blackout_start, blackout_end = tverhash.blackouts[0]
    assert blackout_start <= firing(tverhash)["blackout"] < blackout_end
