"""ComplianceEngine: a round judges, records transitions as `violation` points, and hands notifications on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.adapters.registry import source_registry
from collector.app import Collector, build_collector
from collector.compliance.alerts import AlertBook
from collector.compliance.delivery import Delivery, DeliveryFailed, LogNotifier
from collector.compliance.engine import ComplianceEngine, delivery_for_book
from collector.compliance.findings import AlertEvent
from collector.compliance.observe import GroupObserver
from collector.config import load_config
from collector.models import PoolAccountSnapshot
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from unit.support import REPO

NOW = 1_795_262_400.0


class Recording:
    """A notifier that keeps what it was sent."""

    name = "recording"
    resend_interval_s = 60.0

    def __init__(self) -> None:
        self.sent: list[AlertEvent] = []

    def send(self, events: Sequence[AlertEvent]) -> None:
        self.sent.extend(events)


@pytest.fixture
def collector() -> Collector:
    config = load_config(REPO / "config" / "demo" / "minewatch.toml", source_registry(), redactor=Redactor())
    return build_collector(config, source_registry(), MemorySink(), redactor=Redactor(), log=logging.getLogger("t"))


def engine_for(collector: Collector, state_file: Path, notifier: Recording, grace_s: float = 0.0) -> ComplianceEngine:
    config = collector.config
    book = AlertBook(config.main.alerting, config.groups, state_file=state_file)
    book.load(NOW)
    observer = GroupObserver(
        collector.state, collector.targets, [], config.regions.bans, history_s=600, stale_after_s=600
    )

    def delivered(name: str, events: Sequence[AlertEvent]) -> None:
        book.record_delivery(name, events, NOW, primary=True)

    delivery = Delivery([notifier], on_delivered=delivered)
    return ComplianceEngine(
        observer,
        config.main.compliance.model_copy(update={"stale_after_s": 600.0}),
        book,
        delivery,
        collector.sink,
        started_at=NOW,
        grace_s=grace_s,
    )


def hashing_on_a_foreign_pool(collector: Collector, hashrate_hs: float = 9e14) -> None:
    [emcd] = [t for t in collector.targets if t.account.id == "baikal_x"]
    collector.state.record_success(
        emcd.key, PoolAccountSnapshot(int(NOW), "BTC", hashrate_hs=hashrate_hs), at=NOW, duration_s=0.1
    )


def test_a_violation_fires_once_is_recorded_and_is_not_notified_again_after_a_restart(
    collector: Collector, tmp_path: Path
) -> None:
    hashing_on_a_foreign_pool(collector)
    notifier = Recording()
    engine = engine_for(collector, tmp_path / "alerts.json", notifier)
    group = collector.config.group("baikal")

    engine.evaluate(group, NOW)
    engine.delivery.flush(0.0)
    engine.evaluate(group, NOW + 20)
    engine.delivery.flush(1.0)

    fired = [(e.finding.rule, e.finding.subject) for e in notifier.sent if e.state == "firing"]
    assert fired.count(("pool_whitelist", "baikal_x")) == 1
    sink = collector.sink
    assert isinstance(sink, MemorySink)
    assert any(line.startswith("violation,") and 'subject="baikal_x"' in line for line in sink.lines)

    again = Recording()
    restarted = engine_for(collector, tmp_path / "alerts.json", again)
    restarted.evaluate(group, NOW + 40)
    restarted.delivery.flush(2.0)
    assert [e for e in again.sent if e.finding.subject == "baikal_x"] == []
    # A minute after it was last notified, the firing alert is re-sent (Alertmanager would let it expire).
    restarted.evaluate(group, NOW + 61)
    restarted.delivery.flush(3.0)
    assert [(e.state, e.finding.subject) for e in again.sent if e.finding.rule == "pool_whitelist"] == [
        ("firing", "baikal_x")
    ]


def test_nothing_is_judged_during_the_start_up_grace(collector: Collector, tmp_path: Path) -> None:
    hashing_on_a_foreign_pool(collector)
    engine = engine_for(collector, tmp_path / "alerts.json", Recording(), grace_s=30.0)
    group = collector.config.group("baikal")

    assert engine.evaluate(group, NOW + 10) == []
    assert engine.book.records() == []
    assert any(f.rule == "pool_whitelist" and f.status == "violation" for f in engine.evaluate(group, NOW + 30))


def test_a_resolution_saved_but_not_delivered_before_a_stop_is_delivered_after_the_restart(
    collector: Collector, tmp_path: Path
) -> None:
    hashing_on_a_foreign_pool(collector)
    group = collector.config.group("baikal")
    first = engine_for(collector, tmp_path / "alerts.json", Recording())
    first.evaluate(group, NOW)
    first.delivery.flush(0.0)
    hashing_on_a_foreign_pool(collector, hashrate_hs=0.0)
    first.evaluate(group, NOW + 60)
    first.evaluate(group, NOW + 120)  # ok for keep_firing_s: resolved and saved; stopped before delivery

    after = Recording()
    restarted = engine_for(collector, tmp_path / "alerts.json", after)
    restarted.delivery.flush(1.0)

    assert [(e.state, e.finding.subject) for e in after.sent if e.finding.rule == "pool_whitelist"] == [
        ("resolved", "baikal_x")
    ]
    again = Recording()
    engine_for(collector, tmp_path / "alerts.json", again).delivery.flush(2.0)
    assert [e for e in again.sent if e.finding.rule == "pool_whitelist"] == [], "delivered twice"


class Refusing(Recording):
    """The primary notifier while it is down: every send fails."""

    name = "primary"

    def send(self, events: Sequence[AlertEvent]) -> None:
        raise DeliveryFailed("unreachable", "connection refused")


class Webhook(Recording):
    """A secondary notifier that takes each change once (no re-posts)."""

    name = "webhook"
    resend_interval_s = None  # type: ignore[assignment]


def engine_with(
    collector: Collector, state_file: Path, notifiers: Sequence[Recording], now: float = NOW
) -> ComplianceEngine:
    """An engine whose delivery is built as `minewatch run` builds it (`delivery_for_book`)."""
    config = collector.config
    book = AlertBook(config.main.alerting, config.groups, state_file=state_file)
    book.load(now)
    observer = GroupObserver(
        collector.state, collector.targets, [], config.regions.bans, history_s=600, stale_after_s=600
    )
    delivery = delivery_for_book(notifiers, book, clock=lambda: now, log=logging.getLogger("t"))
    settings = config.main.compliance.model_copy(update={"stale_after_s": 600.0})
    return ComplianceEngine(observer, settings, book, delivery, collector.sink, started_at=now, grace_s=0.0)


def firings(notifier: Recording, subject: str) -> list[float]:
    return [e.started_at for e in notifier.sent if e.state == "firing" and e.finding.subject == subject]


def test_a_re_send_while_the_primary_is_down_does_not_reach_the_webhook_twice(
    collector: Collector, tmp_path: Path
) -> None:
    hashing_on_a_foreign_pool(collector)
    webhook = Webhook()
    engine = engine_with(collector, tmp_path / "alerts.json", [Refusing(), webhook])
    group = collector.config.group("baikal")

    engine.evaluate(group, NOW)
    engine.delivery.flush(0.0)
    assert firings(webhook, "baikal_x") == [NOW]
    # The primary never accepted it, so each round re-sends the firing alert as the change it is.
    engine.evaluate(group, NOW + 61)
    engine.evaluate(group, NOW + 122)
    engine.delivery.flush(500.0)

    assert firings(webhook, "baikal_x") == [NOW], "the webhook got the same firing again"
    assert engine.book.get(("baikal", "pool_whitelist", "baikal_x")) is not None


def test_a_change_the_webhook_took_before_a_kill_is_not_sent_to_it_after_the_restart(
    collector: Collector, tmp_path: Path
) -> None:
    hashing_on_a_foreign_pool(collector)
    group = collector.config.group("baikal")
    first_webhook = Webhook()
    first = engine_with(collector, tmp_path / "alerts.json", [Refusing(), first_webhook])
    first.evaluate(group, NOW)
    first.delivery.flush(0.0)
    assert firings(first_webhook, "baikal_x") == [NOW]
    # Killed here: the primary never took the alert. A new process loads the saved book.
    primary, webhook = Recording(), Webhook()
    restarted = engine_with(collector, tmp_path / "alerts.json", [primary, webhook], now=NOW + 61)
    restarted.evaluate(group, NOW + 61)
    restarted.delivery.flush(0.0)

    assert firings(primary, "baikal_x") == [NOW], "the primary must still get the alert it missed"
    assert firings(webhook, "baikal_x") == [], "the webhook got the firing it had taken before the kill"
    hashing_on_a_foreign_pool(collector, hashrate_hs=0.0)
    restarted.evaluate(group, NOW + 122)
    restarted.evaluate(group, NOW + 183)
    restarted.delivery.flush(1.0)
    resolutions = [e.finding.subject for e in webhook.sent if e.state == "resolved"]
    assert resolutions.count("baikal_x") == 1, "the resolution goes to the webhook once"


class LosingWebhook(Webhook):
    """A webhook whose first copy is lost for good (here: rejected, not retryable; a restart with it queued in
    memory, an expiry or an overflow lose it the same way)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def send(self, events: Sequence[AlertEvent]) -> None:
        if not self.lost:
            self.lost += len(events)
            raise DeliveryFailed("rejected", "HTTP 400", retryable=False)
        super().send(events)


def resolutions(notifier: Recording, subject: str) -> list[float]:
    return [e.started_at for e in notifier.sent if e.state == "resolved" and e.finding.subject == subject]


def test_a_firing_the_webhook_lost_is_offered_to_it_again_with_the_next_re_send(
    collector: Collector, tmp_path: Path
) -> None:
    hashing_on_a_foreign_pool(collector)
    primary, webhook = Recording(), LosingWebhook()
    engine = engine_with(collector, tmp_path / "alerts.json", [primary, webhook])
    group = collector.config.group("baikal")

    engine.evaluate(group, NOW)
    engine.delivery.flush(0.0)
    assert webhook.lost
    assert firings(webhook, "baikal_x") == []
    # The primary took it, so the re-send is a repeat; the webhook, which lacks the firing, gets it as the change.
    engine.evaluate(group, NOW + 61)
    engine.delivery.flush(1.0)
    assert firings(webhook, "baikal_x") == [NOW]
    assert [e.repeat for e in primary.sent if e.finding.subject == "baikal_x"] == [False, True]  # type: ignore[attr-defined]
    engine.evaluate(group, NOW + 122)
    engine.delivery.flush(2.0)
    assert firings(webhook, "baikal_x") == [NOW], "offered again once it had taken it"

    hashing_on_a_foreign_pool(collector, hashrate_hs=0.0)
    engine.evaluate(group, NOW + 183)
    engine.evaluate(group, NOW + 244)
    engine.delivery.flush(3.0)
    assert resolutions(webhook, "baikal_x") == [NOW]


def test_a_webhook_that_never_took_the_firing_gets_no_resolution(collector: Collector, tmp_path: Path) -> None:
    hashing_on_a_foreign_pool(collector)
    primary, webhook = Recording(), LosingWebhook()
    engine = engine_with(collector, tmp_path / "alerts.json", [primary, webhook])
    group = collector.config.group("baikal")
    engine.evaluate(group, NOW)
    engine.delivery.flush(0.0)
    assert webhook.lost

    hashing_on_a_foreign_pool(collector, hashrate_hs=0.0)
    engine.evaluate(group, NOW + 20)
    engine.evaluate(group, NOW + 81)  # resolved (keep_firing_s 60): a re-send due this round is stale
    engine.delivery.flush(1.0)

    assert resolutions(primary, "baikal_x") == [NOW]
    assert firings(webhook, "baikal_x") == []
    assert resolutions(webhook, "baikal_x") == [], "a resolution of an alert the webhook never showed"


class DownWebhook(Webhook):
    """A webhook that refuses everything while `down`."""

    down = True

    def send(self, events: Sequence[AlertEvent]) -> None:
        if self.down:
            raise DeliveryFailed("unreachable", "connection refused")
        super().send(events)


def test_a_resolution_goes_to_a_webhook_whose_firing_is_still_queued(collector: Collector, tmp_path: Path) -> None:
    hashing_on_a_foreign_pool(collector)
    webhook = DownWebhook()
    engine = engine_with(collector, tmp_path / "alerts.json", [Recording(), webhook])
    group = collector.config.group("baikal")
    engine.evaluate(group, NOW)
    engine.delivery.flush(0.0)
    hashing_on_a_foreign_pool(collector, hashrate_hs=0.0)
    engine.evaluate(group, NOW + 20)
    engine.evaluate(group, NOW + 81)
    webhook.down = False
    engine.delivery.flush(100.0)

    assert [(e.state, e.started_at) for e in webhook.sent if e.finding.subject == "baikal_x"] == [
        ("firing", NOW),
        ("resolved", NOW),
    ]


def test_re_sends_while_the_primary_is_down_keep_one_copy_in_its_queue(collector: Collector, tmp_path: Path) -> None:
    hashing_on_a_foreign_pool(collector)
    engine = engine_with(collector, tmp_path / "alerts.json", [Refusing(), Webhook()])
    group = collector.config.group("baikal")
    engine.evaluate(group, NOW)
    queued = engine.delivery.stats()["primary"].queued
    for round_ in range(1, 6):
        engine.evaluate(group, NOW + 61 * round_)
        engine.delivery.flush(float(round_))

    assert engine.delivery.stats()["primary"].queued == queued, "re-sends piled up in the primary's queue"


def test_the_log_notifier_beside_a_primary_is_not_recorded_and_logs_each_transition_once(
    collector: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hashing_on_a_foreign_pool(collector)
    log = LogNotifier(logging.getLogger("t.alerts"))
    engine = engine_with(collector, tmp_path / "alerts.json", [Refusing(), Webhook(), log])  # type: ignore[list-item]
    group = collector.config.group("baikal")
    assert engine.delivery.tracked == ("primary", "webhook")

    with caplog.at_level(logging.WARNING, logger="t.alerts"):
        for round_ in range(4):
            engine.evaluate(group, NOW + 61 * round_)
            engine.delivery.flush(float(round_))

    fired = [r for r in caplog.records if "alert firing: baikal/pool_whitelist/baikal_x" in r.getMessage()]
    assert len(fired) == 1
    record = engine.book.get(("baikal", "pool_whitelist", "baikal_x"))
    assert record is not None
    assert record.delivered_to == ("webhook",)
