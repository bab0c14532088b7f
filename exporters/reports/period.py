"""Reporting months: parsing `YYYY-MM`, a month's bounds in a time zone, the filing due date."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"(\d{4})-(\d{2})")
LATEST_ZONE_OFFSET = timedelta(hours=14)  # UTC+14: the zone whose date is the latest
FILING_DAY = 20  # the FNS duty: the report is filed by the 20th of the month after the reporting month


class MonthError(ValueError):
    """A `--month` value that is not a reporting month; the message says what is wrong and what is expected."""


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month, independent of any time zone."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next().first_day.toordinal() - 1)

    @property
    def filing_due(self) -> date:
        following = self.next()
        return date(following.year, following.month, FILING_DAY)

    def window(self, zone: str) -> MonthWindow:
        """The month from local midnight of its first day to local midnight of the next month's, in `zone`."""
        tz = ZoneInfo(zone)
        start = datetime(self.year, self.month, 1, tzinfo=tz).astimezone(UTC)
        following = self.next()
        end = datetime(following.year, following.month, 1, tzinfo=tz).astimezone(UTC)
        return MonthWindow(start, end)

    @classmethod
    def of(cls, moment: date) -> Month:
        return cls(moment.year, moment.month)


@dataclass(frozen=True, order=True, slots=True)
class MonthWindow:
    """A half-open UTC interval [start, end): a month as one time zone sees it (28–31 days ± a DST hour)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def start_ns(self) -> int:
        return _ns(self.start)

    def end_ns(self) -> int:
        return _ns(self.end)


def _ns(moment: datetime) -> int:
    # Through the integer timestamp, not float seconds: nanoseconds must stay exact.
    return int(moment.timestamp()) * 1_000_000_000


def parse_month(text: str, *, now: datetime | None = None) -> Month:
    """`YYYY-MM` → Month; a month that has not started yet (relative to `now`) is refused too.

    Raises MonthError with a message that names the bad part.
    """
    value = text.strip()
    match = _MONTH.fullmatch(value)
    if match is None:
        raise MonthError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-10")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise MonthError(f"--month {text!r}: month {month:02d} is not 01..12")
    if year < 2009:  # nothing was mined before Bitcoin's first block
        raise MonthError(f"--month {text!r}: year {year} is before 2009")
    parsed = Month(year, month)
    if now is not None:
        # A month has started once it has started in some zone: the latest local date anywhere is UTC+14 (Kiribati),
        # so at 01:00 in Moscow on 1 November (22:00 UTC on 31 October) November may be asked for already.
        latest = (now.astimezone(UTC) + LATEST_ZONE_OFFSET).date()
        if parsed > Month.of(latest):
            raise MonthError(
                f"--month {text!r}: that month has not started yet anywhere (the latest local date is "
                f"{latest.isoformat()})"
            )
    return parsed


def utc_stamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` (`2026-11-01T06:30:00Z`): period bounds and generation times alike."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
