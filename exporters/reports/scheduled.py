"""The daemon's side of the monthly report: generate what is due, remember it, tell the webhook.

`ScheduledReports.run_due(now)` is what the scheduler calls (at start and then hourly, say): it never raises
into the daemon; a failed month is logged and stays due, so the next call tries it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

from collector.atomic import write_atomically
from collector.config import AppConfig
from exporters.reports.generate import ReportResult, generate_monthly
from exporters.reports.period import Month, MonthError, parse_month
from exporters.reports.queries import QueryTransport
from exporters.reports.schedule import ReportSchedule
from exporters.reports.settings import ReportSettings

log = logging.getLogger(__name__)


def read_last_month(path: Path) -> Month | None:
    """The last month recorded in the state file; None when there is none or it cannot be read (logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return parse_month(str(data["last_month"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, MonthError) as exc:
        log.warning("report state file %s unreadable (%s); treating it as empty", path, exc)
        return None


def write_last_month(path: Path, month: Month, now: datetime) -> None:
    """Record `month` atomically: a crash mid-write leaves the old state, never half a file."""
    write_atomically(path, json.dumps({"last_month": str(month), "written_at": now.isoformat()}))


def notify(url: str, result: ReportResult, *, timeout_s: float, session: requests.Session | None = None) -> bool:
    """POST `{"event": "monthly_report", "month", "files"}`; False (logged) on any failure."""
    payload = {"event": "monthly_report", "month": result.month, "files": [str(p) for p in result.paths]}
    poster = session or requests
    try:
        response = poster.post(url, json=payload, timeout=timeout_s)
    except requests.RequestException as exc:
        log.warning("report notice to webhook failed: %s", type(exc).__name__)
        return False
    if not 200 <= response.status_code < 300:
        log.warning("report notice refused by webhook: HTTP %d", response.status_code)
        return False
    return True


@dataclass
class ScheduledReports:
    """Generates due months into `out_dir`, records each in `state_file`, notifies `webhook_url` if set."""

    config: AppConfig
    settings: ReportSettings
    transport: QueryTransport
    out_dir: Path
    state_file: Path
    webhook_url: str | None = None
    generate: Callable[..., ReportResult] = generate_monthly

    @classmethod
    def from_config(cls, config: AppConfig, settings: ReportSettings, transport: QueryTransport) -> ScheduledReports:
        """Paths relative to the main config file, as the settings say; the alerting webhook by default."""
        base = config.path.parent
        return cls(
            config=config,
            settings=settings,
            transport=transport,
            out_dir=base / settings.out_dir,
            state_file=base / settings.state_file,
            # The report notice goes where alert notices go unless it has its own webhook.
            webhook_url=settings.webhook_url or config.main.alerting.webhook_url,
        )

    def run_due(self, now: datetime) -> list[ReportResult]:
        """Generate every due month, oldest first; stop at the first failure (it stays due). Never raises."""
        done: list[ReportResult] = []
        schedule = ReportSchedule(self.settings)
        try:
            due = schedule.due_months(read_last_month(self.state_file), now)
        except Exception:
            log.exception("could not work out which monthly reports are due")
            return done
        for month in due:
            try:
                result = self.generate(
                    self.config,
                    str(month),
                    transport=self.transport,
                    formats=self.settings.formats,
                    out_dir=self.out_dir,
                    now=now,
                    progress=None,
                )
                write_last_month(self.state_file, month, now)
            except Exception:
                log.exception("monthly report %s failed; it stays due", month)
                break
            log.info("monthly report %s written: %d rows, %d files", month, len(result.rows), len(result.paths))
            if self.webhook_url:
                notify(self.webhook_url, result, timeout_s=self.settings.webhook_timeout_s)
            done.append(result)
        return done
