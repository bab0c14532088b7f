"""Delivery.run: each notifier on its own thread, so one that hangs never holds up another."""

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
