"""One compliance round for a group: observe, judge with every rule, step the alerts, record, deliver.

The engine owns no timing: the scheduler calls `evaluate(group, now)` once per interval for each group, and
`Delivery.flush` runs on its own. Each round writes the alert transitions as `violation` points, hands the
notifying ones and the book's due re-sends to delivery, and marks alerts notified once the primary notifier
(Alertmanager if configured, else the webhook, else the log) accepted them, so a restart does not notify
them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

import requests

from collector.compliance import rules
from collector.compliance.alerts import AlertBook, AlertChange
from collector.compliance.delivery import AlertmanagerNotifier, Delivery, LogNotifier, Notifier, WebhookNotifier
from collector.compliance.findings import AlertEvent, Finding, RoundSummary
from collector.compliance.observe import GroupObserver
from collector.compliance.settings import RuleSettings
from collector.config import AlertingConfig, Group
from collector.redact import Redactor
from collector.sinks.base import Sink
from collector.sinks.points import compliance_lines, violation_line


class ComplianceEngine:
    """Judges each group against its permit and drives its alerts (see the module docstring)."""

    def __init__(
        self,
        observer: GroupObserver,
        settings: RuleSettings,
        book: AlertBook,
        delivery: Delivery,
        sink: Sink,
        *,
        started_at: float,
        grace_s: float,
    ) -> None:
        self.observer = observer
        self.settings = settings
        self.book = book
        self.delivery = delivery
        self._sink = sink
        # Resolutions the last run saved but did not deliver before it stopped go out first.
        self.delivery.submit(book.unsent_resolutions())
        # Right after start-up no source has been polled yet: judging then would call every group blind.
        self._judge_from = started_at + grace_s
        self._last_rounds: dict[str, RoundSummary] = {}

    @property
    def last_rounds(self) -> dict[str, RoundSummary]:
        """Each group's latest judged round (a copy: the exporter reads it while rounds run)."""
        return dict(self._last_rounds)

    def evaluate(self, group: Group, now: float) -> list[Finding]:
        """Run one round for `group` at `now`; return its findings (the transitions went to sink and delivery).

        Within the start-up grace (one interval and one poll timeout: every source has had its first poll)
        the round only observes, so the history fills, and judges nothing.
        """
        view = self.observer.observe(group, now)
        # Re-sends go out during the grace too: after a restart, Alertmanager must not let open alerts expire.
        resends = [self._resend(event) for event in self.book.due_for_resend(now) if event.finding.group_id == group.id]
        if now < self._judge_from:
            self.delivery.submit(resends)
            return []
        findings = rules.evaluate(view, self.settings)
        changes = self.book.evaluate(findings, now)
        # Delivery first: the book has already saved the transition, so nothing may stand between the two.
        self.delivery.submit([*changes, *resends])
        summary = self.observer.summarize(view, findings)
        self._last_rounds[group.id] = summary
        transitions = [violation_line(change, note=change.excuse) for change in changes]
        self._sink.write([*transitions, *compliance_lines(summary)])
        return findings

    def _resend(self, event: AlertChange) -> AlertChange:
        """A re-send of an alert nobody accepted yet (a restart between saving and delivering, a notifier down)
        goes to every notifier as the firing it is, not only to those that take repeats."""
        record = self.book.get(event.finding.key)
        return event if record is not None and record.notified else replace(event, repeat=False)


def build_delivery(
    policy: AlertingConfig,
    book: AlertBook,
    *,
    redactor: Redactor,
    clock: Callable[[], float],
    log: logging.Logger,
    round_interval_s: float,
    timeout_s: float = 10.0,
) -> Delivery:
    """The notifiers the config names (the log always), with the book's re-sends and delivery marks.

    Re-sends happen in the rounds, so Alertmanager is told to keep an alert for three re-send periods or three
    rounds, whichever is longer: a round interval above `resend_s` must not let firing alerts expire.
    """
    session = requests.Session()
    notifiers: list[Notifier] = []
    if policy.alertmanager_url:
        notifiers.append(
            AlertmanagerNotifier(
                policy.alertmanager_url,
                session,
                timeout_s,
                redactor,
                resend_interval_s=max(policy.resend_s, round_interval_s),
                clock=clock,
            )
        )
    if policy.webhook_url:
        notifiers.append(WebhookNotifier(policy.webhook_url, session, timeout_s, redactor))
    notifiers.append(LogNotifier(log.getChild("alerts"), redact=redactor))
    return delivery_for_book(notifiers, book, clock=clock, log=log.getChild("delivery"))


def delivery_for_book(
    notifiers: Sequence[Notifier], book: AlertBook, *, clock: Callable[[], float], log: logging.Logger
) -> Delivery:
    """Delivery that records in `book` what each notifier accepted and never sends a notifier a change twice.

    The first notifier is the primary: its acceptance marks an alert notified (re-sends are timed from it, and a
    restart resumes from it); the others only get what they have not accepted yet.
    """
    primary = notifiers[0].name

    def delivered(name: str, events: Sequence[AlertEvent]) -> None:
        book.record_delivery(name, events, clock())
        if name != primary:
            return
        for event in events:
            if event.state == "firing" and isinstance(event, AlertChange):
                # The round's time, not the delivery's: re-sends then stay on the rounds' rhythm.
                book.mark_notified(event.finding.key, event.at)
            elif event.state == "resolved":
                book.mark_resolution_notified(event.finding.key, event.started_at, event.at)

    return Delivery(notifiers, on_delivered=delivered, already_delivered=book.already_delivered, log=log)
