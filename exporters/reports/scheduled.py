"""The daemon's side of the monthly report: generate what is due, remember it, tell the webhook.

`ScheduledReports.run_due(now)` is what the scheduler calls (at start and then every check): it never raises
into the daemon. A failed month is logged and stays due, but is not tried again before a backoff (1 h, doubling
up to 24 h, kept in memory: a restart tries at once); the webhook hears `monthly_report_failed` once per streak
of failures of a month, and `monthly_report` when it is written.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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

FIRST_BACKOFF = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=24)
ERROR_TEXT_LIMIT = 200
# Credentials in a URL (`//user:pass@`), query strings, and long token-like runs are cut from the error text sent.
_URL_USERINFO = re.compile(r"//[^/\s@]+@")
_QUERY = re.compile(r"\?\S*")
_TOKENISH = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


def short_error(exc: BaseException, redact: Callable[[str], str] | None = None) -> str:
    """`Type: message`, one line, secrets redacted (`redact`, then anything that looks like a credential), short."""
    text = " ".join(str(exc).split())
    if redact is not None:
        text = redact(text)
    text = _TOKENISH.sub("***", _QUERY.sub("?***", _URL_USERINFO.sub("//***@", text)))
    if len(text) > ERROR_TEXT_LIMIT:
        text = text[: ERROR_TEXT_LIMIT - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    """POST `{"event": "monthly_report", "month", "files"}`; False (logged) on any failure. Never raises."""
    try:
        payload = {"event": "monthly_report", "month": result.month, "files": [str(p) for p in result.paths]}
    except Exception as exc:
        log.warning("report notice not sent: %s", type(exc).__name__)
        return False
    return post_notice(url, payload, timeout_s=timeout_s, session=session)


def post_notice(
    url: str, payload: Mapping[str, object], *, timeout_s: float, session: requests.Session | None = None
) -> bool:
    """POST one JSON notice; False (logged by exception type / HTTP status) on any failure. Never raises."""
    try:
        poster = session or requests
        response = poster.post(url, json=payload, timeout=timeout_s)
        if not 200 <= response.status_code < 300:
            log.warning("report notice refused by webhook: HTTP %d", response.status_code)
            return False
    except Exception as exc:
        log.warning("report notice to webhook failed: %s", type(exc).__name__)
        return False
    return True


@dataclass
class _Failing:
    """A month whose last attempt failed: when to try again, the current backoff, and whether the webhook heard."""

    retry_at: datetime
    backoff: timedelta
    announced: bool = False


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
    redact: Callable[[str], str] | None = None
    # In memory only: a restart forgets backoffs (the state file records successes only).
    failing: dict[Month, _Failing] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        config: AppConfig,
        settings: ReportSettings,
        transport: QueryTransport,
        redact: Callable[[str], str] | None = None,
    ) -> ScheduledReports:
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
            redact=redact,
        )

    def run_due(self, now: datetime) -> list[ReportResult]:
        """Generate every due month, oldest first; stop at the first failure (it stays due) or at a month still
        backing off after a failure. Never raises."""
        done: list[ReportResult] = []
        schedule = ReportSchedule(self.settings)
        try:
            due = schedule.due_months(read_last_month(self.state_file), now)
        except Exception:
            log.exception("could not work out which monthly reports are due")
            return done
        for month in due:
            failing = self.failing.get(month)
            if failing is not None and now < failing.retry_at:
                log.debug("monthly report %s failed before; next try at %s", month, failing.retry_at.isoformat())
                break
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
            except Exception as exc:
                self._failed(month, exc, now)
                break
            self.failing.pop(month, None)
            log.info("monthly report %s written: %d rows, %d files", month, len(result.rows), len(result.paths))
            if self.webhook_url:
                notify(self.webhook_url, result, timeout_s=self.settings.webhook_timeout_s)
            done.append(result)
        return done

    def _failed(self, month: Month, exc: Exception, now: datetime) -> None:
        """Back off (1 h, doubling to 24 h) and tell the webhook once per streak of failures."""
        try:
            before = self.failing.get(month)
            backoff = FIRST_BACKOFF if before is None else min(MAX_BACKOFF, before.backoff * 2)
            entry = _Failing(now + backoff, backoff, announced=before is not None and before.announced)
            self.failing[month] = entry
            log.error(
                "monthly report %s failed (%s); it stays due, next try in %s",
                month,
                short_error(exc, self.redact),
                backoff,
                exc_info=exc,
            )
            if self.webhook_url and not entry.announced:
                payload: dict[str, object] = {
                    "event": "monthly_report_failed",
                    "month": str(month),
                    "error": short_error(exc, self.redact),
                }
                entry.announced = post_notice(self.webhook_url, payload, timeout_s=self.settings.webhook_timeout_s)
        except Exception:
            log.exception("could not record the failure of monthly report %s", month)
