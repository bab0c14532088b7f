"""`ReportSchedule`: the previous month once day/hour has passed in the configured zone; made-up runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporters.reports.period import Month
from exporters.reports.schedule import MAX_CATCH_UP, ReportSchedule
from exporters.reports.settings import ReportSettings

MOSCOW = ReportSchedule(ReportSettings())  # the 1st, 06:00, Europe/Moscow (UTC+3)


@pytest.mark.parametrize(
    ("now", "latest"),
    [
        (datetime(2026, 11, 1, 2, 59, 59, tzinfo=UTC), Month(2026, 9)),  # 05:59:59 in Moscow: October not yet due
        (datetime(2026, 11, 1, 3, 0, 0, tzinfo=UTC), Month(2026, 10)),  # 06:00 in Moscow
        (datetime(2026, 10, 31, 22, 0, tzinfo=UTC), Month(2026, 9)),  # already 1 Nov in Moscow, but 01:00
        (datetime(2027, 1, 15, tzinfo=UTC), Month(2026, 12)),  # across a year
    ],
)
def test_latest_due_month_at_the_boundary(now: datetime, latest: Month) -> None:
    assert MOSCOW.latest_due(now) == latest


def test_configured_day_and_hour_in_the_configured_zone() -> None:
    schedule = ReportSchedule(ReportSettings(day=5, hour=9, timezone="America/New_York"))
    # 5 Nov 2026 09:00 in New York is 14:00 UTC (EST, after the 1 Nov DST change)
    assert schedule.due_at(Month(2026, 10)) == datetime(2026, 11, 5, 14, tzinfo=UTC)
    assert schedule.due_months(Month(2026, 9), datetime(2026, 11, 5, 13, 59, tzinfo=UTC)) == []
    assert schedule.due_months(Month(2026, 9), datetime(2026, 11, 5, 14, tzinfo=UTC)) == [Month(2026, 10)]


def test_nothing_due_once_the_month_was_made() -> None:
    assert MOSCOW.due_months(Month(2026, 10), datetime(2026, 11, 20, tzinfo=UTC)) == []


def test_months_missed_while_down_are_made_up_oldest_first() -> None:
    now = datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
    assert MOSCOW.due_months(Month(2026, 10), now) == [Month(2026, 11), Month(2026, 12), Month(2027, 1)]


def test_made_up_runs_are_bounded() -> None:
    due = MOSCOW.due_months(Month(2020, 1), datetime(2027, 2, 1, 3, 0, tzinfo=UTC))
    assert len(due) == MAX_CATCH_UP
    assert due[-1] == Month(2027, 1)


def test_first_start_makes_only_the_latest_month() -> None:
    assert MOSCOW.due_months(None, datetime(2026, 11, 2, tzinfo=UTC)) == [Month(2026, 10)]


def test_disabled_means_nothing_is_due() -> None:
    schedule = ReportSchedule(ReportSettings(enabled=False))
    assert schedule.due_months(None, datetime(2026, 11, 2, tzinfo=UTC)) == []


def test_next_due_is_the_following_months_slot() -> None:
    assert MOSCOW.next_due(datetime(2026, 11, 2, tzinfo=UTC)) == datetime(2026, 12, 1, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"day": 29}, "day"),
        ({"hour": 24}, "hour"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"formats": ["csv", "xls"]}, "formats"),
        ({"formats": ["csv", "csv"]}, "once"),
        ({"dya": 1}, "dya"),
    ],
)
def test_settings_refuse_bad_values(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ReportSettings.model_validate(raw)
