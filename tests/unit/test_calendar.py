"""Regional bans and blackout windows, judged by the calendar day and clock in the site's own time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from collector.compliance.calendar import site_restrictions
from collector.config import Ban, PermitVersion, Site

IRK = Site.model_validate({"id": "irk-1", "region": "RU-IRK", "timezone": "Asia/Irkutsk"})  # UTC+8


def _ban(**overrides: Any) -> Ban:
    fields: dict[str, Any] = {
        "id": "seasonal",
        "kind": "seasonal",
        "regions": ["RU-IRK", "RU-BU"],
        "season_start": "11-15",
        "season_end": "03-15",
        "valid_from": "2025-11-15",
        "valid_to": "2031-03-15",
    }
    return Ban.model_validate(fields | overrides)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("moment", "blackout"),
    [
        ("2026-11-14T15:30:00+00:00", False),  # 23:30 on 14 Nov in Irkutsk
        ("2026-11-14T17:30:00+00:00", True),  # 01:30 on 15 Nov in Irkutsk, still 14 Nov in UTC
        ("2027-01-01T00:00:00+08:00", True),  # the season wraps New Year
        ("2026-03-15T23:59:00+08:00", True),  # the last day is included
        ("2026-03-15T16:30:00+00:00", False),  # 00:30 on 16 Mar in Irkutsk, still 15 Mar in UTC
        ("2026-07-01T12:00:00+00:00", False),
    ],
)
def test_seasonal_ban_is_judged_by_the_sites_calendar_day(moment: str, blackout: bool) -> None:
    restrictions = site_restrictions(IRK, [_ban()], None, _at(moment))

    assert restrictions.blackout is blackout
    assert restrictions.banned is False
    assert restrictions.ban_ids == (("seasonal",) if blackout else ())


def test_the_same_instant_is_outside_the_season_for_a_site_on_utc() -> None:
    utc_site = IRK.model_copy(update={"timezone": "UTC"})

    assert not site_restrictions(utc_site, [_ban()], None, _at("2026-11-14T17:30:00+00:00")).blackout


def test_a_site_in_another_region_is_not_covered() -> None:
    tver = Site.model_validate({"id": "tver-1", "region": "RU-TVE", "timezone": "Europe/Moscow"})

    assert not site_restrictions(tver, [_ban()], None, _at("2026-12-01T12:00:00+00:00")).blackout


def test_full_ban_bans_from_its_first_local_day() -> None:
    full = _ban(id="full", kind="full", season_start=None, season_end=None, valid_from="2026-01-01")

    before = site_restrictions(IRK, [full], None, _at("2025-12-31T23:30:00+08:00"))
    first_day = site_restrictions(IRK, [full], None, _at("2025-12-31T16:30:00+00:00"))  # 00:30 local on 1 Jan

    assert (before.banned, before.blackout) == (False, False)
    assert (first_day.banned, first_day.blackout) == (True, False)
    assert first_day.ban_ids == ("full",)


def test_ban_ends_after_its_valid_to_day() -> None:
    ended = _ban(valid_to="2026-03-01")

    assert site_restrictions(IRK, [ended], None, _at("2026-03-01T12:00:00+08:00")).blackout
    assert not site_restrictions(IRK, [ended], None, _at("2026-03-02T12:00:00+08:00")).blackout


def test_announced_bans_are_recorded_but_not_applied() -> None:
    announced = _ban(id="draft", kind="full", season_start=None, season_end=None, status="announced")

    restrictions = site_restrictions(IRK, [announced], None, _at("2026-12-01T12:00:00+08:00"))

    assert (restrictions.banned, restrictions.blackout, restrictions.ban_ids) == (False, False, ())


@pytest.mark.parametrize(
    ("oktmo", "banned"), [("25714000", True), ("25714000101", True), ("25701000", False), (None, False)]
)
def test_municipal_ban_covers_only_sites_whose_oktmo_has_a_listed_prefix(oktmo: str | None, banned: bool) -> None:
    municipal = _ban(id="south", kind="full", season_start=None, season_end=None, municipal_only=True, oktmo=["25714"])
    site = IRK.model_copy(update={"oktmo": oktmo})

    assert site_restrictions(site, [municipal], None, _at("2026-06-01T12:00:00+08:00")).banned is banned


def _permit_with_window(sites: list[str]) -> PermitVersion:
    return PermitVersion.model_validate(
        {
            "version": "p1",
            "valid_from": "2025-08-01",
            "coins": ["BTC"],
            "pools": ["braiins"],
            "blackouts": [{"start": "2026-01-10T18:00:00", "end": "2026-01-10T22:00:00", "sites": sites}],
        }
    )


@pytest.mark.parametrize(
    ("moment", "blackout"),
    [
        ("2026-01-10T09:59:00+00:00", False),  # 17:59 local
        ("2026-01-10T10:00:00+00:00", True),  # 18:00 local: the start is included
        ("2026-01-10T13:59:00+00:00", True),
        ("2026-01-10T14:00:00+00:00", False),  # 22:00 local: the end is excluded
        ("2026-01-10T18:30:00+00:00", False),  # 18:30 UTC would be inside if the window were read as UTC
    ],
)
def test_permit_blackout_window_is_in_site_local_time(moment: str, blackout: bool) -> None:
    restrictions = site_restrictions(IRK, [], _permit_with_window(["irk-1"]), _at(moment))

    assert restrictions.blackout is blackout
    assert restrictions.banned is False


def test_permit_blackout_window_applies_only_to_its_sites() -> None:
    inside = _at("2026-01-10T11:00:00+00:00")

    assert not site_restrictions(IRK, [], _permit_with_window(["irk-2"]), inside).blackout
    assert site_restrictions(IRK, [], _permit_with_window([]), inside).blackout  # no sites: every site
