"""`--month`: YYYY-MM only, with an error that says what is wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exporters.reports.period import Month, MonthError, parse_month

NOW = datetime(2026, 11, 3, tzinfo=UTC)


def test_a_good_month() -> None:
    month = parse_month("2026-10", now=NOW)
    assert month == Month(2026, 10)
    assert (month.first_day, month.last_day, month.filing_due) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
        date(2026, 11, 20),
    )
    assert Month(2026, 12).filing_due == date(2027, 1, 20)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "month 13 is not 01..12"),
        ("2026-00", "month 00 is not 01..12"),
        ("2026-1", "expected YYYY-MM"),
        ("10-2026", "expected YYYY-MM"),
        ("2026/10", "expected YYYY-MM"),
        ("", "expected YYYY-MM"),
        ("October", "expected YYYY-MM"),
        ("1999-05", "year 1999 is before 2009"),
        ("2026-12", "has not started yet"),
    ],
)
def test_bad_months_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(MonthError, match=message) as caught:
        parse_month(text, now=NOW)
    assert f"--month {text!r}" in str(caught.value)


def test_the_current_month_is_allowed_for_a_partial_report() -> None:
    assert parse_month("2026-11", now=NOW) == Month(2026, 11)


def test_a_month_started_somewhere_is_allowed() -> None:
    # 01:00 in Moscow on 1 November is 22:00 UTC on 31 October: November has begun there (and further east)
    assert parse_month("2026-11", now=datetime(2026, 10, 31, 22, tzinfo=UTC)) == Month(2026, 11)
    # ...but at 09:00 UTC on 31 October it is not yet 1 November anywhere (UTC+14 reaches 23:00)
    with pytest.raises(MonthError, match="has not started yet"):
        parse_month("2026-11", now=datetime(2026, 10, 31, 9, tzinfo=UTC))
