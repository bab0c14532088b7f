"""Delivery's lanes: one thread per notifier (a hanging one holds up no other), the hooks asked outside its lock,
one queued copy per change, and resolutions only to notifiers that showed the firing."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from collector.compliance.delivery import Delivery
from collector.compliance.findings import AlertEvent, Finding


class Notifier:
    """Records what it was sent; `hang` makes every send block until released."""

    resend_interval_s = None

    def __init__(self, name: str, *, hang: threading.Event | None = None) -> None:
        self.name = name
        self.sent: list[AlertEvent] = []
        self._hang = hang

    def send(self, events: Sequence[AlertEvent]) -> None:
        if self._hang is not None:
            self._hang.wait(10)
        self.sent.extend(events)


def test_a_hanging_notifier_does_not_hold_up_the_others() -> None:
    release = threading.Event()
    slow, fast = Notifier("webhook", hang=release), Notifier("alertmanager")
    delivery = Delivery([slow, fast])
    stop = threading.Event()
    runner = threading.Thread(target=delivery.run, args=(stop, 0.05), daemon=True)
    runner.start()
    finding = Finding("g1", "pool_whitelist", "a1", "violation", "critical", "emcd", "braiins", "seen", "v1")
    try:
        delivery.submit([AlertEvent(finding, "firing", 100.0, 100.0)])
        deadline = time.monotonic() + 2.0
        while not fast.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [e.state for e in fast.sent] == ["firing"]
        assert slow.sent == []  # still hanging
    finally:
        release.set()
        stop.set()
        runner.join(5)
    assert not runner.is_alive()
    assert [e.state for e in slow.sent] == ["firing"]


FINDING = Finding("g1", "pool_whitelist", "a1", "violation", "critical", "emcd", "braiins", "seen", "v1")


def test_the_hooks_are_asked_before_delivery_takes_its_lock() -> None:
    """The book's hooks take the book's lock (held during an fsyncing save): never nested inside delivery's."""
    held: list[bool] = []

    def hook(name: str, event: AlertEvent) -> bool:
        held.append(delivery._lock.locked())
        return False

    delivery = Delivery([Notifier("webhook")], already_delivered=hook, took_firing=hook)
    delivery.submit([AlertEvent(FINDING, "firing", 100.0, 100.0), AlertEvent(FINDING, "resolved", 160.0, 100.0)])

    assert held
    assert not any(held)


def test_one_change_is_queued_once_however_often_it_is_submitted() -> None:
    firing = AlertEvent(FINDING, "firing", 100.0, 100.0)
    again = AlertEvent(FINDING, "firing", 161.0, 100.0)  # the same change offered again in a later round
    other_episode = AlertEvent(FINDING, "firing", 400.0, 400.0)
    delivery = Delivery([Notifier("webhook")])

    for event in (firing, again, firing, other_episode):
        delivery.submit([event])

    assert delivery.stats()["webhook"].queued == 2


def test_a_resolution_follows_a_firing_just_sent_before_the_caller_recorded_it() -> None:
    """The firing left the queue but `on_delivered` has not recorded it yet: the resolution must still go."""
    notifier = Notifier("webhook")
    delivery = Delivery([notifier], took_firing=lambda name, event: False)
    delivery.submit([AlertEvent(FINDING, "firing", 100.0, 100.0)])
    delivery.flush()
    delivery.submit([AlertEvent(FINDING, "resolved", 160.0, 100.0)])
    delivery.submit([AlertEvent(FINDING, "resolved", 220.0, 200.0)])  # an episode it never saw
    delivery.flush()

    assert [(e.state, e.started_at) for e in notifier.sent] == [("firing", 100.0), ("resolved", 100.0)]


def test_untracked_notifiers_ignore_the_hooks() -> None:
    log, webhook = Notifier("log"), Notifier("webhook")
    recorded: list[str] = []
    delivery = Delivery(
        [webhook, log],
        tracked=["webhook"],
        on_delivered=lambda name, events: recorded.append(name),
        already_delivered=lambda name, event: True,
        took_firing=lambda name, event: False,
    )
    delivery.submit([AlertEvent(FINDING, "firing", 100.0, 100.0), AlertEvent(FINDING, "resolved", 160.0, 100.0)])
    delivery.flush()

    assert webhook.sent == []
    assert [e.state for e in log.sent] == ["firing", "resolved"]
    assert recorded == []
