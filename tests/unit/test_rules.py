"""The compliance rules: pure functions of a `GroupView`, each ok / violation / unknown with value, limit, evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.adapters.base import PoolSourceSettings
from collector.compliance.findings import AccountView, DeviceView, Finding, GroupSample, GroupView
from collector.compliance.rules import RULES, Rule, evaluate
from collector.compliance.settings import RuleSettings
from collector.config import Ban, Group, GroupFile, PoolAccount
from collector.models import (
    DevicePool,
    DeviceSnapshot,
    Payout,
    PoolAccountSnapshot,
    PoolSettings,
    SectionIssue,
    WorkerStats,
)

SETTINGS = RuleSettings()
ADDR_OLD = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"  # declared by p1 only
ADDR_NEW = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"  # declared by p2 only
ADDR_FOREIGN = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"  # declared by neither
PH = 1e15
TH = 1e12


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NOW = _ts("2026-06-01T12:00:00+08:00")  # noon in Irkutsk, under permit p1

P1: dict[str, Any] = {
    "version": "p1",
    "valid_from": "2025-08-01",
    "valid_to": "2026-07-31",
    "coins": ["BTC"],
    "pools": ["braiins"],
    "stratum_hosts": ["*.braiins.com"],
    "user_patterns": ["alpha.*"],
    "max_hashrate": "1 PH/s",
    "max_power": "100 kW",
    "payout_addresses": [ADDR_OLD],
    "regions": ["RU-IRK"],
    "registered_devices": 2,
    "blackouts": [{"start": "2026-06-01T22:00:00", "end": "2026-06-02T06:00:00", "reason": "peak"}],
}
P2: dict[str, Any] = P1 | {
    "version": "p2",
    "valid_from": "2026-08-01",
    "valid_to": None,
    "max_hashrate": "2 PH/s",
    "payout_addresses": [ADDR_NEW],
    "blackouts": [{"start": "2026-12-01T10:00:00", "end": "2026-12-01T12:00:00"}],
}
SEASONAL = Ban.model_validate(
    {
        "id": "irk-winter",
        "kind": "seasonal",
        "regions": ["RU-IRK"],
        "season_start": "11-15",
        "season_end": "03-15",
        "valid_from": "2025-11-15",
    }
)


def _group(**overrides: Any) -> Group:
    spec: dict[str, Any] = {
        "id": "alpha",
        "legal_name": "OOO Alpha",
        "inn": "3811000009",
        "register_record": "7102500009001",
        "timezone": "Asia/Irkutsk",
        "sites": [{"id": "irk-1", "region": "RU-IRK", "timezone": "Asia/Irkutsk", "capacity": "1.5 MW"}],
        "permits": [P1, P2],
    }
    return Group(spec=GroupFile.model_validate(spec | overrides), accounts=(), source_file=Path("alpha.toml"))


GROUP = _group()


def _snap(hs: float | None = 100 * TH, at: float = NOW, **fields: Any) -> PoolAccountSnapshot:
    return PoolAccountSnapshot(observed_at=int(at), coin=fields.pop("coin", "BTC"), hashrate_hs=hs, **fields)


def _acc(
    snap: PoolAccountSnapshot | None = None,
    *,
    name: str = "a1",
    kind: str = "braiins",
    site: str | None = None,
    age: float | None = 30.0,
) -> AccountView:
    account = PoolAccount("alpha", name, kind, site, "BTC", PoolSourceSettings(base_url="http://127.0.0.1:9"))
    return AccountView(account, snap if snap is not None else _snap(), age)


def _stale_acc(name: str = "a1") -> AccountView:
    return AccountView(
        PoolAccount("alpha", name, "braiins", None, "BTC", PoolSourceSettings(base_url="http://127.0.0.1:9")),
        None,
        None,
    )


SLOT = DevicePool(slot=0, url="stratum+tcp://eu.stratum.braiins.com:3333", stratum_user="alpha.m1", active=True)


def _dev(
    name: str = "m1",
    hs: float | None = 100 * TH,
    *,
    power: float | None = 3000.0,
    pools: Sequence[DevicePool] = (SLOT,),
    site: str = "irk-1",
    age: float | None = 30.0,
    last: bool = True,
) -> DeviceView:
    snapshot = DeviceSnapshot(observed_at=int(NOW), hashrate_hs=hs, power_w=power, pools=tuple(pools))
    return DeviceView(name, site, "fleet-1", snapshot if last else None, age if last else None)


def _view(
    accounts: Sequence[AccountView] = (),
    devices: Sequence[DeviceView] = (),
    *,
    now: float = NOW,
    group: Group = GROUP,
    history: Sequence[GroupSample] = (),
    bans: Sequence[Ban] = (),
) -> GroupView:
    return GroupView(group, tuple(bans), now, tuple(accounts), tuple(devices), tuple(history))


def _samples(
    count: int,
    *,
    now: float = NOW,
    step: float = 60.0,
    total: float | None = None,
    permitted: float | None = None,
    device: float | None = None,
) -> list[GroupSample]:
    """`count` samples one `step` apart, the last at `now`."""
    return [
        GroupSample(
            at=now - step * (count - 1 - i),
            pool_permitted_hs=permitted,
            pool_total_hs=total,
            device_hs=device,
            power_w=None,
        )
        for i in range(count)
    ]


def _run(rule: str, view: GroupView, settings: RuleSettings = SETTINGS) -> list[Finding]:
    findings = RULES[rule].check(view, settings)
    assert all(f.rule == rule and f.group_id == "alpha" for f in findings)
    return findings


def _one(rule: str, view: GroupView, settings: RuleSettings = SETTINGS) -> Finding:
    (finding,) = _run(rule, view, settings)
    return finding


def _by_subject(rule: str, view: GroupView) -> dict[str, Finding]:
    return {f.subject: f for f in _run(rule, view)}


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_defaults_and_strictness() -> None:
    assert SETTINGS.stale_after_s == 180
    assert SETTINGS.hashrate_window_s == 3600
    assert SETTINGS.unaccounted_tolerance == pytest.approx(0.10)
    with pytest.raises(ValueError, match="extra"):
        RuleSettings.model_validate({"stale_after": 5})
    with pytest.raises(ValueError, match="frozen"):
        SETTINGS.stale_after_s = 5  # type: ignore[misc]


# --- permit_validity ---------------------------------------------------------------------------------------


def test_permit_validity_ok_while_a_permit_is_in_force() -> None:
    finding = _one("permit_validity", _view([_acc()]))

    assert (finding.status, finding.subject, finding.permit_version) == ("ok", "", "p1")


def test_permit_validity_violation_when_mining_before_any_permit() -> None:
    before = _ts("2025-07-31T23:59:00+08:00")
    finding = _one("permit_validity", _view([_acc(_snap(250 * TH, at=before))], now=before))

    assert finding.status == "violation"
    assert (finding.value, finding.limit, finding.permit_version) == (250 * TH, 0.0, None)
    assert "no permit version in force on 2025-07-31" in finding.evidence
    assert "account a1 250 TH/s" in finding.evidence


def test_permit_validity_violation_when_the_register_status_is_excluded() -> None:
    view = _view([], [_dev(hs=50 * TH)], group=_group(register_status="excluded"))
    finding = _one("permit_validity", view)

    assert (finding.status, finding.value, finding.permit_version) == ("violation", 50 * TH, "p1")
    assert "register status of 7102500009001 is excluded" in finding.evidence


def test_permit_validity_ok_when_an_excluded_group_does_not_mine() -> None:
    view = _view([_acc(_snap(0.0))], [_dev(hs=0.0)], group=_group(register_status="excluded"))

    assert _one("permit_validity", view).status == "ok"


def test_permit_validity_unknown_without_fresh_data() -> None:
    finding = _one("permit_validity", _view([_acc(age=500.0)], [_dev(last=False)]))

    assert finding.status == "unknown"
    assert "pool account a1 (braiins): last good poll 500 s ago" in finding.evidence
    assert "miner m1: never polled" in finding.evidence


def test_permit_validity_unknown_when_idle_sources_sit_beside_stale_ones_and_no_permit() -> None:
    view = _view([_acc(_snap(0.0)), _stale_acc("a2")], group=_group(register_status="pending"))

    assert _one("permit_validity", view).status == "unknown"


# --- pool_whitelist ----------------------------------------------------------------------------------------


def test_pool_whitelist_ok_for_permitted_pool_and_stratum() -> None:
    findings = _by_subject("pool_whitelist", _view([_acc()], [_dev()]))

    assert {s: f.status for s, f in findings.items()} == {"a1": "ok", "m1": "ok"}
    assert findings["a1"].permit_version == "p1"


def test_pool_whitelist_violation_for_an_account_hashing_on_a_foreign_pool() -> None:
    view = _view([_acc(name="side", kind="f2pool"), _acc(_snap(0.0), name="idle", kind="viabtc")])
    findings = _by_subject("pool_whitelist", view)

    side = findings["side"]
    assert (side.status, side.value, side.limit, side.permit_version) == ("violation", "f2pool", "braiins", "p1")
    assert "hashing 100 TH/s on pool f2pool" in side.evidence
    assert findings["idle"].status == "ok"  # an idle account on a foreign pool sends it nothing


@pytest.mark.parametrize(
    ("url", "user", "value"),
    [
        ("stratum+tcp://btc.f2pool.com:3333", "alpha.m1", "btc.f2pool.com"),
        ("btc.f2pool.com:1314", "alpha.m1", "btc.f2pool.com"),  # no scheme: still host:port
        ("stratum+tcp://eu.stratum.braiins.com:3333", "mallory.m1", "mallory.m1"),
    ],
)
def test_pool_whitelist_violation_for_a_miner_on_a_foreign_host_or_user(url: str, user: str, value: str) -> None:
    slots = [DevicePool(0, SLOT.url, SLOT.stratum_user, False), DevicePool(1, url, user, True)]
    finding = _by_subject("pool_whitelist", _view([], [_dev(pools=slots)]))["m1"]

    assert (finding.status, finding.value, finding.permit_version) == ("violation", value, "p1")
    assert finding.limit in {"*.braiins.com", "alpha.*"}
    assert "active slot 1" in finding.evidence


def test_pool_whitelist_judges_configured_backup_slots_too() -> None:
    """Issue 4: "configured or active" — a miner fails over to its backup slot by itself."""
    backup = DevicePool(1, "stratum+tcp://btc.viabtc.io:3333", "alpha.m1", False)
    finding = _by_subject("pool_whitelist", _view([], [_dev(pools=[SLOT, backup])]))["m1"]

    assert (finding.status, finding.value) == ("violation", "btc.viabtc.io")
    assert "configured slot 1" in finding.evidence


def test_pool_whitelist_host_match_ignores_case_and_port() -> None:
    slot = DevicePool(0, "STRATUM+TCP://EU.Stratum.BRAIINS.com:700", "alpha.x", True)

    assert _by_subject("pool_whitelist", _view([], [_dev(pools=[slot])]))["m1"].status == "ok"


def test_pool_whitelist_does_not_judge_a_dimension_the_permit_lists_no_patterns_for() -> None:
    group = _group(permits=[P1 | {"user_patterns": []}, P2])
    slot = DevicePool(0, SLOT.url, "anybody", True)

    assert _by_subject("pool_whitelist", _view([], [_dev(pools=[slot])], group=group))["m1"].status == "ok"


def test_pool_whitelist_unknown_for_stale_sources_and_a_miner_with_no_active_slot() -> None:
    inactive = [DevicePool(0, SLOT.url, SLOT.stratum_user, False)]
    view = _view([_acc(age=181.0)], [_dev(pools=inactive), _dev("m2", last=False)])
    findings = _by_subject("pool_whitelist", view)

    assert {s: f.status for s, f in findings.items()} == {"a1": "unknown", "m1": "unknown", "m2": "unknown"}
    assert "no active pool slot" in findings["m1"].evidence


# --- coin --------------------------------------------------------------------------------------------------


def test_coin_ok_violation_and_unknown() -> None:
    view = _view(
        [
            _acc(name="btc"),
            _acc(_snap(coin="bch"), name="bch"),
            _acc(_snap(0.0, coin="LTC"), name="ltc-idle"),
            _acc(name="gone", age=None),
        ]
    )
    findings = _by_subject("coin", view)

    assert findings["btc"].status == "ok"
    bch = findings["bch"]
    assert (bch.status, bch.value, bch.limit, bch.permit_version) == ("violation", "BCH", "BTC", "p1")
    assert findings["ltc-idle"].status == "ok"
    assert findings["gone"].status == "unknown"


# --- hashrate_quota ----------------------------------------------------------------------------------------


def test_hashrate_quota_ok_within_tolerance() -> None:
    finding = _one("hashrate_quota", _view(history=_samples(60, total=1.04 * PH)))

    assert finding.status == "ok"
    assert finding.limit == pytest.approx(1.05 * PH)


def test_hashrate_quota_violation_on_the_window_mean() -> None:
    # Half the hour at 1.3 PH/s, half at 0.9: mean 1.1 PH/s, above 1 PH/s + 5 %.
    history = _samples(30, now=NOW - 1800, total=0.9 * PH) + _samples(30, total=1.3 * PH)
    finding = _one("hashrate_quota", _view(history=history))

    assert finding.status == "violation"
    assert finding.value == pytest.approx(1.1 * PH)
    assert finding.limit == pytest.approx(1.05 * PH)
    assert finding.permit_version == "p1"


def test_hashrate_quota_unknown_when_the_window_is_less_than_half_covered() -> None:
    # 25 samples a minute apart cover 25 min + the last one's reach: under half an hour.
    finding = _one("hashrate_quota", _view(history=_samples(25, now=NOW - 600, total=3 * PH)))

    assert finding.status == "unknown"


def test_hashrate_quota_none_without_a_quota() -> None:
    group = _group(permits=[P1 | {"max_hashrate": None}, P2])

    assert _run("hashrate_quota", _view(history=_samples(60, total=5 * PH), group=group)) == []


# --- power_quota -------------------------------------------------------------------------------------------


def test_power_quota_ok_and_violation_against_the_permit() -> None:
    ok = _one("power_quota", _view([], [_dev(power=40_000.0), _dev("m2", power=30_000.0)]))
    partial = _one("power_quota", _view([], [_dev(power=40_000.0), _dev("m2", power=None)]))
    over = _one("power_quota", _view([], [_dev(power=70_000.0), _dev("m2", power=40_000.0)]))

    assert (ok.status, ok.value, ok.limit) == ("ok", 70_000.0, 100_000.0)
    # Under the limit with a miner not reporting is only a lower bound: not a verdict.
    assert (partial.status, partial.value) == ("unknown", 40_000.0)
    assert "1 of 2 miners" in partial.evidence
    assert (over.status, over.value, over.limit, over.permit_version) == ("violation", 110_000.0, 100_000.0, "p1")


def test_a_rule_with_nothing_to_judge_says_ok_so_its_old_alerts_resolve() -> None:
    group = _group(permits=[P1 | {"max_hashrate": None}, P2])
    [finding] = [f for f in evaluate(_view([_acc()], [], group=group), RuleSettings()) if f.rule == "hashrate_quota"]

    assert (finding.status, finding.subject) == ("ok", "")


def test_payout_alerts_are_held_unknown_while_an_account_is_stale() -> None:
    undeclared = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
    fresh = _acc(_snap(payouts=(_payout(undeclared, NOW - 600),)))
    stale = _acc(name="a2", age=9_999.0)
    findings = evaluate(_view([fresh, stale], []), RuleSettings())
    statuses = {f.subject: f.status for f in findings if f.rule == "payout_address"}

    assert statuses["1BoatSLRHtKNngkdXEeobR76b53LETtpyT"] == "violation"
    assert statuses[""] == "unknown"


def test_power_quota_falls_back_to_the_sites_connected_capacity() -> None:
    group = _group(permits=[P1 | {"max_power": None}, P2])
    finding = _one("power_quota", _view([], [_dev(power=1_600_000.0)], group=group))

    assert (finding.status, finding.limit) == ("violation", 1_500_000.0)
    assert "connected capacity" in finding.evidence


def test_power_quota_unknown_when_no_fresh_miner_reports_power() -> None:
    view = _view([], [_dev(power=None), _dev("m2", age=300.0)])

    assert _one("power_quota", view).status == "unknown"


# --- payout_address ----------------------------------------------------------------------------------------


def _payout(address: str | None, at: float, sats: int = 1_000_000, txid: str = "tx1") -> Payout:
    return Payout(sent_at=int(at), amount_sats=sats, address=address, txid=txid, status="sent", event_id=txid)


def test_payout_address_ok_for_a_declared_address_in_another_case() -> None:
    snap = _snap(payouts=(_payout(ADDR_OLD.upper(), NOW - 3600),), settings=PoolSettings(ADDR_OLD))
    findings = _by_subject("payout_address", _view([_acc(snap)]))

    assert {s: f.status for s, f in findings.items()} == {ADDR_OLD: "ok", "a1:configured": "ok"}


def test_payout_address_violation_sums_the_payouts_to_an_undeclared_address() -> None:
    payouts = (
        _payout(ADDR_FOREIGN, NOW - 7200, 300_000, "aa11"),
        _payout(ADDR_FOREIGN, NOW - 3600, 200_000, "bb22"),
        _payout(ADDR_OLD, NOW - 3600, 999, "cc33"),
        _payout(ADDR_FOREIGN, NOW - 2 * 86_400, 5, "old"),  # beyond the lookback: not judged
    )
    findings = _by_subject("payout_address", _view([_acc(_snap(payouts=payouts))]))

    bad = findings[ADDR_FOREIGN]
    assert (bad.status, bad.value, bad.limit, bad.permit_version) == ("violation", 500_000.0, 0.0, "p1")
    assert "aa11 at 2026-06-01T02:00:00Z" in bad.evidence
    assert "bb22" in bad.evidence
    assert "old" not in bad.evidence
    assert findings[ADDR_OLD].status == "ok"


def test_payout_address_configured_at_the_pool_before_any_payout() -> None:
    snap = _snap(settings=PoolSettings(ADDR_FOREIGN))
    finding = _by_subject("payout_address", _view([_acc(snap, name="acc")]))["acc:configured"]

    assert (finding.status, finding.value, finding.permit_version) == ("violation", ADDR_FOREIGN, "p1")
    assert "not declared by permit p1" in finding.evidence


def test_payout_address_unknown_without_a_fresh_account() -> None:
    snap = _snap(payouts=(_payout(ADDR_FOREIGN, NOW),))
    finding = _one("payout_address", _view([_acc(snap, age=600.0)]))

    assert finding.status == "unknown"
    assert finding.subject == ""


def test_payout_just_before_midnight_is_judged_by_the_old_permit_version() -> None:
    # p1 (declares ADDR_OLD) ends on 31 Jul, p2 (declares ADDR_NEW) starts on 1 Aug, both in Irkutsk time.
    now = _ts("2026-08-01T00:30:00+08:00")
    before = _ts("2026-07-31T23:59:00+08:00")  # still 31 Jul in Irkutsk, though 15:59 UTC
    after = _ts("2026-08-01T00:01:00+08:00")
    payouts = (_payout(ADDR_OLD, before, 100, "late-p1"), _payout(ADDR_NEW, after, 200, "early-p2"))
    findings = _by_subject("payout_address", _view([_acc(_snap(at=now, payouts=payouts))], now=now))

    assert (findings[ADDR_OLD].status, findings[ADDR_OLD].permit_version) == ("ok", "p1")
    assert (findings[ADDR_NEW].status, findings[ADDR_NEW].permit_version) == ("ok", "p2")


def test_a_payout_just_after_midnight_to_the_old_address_violates_the_new_version() -> None:
    now = _ts("2026-08-01T00:30:00+08:00")
    after = _ts("2026-08-01T00:01:00+08:00")
    snap = _snap(at=now, payouts=(_payout(ADDR_OLD, after, 700),))
    finding = _by_subject("payout_address", _view([_acc(snap)], now=now))[ADDR_OLD]

    assert (finding.status, finding.value, finding.permit_version) == ("violation", 700.0, "p2")


# --- blackout ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "status"),
    [
        ("2026-06-01T21:59:00+08:00", "ok"),  # a minute before the permit's window opens
        ("2026-06-01T22:01:00+08:00", "violation"),
        ("2026-06-02T05:59:00+08:00", "violation"),
        ("2026-06-02T06:01:00+08:00", "ok"),  # a minute after it closes
        ("2026-11-14T23:59:00+08:00", "ok"),  # the seasonal ban starts on 15 Nov, Irkutsk time
        ("2026-11-15T00:01:00+08:00", "violation"),
        ("2027-03-15T23:59:00+08:00", "violation"),
        ("2027-03-16T00:01:00+08:00", "ok"),
    ],
)
def test_blackout_boundaries_in_the_sites_local_time(local: str, status: str) -> None:
    now = _ts(local)
    view = _view([], [_dev(hs=80 * TH)], now=now, bans=[SEASONAL])
    finding = _one("blackout", view)

    assert (finding.subject, finding.status) == ("irk-1", status)
    if status == "violation":
        assert (finding.value, finding.limit) == (80 * TH, 0.0)
        assert finding.permit_version == ("p1" if now < _ts("2026-08-01T00:00:00+08:00") else "p2")


def test_blackout_is_ok_when_the_site_does_not_mine_during_it() -> None:
    view = _view([_acc(_snap(0.0))], [_dev(hs=0.0)], now=_ts("2026-12-01T08:00:00+08:00"), bans=[SEASONAL])

    assert _one("blackout", view).status == "ok"


def test_isolated_generation_is_exempt_from_the_seasonal_ban_but_not_from_the_permits_window() -> None:
    sites = [{"id": "irk-1", "region": "RU-IRK", "timezone": "Asia/Irkutsk", "isolated_generation": True}]
    group = _group(sites=sites)
    in_season = _one(
        "blackout", _view([], [_dev()], group=group, now=_ts("2026-12-01T09:00:00+08:00"), bans=[SEASONAL])
    )
    in_window = _one(
        "blackout", _view([], [_dev()], group=group, now=_ts("2026-12-01T11:00:00+08:00"), bans=[SEASONAL])
    )

    assert in_season.status == "ok"
    assert "isolated generation" in in_season.evidence
    assert in_window.status == "violation"
    assert "blackout window of permit p2" in in_window.evidence
    assert "seasonal ban" not in in_window.evidence


def test_a_siteless_account_counts_for_the_groups_only_site() -> None:
    view = _view([_acc()], now=_ts("2026-12-01T09:00:00+08:00"), bans=[SEASONAL])
    finding = _one("blackout", view)

    assert (finding.subject, finding.status, finding.value) == ("irk-1", "violation", 100 * TH)
    assert "seasonal ban irk-winter" in finding.evidence


def test_blackout_unknown_when_the_sites_sources_are_stale() -> None:
    view = _view([_acc(age=1000.0)], [_dev(last=False)], now=_ts("2026-12-01T09:00:00+08:00"), bans=[SEASONAL])

    assert _one("blackout", view).status == "unknown"


# --- region ------------------------------------------------------------------------------------------------


def _two_sites() -> Group:
    sites = [
        {"id": "irk-1", "region": "RU-IRK", "timezone": "Asia/Irkutsk"},
        {"id": "bur-1", "region": "RU-BU", "timezone": "Asia/Irkutsk"},
    ]
    return _group(sites=sites)


def test_region_ok_violation_and_unknown_per_site() -> None:
    view = _view(
        [_acc(site="bur-1", name="bur-acc")],
        [_dev(site="irk-1")],
        group=_two_sites(),
    )
    findings = _by_subject("region", view)

    assert findings["irk-1"].status == "ok"
    bur = findings["bur-1"]
    assert (bur.status, bur.value, bur.limit, bur.permit_version) == ("violation", "RU-BU", "RU-IRK", "p1")
    stale = _by_subject("region", _view([], [_dev(site="bur-1", age=999.0)], group=_two_sites()))
    assert stale == {"bur-1": stale["bur-1"]}
    assert stale["bur-1"].status == "unknown"


# --- device_count ------------------------------------------------------------------------------------------


def test_device_count_ok_violation_unknown() -> None:
    ok = _one("device_count", _view([], [_dev("m1"), _dev("m2"), _dev("m3", hs=0.0)]))
    over = _one("device_count", _view([], [_dev("m1"), _dev("m2"), _dev("m3")]))
    unseen = _one("device_count", _view([], [_dev("m1"), _dev("m2"), _dev("m3", last=False)]))

    assert (ok.status, ok.value, ok.limit) == ("ok", 2.0, 2.0)
    assert (over.status, over.value, over.limit, over.permit_version) == ("violation", 3.0, 2.0, "p1")
    assert unseen.status == "unknown"  # the stale miner could be the third one hashing
    assert _run("device_count", _view([_acc()])) == []  # no miners polled: nothing to count


# --- unaccounted_hashrate ----------------------------------------------------------------------------------


def test_unaccounted_hashrate_violation_when_sustained() -> None:
    finding = _one("unaccounted_hashrate", _view(history=_samples(30, device=1 * PH, permitted=0.7 * PH)))

    assert finding.status == "violation"
    assert finding.value == pytest.approx(0.3 * PH)
    assert finding.limit == pytest.approx(0.1 * PH)
    assert finding.permit_version == "p1"


def test_unaccounted_hashrate_ok_when_one_sample_is_within_tolerance() -> None:
    history = _samples(30, device=1 * PH, permitted=0.7 * PH)
    history[10] = GroupSample(history[10].at, 0.95 * PH, None, 1 * PH, None)

    assert _one("unaccounted_hashrate", _view(history=history)).status == "ok"


def test_unaccounted_hashrate_unknown_without_pool_figures() -> None:
    finding = _one("unaccounted_hashrate", _view(history=_samples(30, device=1 * PH, permitted=None)))

    assert finding.status == "unknown"


@given(
    st.lists(
        st.tuples(st.floats(0, 1e18, allow_nan=False), st.floats(0, 1e18, allow_nan=False)),
        min_size=20,  # enough to cover half the window, so the rule judges rather than says unknown
        max_size=40,
    )
)
def test_unaccounted_hashrate_never_fires_when_the_pools_credit_at_least_the_miners(
    pairs: list[tuple[float, float]],
) -> None:
    history = [
        GroupSample(NOW - 60.0 * (len(pairs) - 1 - i), device + extra, None, device, None)
        for i, (device, extra) in enumerate(pairs)
    ]

    assert _one("unaccounted_hashrate", _view(history=history)).status == "ok"


# --- collector_blind ---------------------------------------------------------------------------------------


def test_collector_blind_ok_when_everything_is_fresh() -> None:
    finding = _one("collector_blind", _view([_acc()], [_dev()]))

    assert (finding.status, finding.value, finding.severity) == ("ok", 0.0, "warning")


def test_collector_blind_fires_on_one_stale_account() -> None:
    finding = _one("collector_blind", _view([_acc(), _stale_acc("a2")], [_dev()]))

    assert (finding.status, finding.value, finding.subject) == ("violation", 1.0, "")
    assert "pool account a2 (braiins): never polled" in finding.evidence


def test_collector_blind_tolerates_a_minority_of_stale_miners_and_names_at_most_five() -> None:
    few = [_dev(f"m{i}", age=999.0 if i < 2 else 10.0) for i in range(5)]
    many = [_dev(f"m{i}", age=999.0 if i < 8 else 10.0) for i in range(10)]

    assert _one("collector_blind", _view([], few)).status == "ok"
    finding = _one("collector_blind", _view([], many))
    assert (finding.status, finding.value, finding.limit) == ("violation", 8.0, 5.0)
    assert "8 of 10 miners" in finding.evidence
    assert "and 3 more" in finding.evidence


def test_collector_blind_unknown_for_a_group_with_no_source() -> None:
    assert _one("collector_blind", _view()).status == "unknown"


# --- workers_offline ---------------------------------------------------------------------------------------


def test_workers_offline_counts_only_workers_down_beyond_the_threshold() -> None:
    workers = (
        WorkerStats("w1", True, last_share_ts=int(NOW - 30)),
        WorkerStats("w2", False, last_share_ts=int(NOW - 600)),  # down 10 min: not yet
        WorkerStats("w3", False, last_share_ts=int(NOW - 3600)),
        WorkerStats("w4", False, last_share_ts=None),
    )
    finding = _one("workers_offline", _view([_acc(_snap(workers=workers))]))

    assert (finding.status, finding.subject, finding.value, finding.limit) == ("violation", "a1", 1.0, 0.0)
    assert finding.operational is True
    assert "w3" in finding.evidence
    assert "1 offline with no last share: w4" in finding.evidence


def test_workers_offline_ok_and_unknown() -> None:
    fine = _snap(workers=(WorkerStats("w1", True, last_share_ts=int(NOW)),))
    failed = _snap(issues=(SectionIssue("workers", "unreachable", "timed out"),))
    findings = _by_subject("workers_offline", _view([_acc(fine), _acc(failed, name="a2"), _acc(name="a3", age=None)]))

    assert {s: f.status for s, f in findings.items()} == {"a1": "ok", "a2": "unknown", "a3": "unknown"}


# --- hashrate_drop -----------------------------------------------------------------------------------------


def test_hashrate_drop_violation_ok_and_unknown() -> None:
    steady = _samples(360, total=1 * PH)
    dropped = [*steady[:-1], GroupSample(NOW, None, 0.5 * PH, None, None)]

    ok = _one("hashrate_drop", _view(history=steady))
    drop = _one("hashrate_drop", _view(history=dropped))
    short = _one("hashrate_drop", _view(history=_samples(60, total=1 * PH)))

    assert ok.status == "ok"
    assert (drop.status, drop.value, drop.operational) == ("violation", 0.5 * PH, True)
    assert drop.limit == pytest.approx(0.7 * PH)
    assert short.status == "unknown"  # one hour of a six-hour baseline


# --- the registry and evaluate -----------------------------------------------------------------------------


ALL_STALE = _view([_stale_acc("a1"), _acc(name="a2", age=10_000.0)], [_dev(last=False), _dev("m2", age=900.0)])


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_on_a_view_with_no_data_is_unknown_never_ok(name: str) -> None:
    for view in (_view(), ALL_STALE):
        findings = _run(name, view)
        for finding in findings:
            assert finding.status in {"ok", "violation", "unknown"}
            assert finding.severity == RULES[name].severity
            assert finding.operational is RULES[name].operational
        if name == "collector_blind" and view is ALL_STALE:
            assert [f.status for f in findings] == ["violation"]  # the one rule that fires on a blind group
        else:
            assert {f.status for f in findings} <= {"unknown"}, findings


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_names_only_itself_on_a_busy_view(name: str) -> None:
    view = _view(
        [_acc(_snap(payouts=(_payout(ADDR_FOREIGN, NOW),), workers=(WorkerStats("w", False, last_share_ts=0),)))],
        [_dev(), _dev("m2", pools=[])],
        history=_samples(400, total=1 * PH, permitted=1 * PH, device=1 * PH),
        bans=[SEASONAL],
    )
    findings = _run(name, view)

    assert findings or name == "device_count"
    assert all(f.status in {"ok", "violation", "unknown"} and f.evidence for f in findings)
    assert len({f.subject for f in findings}) == len(findings)  # one finding per subject


def test_rule_names_are_stable_snake_case_and_operational_ones_are_marked() -> None:
    assert list(RULES) == [
        "permit_validity",
        "pool_whitelist",
        "coin",
        "hashrate_quota",
        "power_quota",
        "payout_address",
        "blackout",
        "region",
        "device_count",
        "unaccounted_hashrate",
        "collector_blind",
        "workers_offline",
        "hashrate_drop",
    ]
    assert {name for name, rule in RULES.items() if rule.operational} == {"workers_offline", "hashrate_drop"}


def test_evaluate_runs_every_rule_in_registry_order() -> None:
    findings = evaluate(_view([_acc()], [_dev()], history=_samples(60, total=1 * PH)), SETTINGS)

    assert list(dict.fromkeys(f.rule for f in findings)) == list(RULES)


def test_evaluate_survives_a_rule_that_raises() -> None:
    def broken(view: GroupView, settings: RuleSettings) -> list[Finding]:
        raise ZeroDivisionError(f"{view.group.id}: {settings.stale_after_s} / 0")

    rules = {"broken": Rule(broken, "critical"), "coin": RULES["coin"]}
    findings = evaluate(_view([_acc()]), SETTINGS, rules)

    assert [(f.rule, f.status) for f in findings] == [("broken", "unknown"), ("coin", "ok")]
    failed = findings[0]
    assert (failed.subject, failed.severity, failed.permit_version) == ("", "critical", "p1")
    assert "ZeroDivisionError" in failed.evidence
