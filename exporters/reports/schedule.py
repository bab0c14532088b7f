"""Which monthly reports are due (pure): the previous month once the configured day and hour have passed.

A month M is due at `day` `hour`:00 of month M+1 in the configured zone. Every month after the last one made,
up to the latest due one, is due, so a run missed while the daemon was down is made up at the next start.
With no month made yet, only the latest due month is (a new installation does not back-fill history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from exporters.reports.period import Month
from exporters.reports.settings import ReportSettings

# A made-up run never reaches back further than this (a state file from years ago must not start a flood).
MAX_CATCH_UP = 12


@dataclass(frozen=True)
class ReportSchedule:
    settings: ReportSettings

    def due_at(self, month: Month) -> datetime:
        """When the report of `month` falls due (aware, in the configured zone)."""
        following = month.next()
        zone = ZoneInfo(self.settings.timezone)
        return datetime(following.year, following.month, self.settings.day, self.settings.hour, tzinfo=zone)

    def latest_due(self, now: datetime) -> Month:
        """The newest month whose report is due at `now`."""
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        previous = Month(local.year, local.month).previous()
        return previous if now >= self.due_at(previous) else previous.previous()

    def due_months(self, last_generated: Month | None, now: datetime) -> list[Month]:
        """The months to generate now, oldest first (empty when nothing is due or reports are disabled)."""
        if not self.settings.enabled:
            return []
        latest = self.latest_due(now)
        if last_generated is None:
            return [latest]
        months: list[Month] = []
        month = latest
        while month > last_generated and len(months) < MAX_CATCH_UP:
            months.append(month)
            month = month.previous()
        return sorted(months)

    def next_due(self, now: datetime) -> datetime:
        """When to look again: the due time of the month after the latest one due now."""
        return self.due_at(self.latest_due(now).next())
