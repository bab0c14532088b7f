"""One compliance round for a group: observe, judge with every rule, step the alerts, record, deliver.

The engine owns no timing: the scheduler calls `evaluate(group, now)` once per interval for each group, and
`Delivery.flush` runs on its own. Each round writes the alert transitions as `violation` points, hands the
notifying ones and the book's due re-sends to delivery, and records in the book what each notifier accepted
(the primary notifier, Alertmanager if configured, else the webhook, else the log, marks alerts notified), so
neither a re-send nor a restart notifies anyone twice, and a notifier that missed a firing is offered it again
with each re-send until it takes it.
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
        resends = [event for event in self.book.due_for_resend(now) if event.finding.group_id == group.id]
        if now < self._judge_from:
            self._submit_resends(resends)
            return []
        findings = rules.evaluate(view, self.settings)
        changes = self.book.evaluate(findings, now)
        # Delivery first: the book has already saved the transition, so nothing may stand between the two.
        self.delivery.submit(changes)
        # A re-send of an alert that changed in this round is stale (queued after its resolution, it would open
        # the alert again downstream).
        changed = {change.finding.key for change in changes}
        self._submit_resends([event for event in resends if event.finding.key not in changed])
        summary = self.observer.summarize(view, findings)
        self._last_rounds[group.id] = summary
        transitions = [violation_line(change, note=change.excuse) for change in changes]
        self._sink.write([*transitions, *compliance_lines(summary)])
        return findings

    def _submit_resends(self, resends: Sequence[AlertChange]) -> None:
        """Hand the due re-sends to delivery: each as a repeat (re-posting notifiers keep it alive), and, to the
        tracked notifiers that never took this firing (the primary while it was down, a webhook whose copy was
        dropped or lost in a restart), once more as the firing it is. `already_delivered` keeps those that took it
        out, and delivery's queue holds one copy of it at most."""
        for event in resends:
            missing = self.book.missing_firing(event, self.delivery.tracked)
            if missing:
                self.delivery.submit([replace(event, repeat=False)], only=missing)
        self.delivery.submit(resends)


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
    restart resumes from it); the others only get what they have not accepted yet. One `record_delivery` (one
    save) per delivered batch. A log notifier other than the primary is not tracked: a log line cannot be lost
    downstream nor deduplicated by a receiver, so recording it would cost a save per batch for nothing; it logs
    each transition once, and is never re-offered a firing nor refused a resolution.
    """
    primary = notifiers[0].name
    tracked = [n.name for n in notifiers if n.name == primary or not isinstance(n, LogNotifier)]

    def delivered(name: str, events: Sequence[AlertEvent]) -> None:
        book.record_delivery(name, events, clock(), primary=name == primary)

    return Delivery(
        notifiers,
        on_delivered=delivered,
        already_delivered=book.already_delivered,
        took_firing=book.took_firing,
        tracked=tracked,
        log=log,
    )
