"""The alert book: lifecycle with hold and keep-firing per rule, dedup, unknown, excused windows, restarts.

Time is always given; nothing here reads the wall clock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.adapters.registry import source_registry
from collector.cli import main
from collector.compliance import alerts as alerts_module
from collector.compliance.alerts import (
    SCHEMA_VERSION,
    AlertBook,
    AlertChange,
    default_site_of,
    read_state,
    state_file_path,
)
from collector.compliance.findings import AlertEvent, Finding, Status
from collector.config import AlertingConfig, Group, GroupFile, load_config
from collector.redact import Redactor
from collector.sinks.points import CATALOGUE, NS_PER_S, violation_line
from unit.support import CliRun, ConfigDir, field_type, field_value, parse_line

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z
QUOTA = "hashrate_quota"  # held 300 s, keeps firing 120 s
POOL = "pool_whitelist"  # the defaults: fires at once, resolves at the first ok

POLICY = AlertingConfig(
    hold_s=0,
    hold_s_by_rule={QUOTA: 300},
    keep_firing_s=0,
    keep_firing_s_by_rule={QUOTA: 120},
    resend_s=60,
)


def finding(
    status: Status,
    *,
    rule: str = POOL,
    subject: str = "acc1",
    group: str = "alpha",
    value: float | str | None = "f2pool",
    limit: float | str | None = "braiins, emcd",
    evidence: str = "account acc1 mines on f2pool",
) -> Finding:
    return Finding(group, rule, subject, status, "critical", value, limit, evidence, "2026-05")


def quota(status: Status, value: float = 1.5e15, subject: str = "") -> Finding:
    return finding(status, rule=QUOTA, subject=subject, value=value, limit=1.2e15, evidence=f"{value:g} H/s > quota")


def mark_notified(book: AlertBook, key: tuple[str, str, str], at: float, notifier: str = "alertmanager") -> bool:
    """The primary notifier accepted the firing alert `key` in the round at `at` (as delivery records it)."""
    record = book.get(key)
    if record is None or record.state != "firing":
        return False
    event = AlertEvent(record.finding, "firing", at, record.started_at)
    return book.record_delivery(notifier, [event], at, primary=True) == 1


def states(changes: list[AlertChange]) -> list[tuple[str, str | None]]:
    return [(c.state, c.previous) for c in changes]


def group(notices: list[dict[str, Any]], sites: list[tuple[str, str]], group_id: str = "alpha") -> Group:
    spec = GroupFile.model_validate(
        {
            "id": group_id,
            "legal_name": "OOO Alpha",
            "inn": "3811000009",
            "register_record": "7102500009001",
            "timezone": sites[0][1],
            "sites": [{"id": site, "region": "RU-IRK", "timezone": zone} for site, zone in sites],
            "permits": [{"version": "2026-05", "valid_from": "2026-01-01", "coins": ["BTC"], "pools": ["braiins"]}],
            "notices": notices,
        }
    )
    return Group(spec=spec, accounts=(), source_file=Path(f"{group_id}.toml"))


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


# --- lifecycle -----------------------------------------------------------------------------------------------


def test_a_rule_without_hold_fires_in_the_round_it_is_seen_and_resolves_at_the_first_ok() -> None:
    book = AlertBook(POLICY)

    opened = book.evaluate([finding("violation")], T0)
    again = book.evaluate([finding("violation")], T0 + 60)
    closed = book.evaluate([finding("ok")], T0 + 120)

    assert states(opened) == [("pending", None), ("firing", "pending")]
    assert [(c.at, c.started_at, c.notify) for c in opened] == [(T0, T0, False), (T0, T0, True)]
    assert again == []
    assert states(closed) == [("resolved", "firing")]
    assert closed[0].notify
    assert (closed[0].at, closed[0].started_at) == (T0 + 120, T0)
    assert book.records(active_only=True) == []


def test_hold_and_keep_firing_times_are_per_rule() -> None:
    book = AlertBook(POLICY)
    timeline: list[tuple[float, list[tuple[str, str | None]]]] = []

    def step(at: float, status: Status, value: float = 1.5e15) -> None:
        changes = book.evaluate([quota(status, value)], at)
        if changes:
            timeline.append((at - T0, states(changes)))

    step(T0, "violation")
    step(T0 + 240, "violation")  # held 300 s: still pending
    step(T0 + 300, "violation", 1.6e15)  # fires, 300 s after it started
    step(T0 + 600, "ok")  # keep-firing countdown starts
    step(T0 + 660, "ok")
    step(T0 + 690, "violation", 1.7e15)  # cancels the countdown
    step(T0 + 720, "ok")  # a new countdown
    step(T0 + 780, "ok")  # 60 s ok: not yet
    step(T0 + 840, "ok")  # 120 s ok: resolved

    assert timeline == [
        (0, [("pending", None)]),
        (300, [("firing", "pending")]),
        (840, [("resolved", "firing")]),
    ]
    assert book.records()[0].finding.value == 1.7e15  # the resolve carries the last violating finding


def test_a_pending_alert_that_stops_before_its_hold_closes_unnotified_and_a_new_one_starts_afresh() -> None:
    book = AlertBook(POLICY)

    book.evaluate([quota("violation")], T0)
    closed = book.evaluate([quota("ok")], T0 + 120)
    reopened = book.evaluate([quota("violation")], T0 + 400)
    held = book.evaluate([quota("violation")], T0 + 600)

    assert states(closed) == [("resolved", "pending")]
    assert not closed[0].notify
    assert states(reopened) == [("pending", None)]
    assert reopened[0].started_at == T0 + 400  # the hold counts from the new start, not the old one
    assert held == []


def test_alerts_are_deduplicated_per_group_rule_and_subject() -> None:
    book = AlertBook(POLICY)

    first = book.evaluate(
        [
            finding("violation", subject="acc1"),
            finding("violation", subject="acc1", evidence="the same account, reported twice"),
            finding("violation", subject="acc2"),
            finding("violation", subject="acc1", group="beta"),
        ],
        T0,
    )
    again = book.evaluate(
        [
            finding("violation", subject="acc1"),
            finding("violation", subject="acc2"),
            finding("violation", subject="acc1", group="beta"),
        ],
        T0 + 60,
    )

    fired = sorted(c.finding.key for c in first if c.state == "firing")
    assert fired == [("alpha", POOL, "acc1"), ("alpha", POOL, "acc2"), ("beta", POOL, "acc1")]
    assert again == []
    assert len(book.records()) == 3


def test_the_worst_finding_of_a_key_in_one_round_counts() -> None:
    book = AlertBook(POLICY)
    book.evaluate([finding("violation")], T0)

    changes = book.evaluate([finding("ok"), finding("violation"), finding("unknown")], T0 + 60)

    assert changes == []
    assert book.records()[0].state == "firing"


# --- unknown -------------------------------------------------------------------------------------------------


def test_unknown_neither_opens_fires_nor_resolves() -> None:
    book = AlertBook(POLICY)

    assert book.evaluate([finding("unknown")], T0) == []
    assert book.records() == []

    book.evaluate([quota("violation")], T0)
    assert book.evaluate([quota("unknown")], T0 + 600) == []  # past the hold, but no evidence it still violates
    assert book.records()[0].state == "pending"
    # Not confirmed through the unknown round: the hold starts again, so one violating round does not fire.
    assert book.evaluate([quota("violation")], T0 + 660) == []
    assert states(book.evaluate([quota("violation")], T0 + 900)) == [("firing", "pending")]

    for minute in range(1, 60):
        assert book.evaluate([quota("unknown")], T0 + 900 + 60 * minute) == []
    assert book.records()[0].state == "firing"


def test_unknown_breaks_the_keep_firing_countdown() -> None:
    book = AlertBook(POLICY)
    book.evaluate([quota("violation")], T0)
    book.evaluate([quota("violation")], T0 + 300)

    book.evaluate([quota("ok")], T0 + 400)
    book.evaluate([quota("unknown")], T0 + 460)  # the source went stale: ok is not known to have held
    assert book.evaluate([quota("ok")], T0 + 520) == []  # 120 s after the first ok, but not unbroken
    assert book.evaluate([quota("ok")], T0 + 580) == []
    assert states(book.evaluate([quota("ok")], T0 + 640)) == [("resolved", "firing")]


def test_a_rule_that_ran_and_no_longer_names_a_subject_says_ok_for_it() -> None:
    book = AlertBook(POLICY)
    book.evaluate([finding("violation", subject="acc1"), finding("violation", subject="acc2")], T0)

    changes = book.evaluate([finding("violation", subject="acc2")], T0 + 60)

    assert [(c.finding.subject, c.state) for c in changes] == [("acc1", "resolved")]


def test_a_rule_that_said_nothing_or_unknown_for_the_group_leaves_its_alerts_open() -> None:
    book = AlertBook(POLICY)
    book.evaluate([finding("violation", subject="acc1")], T0)

    silent = book.evaluate([finding("ok", rule="coin", subject="")], T0 + 60)  # another rule; this one did not run
    blind = book.evaluate([finding("unknown", subject="")], T0 + 120)  # the rule ran, blind for the group
    other_group = book.evaluate([finding("ok", subject="acc1", group="beta")], T0 + 180)

    assert silent == blind == other_group == []
    assert book.records()[0].state == "firing"


# --- re-sends ------------------------------------------------------------------------------------------------


def test_a_delivered_firing_alert_is_due_again_every_resend_s() -> None:
    book = AlertBook(POLICY)
    key = ("alpha", POOL, "acc1")
    book.evaluate([finding("violation")], T0)

    assert mark_notified(book, key, T0 + 1)
    assert book.due_for_resend(T0 + 60) == []
    due = book.due_for_resend(T0 + 61)
    assert [(c.finding.key, c.state, c.repeat, c.notify, c.started_at) for c in due] == [
        (key, "firing", True, True, T0)
    ]
    assert book.due_for_resend(T0 + 61) == due  # asking changes nothing; only delivery's mark does
    mark_notified(book, key, T0 + 100)
    assert book.due_for_resend(T0 + 150) == []


def test_a_firing_alert_never_delivered_is_due_after_resend_s_and_pending_ones_never_are() -> None:
    book = AlertBook(POLICY)
    book.evaluate([finding("violation"), quota("violation")], T0)

    assert book.due_for_resend(T0 + 30) == []
    assert [c.finding.rule for c in book.due_for_resend(T0 + 60)] == [POOL]  # the quota alert is only pending
    assert not mark_notified(book, ("alpha", QUOTA, ""), T0)
    assert not mark_notified(book, ("alpha", POOL, "nobody"), T0)


# --- excused windows ---------------------------------------------------------------------------------------

IRKUTSK = [("irk-1", "Asia/Irkutsk"), ("irk-2", "Asia/Irkutsk")]  # UTC+8, no DST
MAINTENANCE = {
    "start": datetime(2026, 2, 1, 8),
    "end": datetime(2026, 2, 1, 12),  # 00:00-04:00 UTC
    "sites": ["irk-1"],
    "reason": "transformer maintenance",
}


def _by_subject(subjects: dict[str, str]) -> Callable[[Finding], str | None]:
    return lambda f: subjects.get(f.subject)


def test_a_violation_inside_a_notice_is_excused_in_the_sites_local_time() -> None:
    book = AlertBook(POLICY, [group([MAINTENANCE], IRKUTSK)], site_of=_by_subject({"acc1": "irk-1"}))

    before = book.evaluate([finding("violation")], utc("2026-01-31T23:59:59"))
    book.evaluate([finding("ok")], utc("2026-01-31T23:59:59"))
    inside = book.evaluate([finding("violation")], utc("2026-02-01T00:00:00"))
    still = book.evaluate([finding("violation")], utc("2026-02-01T03:59:59"))
    after = book.evaluate([finding("violation")], utc("2026-02-01T04:00:00"))

    assert states(before) == [("pending", None), ("firing", "pending")]
    assert states(inside) == [("excused", None)]
    assert not inside[0].notify
    assert inside[0].excuse == "transformer maintenance"
    assert still == []
    assert states(after) == [("pending", "excused"), ("firing", "pending")]
    assert after[0].started_at == utc("2026-02-01T04:00:00")  # the excused part does not count towards a hold


def test_a_notice_covers_only_its_sites_and_rules() -> None:
    notice = MAINTENANCE | {"rules": [QUOTA]}
    site_of = _by_subject({"acc1": "irk-1", "acc2": "irk-2", "": "irk-1"})
    book = AlertBook(POLICY, [group([notice], IRKUTSK)], site_of=site_of)
    at = utc("2026-02-01T01:00:00")

    changes = book.evaluate(
        [
            quota("violation", subject=""),  # irk-1, a listed rule: excused
            finding("violation", subject="acc1"),  # irk-1, another rule
            finding("violation", subject="acc2", rule=QUOTA),  # a listed rule at another site
        ],
        at,
    )

    assert sorted((c.finding.subject, c.state) for c in changes) == [
        ("", "excused"),
        ("acc1", "firing"),
        ("acc1", "pending"),
        ("acc2", "pending"),
    ]


def test_a_notice_for_every_site_covers_findings_of_no_known_site_in_the_groups_zone() -> None:
    notice = {key: value for key, value in MAINTENANCE.items() if key != "sites"}
    book = AlertBook(POLICY, [group([notice], IRKUTSK)], site_of=lambda f: None)
    sited = AlertBook(POLICY, [group([MAINTENANCE], IRKUTSK)], site_of=lambda f: None)
    at = utc("2026-02-01T01:00:00")

    assert states(book.evaluate([finding("violation")], at)) == [("excused", None)]
    assert states(sited.evaluate([finding("violation")], at))[0] == ("pending", None)


def test_the_default_site_of_knows_sites_and_single_site_groups() -> None:
    two = group([], IRKUTSK)
    one = group([], [("tver-1", "Europe/Moscow")], group_id="beta")
    site_of = default_site_of([two, one])

    assert site_of(finding("violation", subject="irk-2")) == "irk-2"
    assert site_of(finding("violation", subject="acc1")) is None  # two sites, an unknown subject
    assert site_of(finding("violation", subject="anything", group="beta")) == "tver-1"


@pytest.mark.parametrize(
    ("moment", "excused"),
    [
        ("2026-01-15T08:59:59", False),  # winter, CET (UTC+1): 10:00 local is 09:00 UTC
        ("2026-01-15T09:00:00", True),
        ("2026-07-01T07:59:59", False),  # summer, CEST (UTC+2): 10:00 local is 08:00 UTC
        ("2026-07-01T08:00:00", True),
        ("2026-07-01T08:59:59", True),
        ("2026-07-01T09:00:00", False),
        ("2026-03-29T00:00:00", True),  # 01:00 CET; the clocks jump 02:00 -> 03:00 inside the window
        ("2026-03-29T01:59:59", True),  # 03:59:59 CEST
        ("2026-03-29T02:00:00", False),  # 04:00 CEST: the window lasted two real hours, as the clocks said
    ],
)
def test_notices_follow_daylight_saving_time(moment: str, excused: bool) -> None:
    notices = [
        {"start": datetime(2026, 1, 15, 10), "end": datetime(2026, 1, 15, 11), "reason": "winter work"},
        {"start": datetime(2026, 7, 1, 10), "end": datetime(2026, 7, 1, 11), "reason": "summer work"},
        {"start": datetime(2026, 3, 29, 1), "end": datetime(2026, 3, 29, 4), "reason": "across the change"},
    ]
    book = AlertBook(POLICY, [group(notices, [("ber-1", "Europe/Berlin")])])

    changes = book.evaluate([finding("violation")], utc(moment))

    assert (changes[0].state == "excused") is excused


def test_a_pending_alert_entering_a_notice_is_excused_but_a_firing_one_runs_its_course() -> None:
    book = AlertBook(POLICY, [group([MAINTENANCE], IRKUTSK)], site_of=lambda f: "irk-1")
    book.evaluate([quota("violation"), finding("violation")], utc("2026-01-31T23:58:00"))

    changes = book.evaluate([quota("violation"), finding("violation")], utc("2026-02-01T00:01:00"))
    ended = book.evaluate([quota("ok"), finding("ok")], utc("2026-02-01T01:00:00"))

    assert [(c.finding.rule, c.state, c.previous) for c in changes] == [(QUOTA, "excused", "pending")]
    assert sorted((c.finding.rule, c.state, c.previous, c.notify) for c in ended) == [
        (QUOTA, "resolved", "excused", False),
        (POOL, "resolved", "firing", True),
    ]


# --- persistence -------------------------------------------------------------------------------------------


def test_a_restarted_book_neither_renotifies_nor_forgets(tmp_path: Path) -> None:
    state = tmp_path / "state" / "alerts.json"
    key = ("alpha", POOL, "acc1")
    first = AlertBook(POLICY, state_file=state)
    first.load(T0)
    first.evaluate([finding("violation", value=3.0, limit=1.0), quota("violation")], T0)
    mark_notified(first, key, T0 + 2)

    second = AlertBook(POLICY, state_file=state)
    assert second.load(T0 + 30)

    assert second.records() == first.records()
    assert second.evaluate([finding("violation", value=3.0, limit=1.0), quota("violation")], T0 + 30) == []
    assert second.due_for_resend(T0 + 30) == []  # delivered 28 s ago, resend_s is 60
    assert [c.finding.key for c in second.due_for_resend(T0 + 62)] == [key]
    assert [(c.finding.key, c.repeat, c.started_at) for c in second.firing(T0 + 30)] == [(key, True, T0)]
    assert states(second.evaluate([quota("violation")], T0 + 300)) == [("firing", "pending")]  # the hold went on
    assert states(second.evaluate([finding("ok")], T0 + 360)) == [("resolved", "firing")]


def test_the_state_file_is_schema_versioned_json_written_only_on_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "alerts.json"
    writes: list[Path] = []
    real_write = alerts_module.write_atomically

    def counting(path: Path, text: str) -> None:
        writes.append(path)
        real_write(path, text)

    monkeypatch.setattr(alerts_module, "write_atomically", counting)
    book = AlertBook(POLICY, state_file=state)

    book.evaluate([finding("ok")], T0)
    book.evaluate([finding("violation")], T0)
    book.evaluate([finding("violation")], T0 + 60)
    book.evaluate([finding("unknown")], T0 + 120)

    assert len(writes) == 1
    document = json.loads(state.read_text(encoding="utf-8"))
    assert document["schema_version"] == SCHEMA_VERSION == 2
    assert document["saved_at"] == T0
    [alert] = document["alerts"]
    assert alert["state"] == "firing"
    assert alert["finding"]["evidence"] == "account acc1 mines on f2pool"
    assert (alert["started_at"], alert["notified"], alert["last_notified_at"]) == (T0, False, None)
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.json"]  # no temp file left behind

    book.evaluate([finding("violation", evidence="now on f2pool and viabtc")], T0 + 180)
    assert len(writes) == 2  # the evidence changed: a restart must see the latest


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b'{"schema_version": 3, "saved_at": 0, "alerts": []}',
        b'{"schema_version": 2, "saved_at": 0, "alerts": [{"state": "firing"}]}',
        b'{"schema_version": 2, "saved_at": 0, "alerts": [], "resolved": [], "spare": 1}',
        b"\xff\xfe\x00",
    ],
    ids=["truncated", "empty", "future schema", "missing fields", "unknown key", "binary"],
)
def test_a_corrupt_state_file_is_set_aside_with_a_warning_and_the_book_starts_fresh(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "alerts.json"
    state.write_bytes(content)
    book = AlertBook(POLICY, state_file=state)

    with caplog.at_level(logging.WARNING, logger="minewatch.alerts"):
        loaded = book.load(utc("2026-05-28T20:00:00"))

    assert not loaded
    assert book.records() == []
    aside = tmp_path / "alerts.json.corrupt-20260528T200000Z"
    assert aside.read_bytes() == content
    assert not state.exists()
    assert any("unusable" in r.getMessage() and str(aside) in r.getMessage() for r in caplog.records)
    assert states(book.evaluate([finding("violation")], T0))[-1] == ("firing", "pending")
    assert read_state(state)[0][0].state == "firing"


def test_an_unreadable_state_file_is_a_warning_not_a_crash(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "alerts.json"
    state.mkdir()  # a directory where the file should be
    (tmp_path / "alerts.json.corrupt-20260528T202640Z").write_text("an earlier one")
    book = AlertBook(POLICY, state_file=state)

    with caplog.at_level(logging.WARNING, logger="minewatch.alerts"):
        assert not book.load(T0)

    assert (tmp_path / "alerts.json.corrupt-20260528T202640Z-1").is_dir()
    assert "unusable" in caplog.text


def test_a_state_file_that_cannot_be_written_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    book = AlertBook(POLICY, state_file=blocker / "alerts.json")

    with caplog.at_level(logging.ERROR, logger="minewatch.alerts"):
        changes = book.evaluate([finding("violation")], T0)

    assert states(changes) == [("pending", None), ("firing", "pending")]  # alerting goes on
    assert book.save_failures == 1
    assert "cannot save" in caplog.text
    book.evaluate([finding("violation")], T0 + 60)  # nothing changed, but the unsaved state is retried
    assert book.save_failures == 2
    blocker.unlink()
    blocker.mkdir()
    book.evaluate([finding("violation")], T0 + 120)
    assert book.save_failures == 2
    assert read_state(blocker / "alerts.json")[0][0].state == "firing"


def test_non_finite_values_survive_a_save(tmp_path: Path) -> None:
    state = tmp_path / "alerts.json"
    book = AlertBook(POLICY, state_file=state)
    book.evaluate([finding("violation", value=float("inf"), limit=1.0)], T0)

    [record], _ = read_state(state)

    assert (record.finding.value, record.finding.limit) == ("inf", 1.0)


def test_one_book_is_safe_to_share_between_threads(tmp_path: Path) -> None:
    state = tmp_path / "alerts.json"
    book = AlertBook(POLICY, state_file=state)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                rule = f"rule-{n}-{i}"  # one rule per round: a rule that ran and omits a subject would resolve it
                book.evaluate([finding("violation", rule=rule)], T0 + i)
                mark_notified(book, ("alpha", rule, "acc1"), T0 + i)
                book.due_for_resend(T0 + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    open_alerts, _ = read_state(state)
    assert len(open_alerts) == len(book.records()) == 160
    assert all(r.notified for r in open_alerts)


def test_resolved_alerts_are_kept_for_a_while_then_dropped(tmp_path: Path) -> None:
    book = AlertBook(POLICY, state_file=tmp_path / "alerts.json")
    book.evaluate([finding("violation")], T0)
    book.evaluate([finding("ok")], T0 + 60)

    assert [r.state for r in book.records()] == ["resolved"]
    assert book.records(active_only=True) == []
    book.evaluate([], T0 + 60 + alerts_module.RESOLVED_KEPT_S + 1)
    assert book.records() == []
    assert read_state(tmp_path / "alerts.json") == ([], [])


# --- violation points --------------------------------------------------------------------------------------


def test_every_transition_becomes_a_violation_point_of_the_catalogue() -> None:
    book = AlertBook(POLICY)
    changes = book.evaluate([quota("violation", 1.5e15), finding("violation")], T0 + 0.75)
    changes += book.evaluate([quota("ok"), finding("ok")], T0 + 400.2)

    points = [parse_line(violation_line(c)) for c in changes]

    assert [(p.tags["rule"], field_value(p.fields["state"])) for p in points] == [
        (QUOTA, "pending"),
        (POOL, "pending"),
        (POOL, "firing"),
        (QUOTA, "resolved"),
        (POOL, "resolved"),
    ]
    entry = CATALOGUE["violation"]
    for point in points:
        assert point.tags == {"group_id": "alpha", "rule": point.tags["rule"], "severity": "critical"}
        assert set(point.fields) <= set(entry.fields)
        assert all(field_type(v) is entry.fields[k] for k, v in point.fields.items())
    quota_point, pool_point = points[0], points[1]
    assert (field_value(quota_point.fields["value"]), field_value(quota_point.fields["threshold"])) == (1.5e15, 1.2e15)
    assert field_value(quota_point.fields["subject"]) == ""
    assert "value" not in pool_point.fields  # not numbers
    assert "threshold" not in pool_point.fields
    assert field_value(pool_point.fields["message"]) == (
        "account acc1 mines on f2pool (value: f2pool; limit: braiins, emcd)"
    )
    assert int(T0) * NS_PER_S <= quota_point.timestamp < (int(T0) + 1) * NS_PER_S
    assert points[3].timestamp // NS_PER_S == int(T0 + 400.2)


def test_violation_points_of_one_second_never_collide_and_replays_overwrite() -> None:
    book = AlertBook(POLICY)
    changes = book.evaluate([finding("violation", subject=f"acc{i}") for i in range(50)], T0)

    times = [parse_line(violation_line(c)).timestamp for c in changes]

    assert len(set(times)) == len(times) == 100
    assert [parse_line(violation_line(c)).timestamp for c in changes] == times


def test_an_excuse_can_be_noted_in_the_message() -> None:
    book = AlertBook(POLICY, [group([MAINTENANCE], IRKUTSK)], site_of=lambda f: "irk-1")
    [excused] = book.evaluate([quota("violation")], utc("2026-02-01T01:00:00"))

    point = parse_line(violation_line(excused, note=f"excused: {excused.excuse}"))

    assert field_value(point.fields["state"]) == "excused"
    assert field_value(point.fields["message"]).endswith("(excused: transformer maintenance)")  # type: ignore[union-attr]


# --- config and the `alerts` command -------------------------------------------------------------------------


def test_per_rule_times_fall_back_to_the_defaults() -> None:
    assert (POLICY.hold_for(QUOTA), POLICY.hold_for(POOL)) == (300, 0)
    assert (POLICY.keep_firing_for(QUOTA), POLICY.keep_firing_for(POOL)) == (120, 0)
    assert AlertingConfig().resend_s == 60
    assert AlertingConfig().state_file == "state/alerts.json"


@pytest.fixture
def alerts_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    def run(*args: str) -> CliRun:
        capsys.readouterr()
        code = main(["alerts", *args])
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


def _book_for(config_dir: ConfigDir) -> AlertBook:
    config = load_config(config_dir.main, source_registry(), redactor=Redactor())
    assert state_file_path(config) == config_dir.root / "state" / "alerts.json"
    return AlertBook.from_config(config)


def test_the_alerts_command_lists_open_and_resolved_alerts(
    config_dir: ConfigDir, alerts_cli: Callable[..., CliRun]
) -> None:
    book = _book_for(config_dir)
    book.evaluate([finding("violation", subject="alpha_main"), quota("violation")], T0)
    book.evaluate([finding("violation", subject="beta", group="beta")], T0)
    book.evaluate([finding("ok", subject="beta", group="beta")], T0 + 60)
    book.evaluate([finding("ok", subject="beta", group="beta")], T0 + 120)  # this config keeps firing 60 s
    # beta's notice (2026-02-01 08:00-12:00 Moscow) excuses a hashrate-quota finding at its only site.
    beta_quota = finding("violation", rule=QUOTA, subject="", group="beta", value=9e14, limit=8e14, evidence="over")
    book.evaluate([beta_quota], utc("2026-02-01T06:00:00"))

    every = alerts_cli("-c", str(config_dir.main))
    active = alerts_cli("-c", str(config_dir.main), "--active")

    assert every.code == active.code == 0
    rows = every.out.splitlines()
    assert rows[0].split() == ["GROUP", "RULE", "SUBJECT", "STATE", "SINCE", "(UTC)", "VALUE", "/", "LIMIT", "EVIDENCE"]
    assert [row.split()[:4] for row in rows[1:]] == [
        ["alpha", POOL, "alpha_main", "firing"],
        ["alpha", QUOTA, "-", "pending"],
        ["beta", QUOTA, "-", "excused"],
        ["beta", POOL, "beta", "resolved"],
    ]
    assert "2026-05-28 20:26:40" in rows[1]
    assert "1.5e+15 / 1.2e+15" in rows[2]
    assert "(transformer maintenance)" in rows[3]
    assert [row.split()[3] for row in active.out.splitlines()[1:]] == ["firing", "pending"]


def test_the_alerts_command_without_a_state_file(config_dir: ConfigDir, alerts_cli: Callable[..., CliRun]) -> None:
    run = alerts_cli("-c", str(config_dir.main), "--active")

    assert run.code == 0
    assert run.out.startswith("no alerts recorded yet")


def test_the_alerts_command_with_a_bad_config_exits_2(config_dir: ConfigDir, alerts_cli: Callable[..., CliRun]) -> None:
    config_dir.replace("minewatch.toml", "resend_s = 120", "resend_s = -1")

    run = alerts_cli("-c", str(config_dir.main))

    assert run.code == 2
    assert f"{config_dir.main}: alerting.resend_s: " in run.err


def test_the_alerts_command_with_a_corrupt_state_file_exits_1_and_leaves_it(
    config_dir: ConfigDir, alerts_cli: Callable[..., CliRun]
) -> None:
    state = config_dir.root / "state" / "alerts.json"
    state.parent.mkdir()
    state.write_text("{oops")

    run = alerts_cli("-c", str(config_dir.main))

    assert run.code == 1
    assert "not a schema 1 or 2 alert state file" in run.err
    assert "Traceback" not in run.output
    assert state.read_text() == "{oops"


# --- per-notifier delivery records -------------------------------------------------------------------------


def firing_of(book: AlertBook, key: tuple[str, str, str], at: float) -> AlertEvent:
    record = book.get(key)
    assert record is not None
    return AlertEvent(record.finding, "firing", at, record.started_at)


def test_one_delivered_batch_is_one_save_and_only_the_primary_marks_notified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "alerts.json"
    writes: list[Path] = []
    real_write = alerts_module.write_atomically

    def counting(path: Path, text: str) -> None:
        writes.append(path)
        real_write(path, text)

    monkeypatch.setattr(alerts_module, "write_atomically", counting)
    book = AlertBook(POLICY, state_file=state)
    book.evaluate([finding("violation"), finding("violation", subject="acc2")], T0)
    events = [firing_of(book, ("alpha", POOL, subject), T0) for subject in ("acc1", "acc2")]
    writes.clear()

    assert book.record_delivery("webhook", events, T0 + 5) == 2
    assert len(writes) == 1
    assert [(r.delivered_to, r.notified) for r in book.records()] == [(("webhook",), False)] * 2
    assert book.record_delivery("alertmanager", events, T0 + 7, primary=True) == 2
    assert len(writes) == 2
    assert [(r.delivered_to, r.notified, r.last_notified_at) for r in book.records()] == [
        (("webhook", "alertmanager"), True, T0)  # the round's time, not the delivery's
    ] * 2
    assert book.record_delivery("webhook", events, T0 + 9) == 0
    assert len(writes) == 2  # nothing new, nothing saved

    ended = book.evaluate([finding("ok"), finding("ok", subject="acc2")], T0 + 60)
    assert book.record_delivery("webhook", ended, T0 + 61) == 2
    assert book.record_delivery("alertmanager", ended, T0 + 62, primary=True) == 2
    assert len(writes) == 5  # the resolving round's save and one per batch
    assert book.unsent_resolutions() == []
    [first, second] = read_state(state)[1]
    assert first.resolution_delivered_to == second.resolution_delivered_to == ("webhook", "alertmanager")
    assert all(book.already_delivered("webhook", change) for change in ended)


def test_which_notifiers_took_a_firing_decides_re_offers_and_resolutions() -> None:
    book = AlertBook(POLICY)
    key = ("alpha", POOL, "acc1")
    book.evaluate([finding("violation")], T0)
    firing = firing_of(book, key, T0)

    assert book.missing_firing(firing, ["alertmanager", "webhook"]) == ["alertmanager", "webhook"]
    book.record_delivery("alertmanager", [firing], T0, primary=True)
    assert book.missing_firing(firing, ["alertmanager", "webhook"]) == ["webhook"]
    assert book.already_delivered("alertmanager", firing)
    assert not book.already_delivered("webhook", firing)
    [resolved] = book.evaluate([finding("ok")], T0 + 60)
    assert book.took_firing("alertmanager", resolved)
    assert not book.took_firing("webhook", resolved)
    assert book.missing_firing(firing, ["webhook"]) == []  # no longer firing: nothing to re-offer
    # A firing the webhook took after the episode resolved (both were in one batch) still counts.
    book.record_delivery("webhook", [firing, resolved], T0 + 61)
    assert book.took_firing("webhook", resolved)
    assert book.already_delivered("webhook", resolved)


def test_a_schema_1_file_loads_with_no_delivery_records_and_counts_notified_as_delivered_everywhere(
    tmp_path: Path,
) -> None:
    state = tmp_path / "alerts.json"
    book = AlertBook(POLICY, state_file=state)
    book.evaluate([finding("violation"), finding("violation", subject="acc2")], T0)
    mark_notified(book, ("alpha", POOL, "acc1"), T0)
    document = json.loads(state.read_text(encoding="utf-8"))
    document["schema_version"] = 1
    for record in document["alerts"]:
        del record["delivered_to"], record["resolution_delivered_to"]
    state.write_text(json.dumps(document), encoding="utf-8")

    old = AlertBook(POLICY, state_file=state)
    assert old.load(T0 + 10)
    assert [(r.finding.subject, r.delivered_to, r.notified) for r in old.records()] == [
        ("acc1", (), True),
        ("acc2", (), False),
    ]
    notified, never = (firing_of(old, ("alpha", POOL, s), T0) for s in ("acc1", "acc2"))
    assert old.already_delivered("webhook", notified)
    assert old.missing_firing(notified, ["webhook"]) == []
    assert not old.already_delivered("webhook", never)
    assert old.missing_firing(never, ["webhook"]) == ["webhook"]
    old.save(T0 + 11)
    assert json.loads(state.read_text(encoding="utf-8"))["schema_version"] == 2
