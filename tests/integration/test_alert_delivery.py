"""Alert delivery against a real Alertmanager (Debian's prometheus-alertmanager) and local HTTP receivers.

The session Alertmanager (tests/conftest.py) notifies `alert_receiver` with 1 s group waits; every test uses
its own group_id, so tests sharing the server and the receiver never see each other's alerts.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import requests
from servers import StubHTTPServer, StubResponse, free_port

from collector.compliance.alerts import AlertChange
from collector.compliance.delivery import (
    AlertmanagerNotifier,
    Delivery,
    DeliveryFailed,
    LogNotifier,
    RetryPolicy,
    WebhookNotifier,
    is_repeat,
    rfc3339,
)
from collector.compliance.findings import AlertEvent, AlertState, Finding
from collector.redact import Redactor
from simulator.local_servers import AlertmanagerServer

pytestmark = pytest.mark.integration

WAIT_S = 10.0


def finding(group_id: str, *, rule: str = "pool_whitelist", subject: str = "acct-1") -> Finding:
    """A permit violation as the rules produce it."""
    return Finding(
        group_id=group_id,
        rule=rule,
        subject=subject,
        status="violation",
        severity="critical",
        value=1.5e14,
        limit=1e14,
        evidence="account acct-1 mines on pool.example (not permitted)\nsince the 10:00 poll",
        permit_version="2024-01",
    )


def event(found: Finding, state: AlertState, *, at: float, started_at: float) -> AlertEvent:
    return AlertEvent(finding=found, state=state, at=at, started_at=started_at)


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(condition: Callable[[], Any], *, timeout_s: float = WAIT_S, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


def notifications(receiver: StubHTTPServer, group_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(status, alert) for every alert of `group_id` in the notifications Alertmanager sent to the receiver."""
    found: list[tuple[str, dict[str, Any]]] = []
    for request in list(receiver.requests):
        if request.path != "/alertmanager":
            continue
        for alert in json.loads(request.body)["alerts"]:
            if alert["labels"].get("group_id") == group_id:
                found.append((alert["status"], alert))
    return found


def am_alerts(alertmanager: AlertmanagerServer, group_id: str) -> list[dict[str, Any]]:
    return alertmanager.alerts(filter=f'group_id="{group_id}"')


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture
def running_alertmanager(alertmanager: AlertmanagerServer) -> AlertmanagerServer:
    """The session Alertmanager, started again if an earlier test stopped it and failed before restarting."""
    if not alertmanager.is_running:
        alertmanager.start()
    return alertmanager


def am_delivery(
    alertmanager: AlertmanagerServer, session: requests.Session, **kwargs: Any
) -> tuple[Delivery, AlertmanagerNotifier]:
    notifier = AlertmanagerNotifier(alertmanager.url, session, 5.0, Redactor(), **kwargs)
    return Delivery([notifier]), notifier


def test_alertmanager_payload_is_exact() -> None:
    """The documented shape: labels, annotations, startsAt; endsAt in the future while firing, else resolution."""
    found = finding("g-shape")
    notifier = AlertmanagerNotifier(
        "http://127.0.0.1:9",
        requests.Session(),
        1.0,
        Redactor(),
        resend_interval_s=60.0,
        clock=lambda: 1_700_000_000.0,
    )
    started = 1_699_999_900.0
    states: list[AlertState] = ["pending", "firing", "excused", "resolved"]
    events = [
        event(found, state, at=1_700_000_500.0 if state == "resolved" else started, started_at=started)
        for state in states
    ]
    labels = {
        "alertname": "pool_whitelist",
        "group_id": "g-shape",
        "rule": "pool_whitelist",
        "severity": "critical",
        "kind": "permit",
        "subject": "acct-1",
    }
    annotations = {
        "value": "150000000000000",
        "limit": "100000000000000",
        "evidence": "account acct-1 mines on pool.example (not permitted)\nsince the 10:00 poll",
        "permit_version": "2024-01",
        "summary": "g-shape: pool_whitelist (acct-1): account acct-1 mines on pool.example (not permitted)",
    }
    assert notifier.payload(events) == [
        # pending and excused never notify; firing is valid for 3 resend intervals from now (22:13:20 + 180 s)
        {
            "labels": labels,
            "annotations": annotations,
            "startsAt": "2023-11-14T22:11:40.000Z",
            "endsAt": "2023-11-14T22:16:20.000Z",
        },
        {
            "labels": labels,
            "annotations": annotations,
            "startsAt": "2023-11-14T22:11:40.000Z",
            "endsAt": "2023-11-14T22:21:40.000Z",
        },
    ]
    group_wide = Finding("g-shape", "collector_blind", "", "unknown", "warning", None, None, "", None, True)
    [alert] = notifier.payload([event(group_wide, "firing", at=started, started_at=started)])
    assert alert["labels"] == {
        "alertname": "collector_blind",
        "group_id": "g-shape",
        "rule": "collector_blind",
        "severity": "warning",
        "kind": "operational",
    }
    assert alert["annotations"] == {"summary": "g-shape: collector_blind"}


def test_firing_then_resolved_reaches_alertmanager_and_its_receiver(
    running_alertmanager: AlertmanagerServer, alert_receiver: StubHTTPServer, session: requests.Session
) -> None:
    group = unique_group("fire")
    delivery, _ = am_delivery(running_alertmanager, session)
    found = finding(group)
    started = time.time() - 120
    delivery.submit([event(found, "pending", at=started, started_at=started)])
    delivery.submit([event(found, "firing", at=started + 60, started_at=started)])
    assert delivery.flush() == 1

    [alert] = am_alerts(running_alertmanager, group)
    assert alert["labels"] == {
        "alertname": "pool_whitelist",
        "group_id": group,
        "rule": "pool_whitelist",
        "severity": "critical",
        "kind": "permit",
        "subject": "acct-1",
    }
    assert alert["annotations"]["value"] == "150000000000000"
    assert alert["annotations"]["limit"] == "100000000000000"
    assert alert["annotations"]["permit_version"] == "2024-01"
    assert alert["annotations"]["evidence"].startswith("account acct-1 mines on pool.example")
    assert alert["annotations"]["summary"].startswith(f"{group}: pool_whitelist (acct-1): ")
    assert alert["status"]["state"] == "active"
    assert alert["startsAt"] == rfc3339(started)
    status, notified = wait_for(lambda: notifications(alert_receiver, group), what="the firing notification")[0]
    assert status == "firing"
    assert notified["annotations"]["permit_version"] == "2024-01"

    resolved_at = time.time()
    delivery.submit([event(found, "resolved", at=resolved_at, started_at=started)])
    assert delivery.flush() == 1
    # Alertmanager's API lists only alerts that have not ended: a resolved one is gone from it.
    assert am_alerts(running_alertmanager, group) == []
    wait_for(
        lambda: [a for s, a in notifications(alert_receiver, group) if s == "resolved"],
        what="the resolved notification",
    )
    statuses = [s for s, _ in notifications(alert_receiver, group)]
    assert statuses == ["firing", "resolved"], statuses  # once each
    stats = delivery.stats()["alertmanager"]
    assert (stats.delivered, stats.failed_attempts, stats.dropped, stats.queued) == (2, 0, 0, 0)


def test_silenced_alert_is_posted_and_suppressed_not_notified(
    running_alertmanager: AlertmanagerServer, alert_receiver: StubHTTPServer, session: requests.Session
) -> None:
    silenced, control = unique_group("silenced"), unique_group("control")
    silence_id = running_alertmanager.add_silence({"group_id": silenced}, comment="curtailment notice")
    delivery, _ = am_delivery(running_alertmanager, session)
    now = time.time()
    delivery.submit([event(finding(g), "firing", at=now, started_at=now - 60) for g in (silenced, control)])
    assert delivery.flush() == 2

    [alert] = am_alerts(running_alertmanager, silenced)
    assert alert["status"]["state"] == "suppressed"
    assert alert["status"]["silencedBy"] == [silence_id]
    [other] = am_alerts(running_alertmanager, control)
    assert other["status"]["state"] == "active"
    # Both alerts' groups wait the same 1 s; once the control's notification is in, give the silenced one
    # more than another group interval to show up, which it must not.
    wait_for(lambda: notifications(alert_receiver, control), what="the control alert's notification")
    time.sleep(1.5)
    assert notifications(alert_receiver, silenced) == []
    assert delivery.stats()["alertmanager"].delivered == 2


def test_alertmanager_down_events_are_retried_with_backoff_and_delivered(
    running_alertmanager: AlertmanagerServer,
    alert_receiver: StubHTTPServer,
    session: requests.Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = unique_group("outage")
    notifier = AlertmanagerNotifier(running_alertmanager.url, session, 2.0, Redactor())
    delivery = Delivery([notifier], monotonic=lambda: pytest.fail("time is passed explicitly"))
    found = finding(group)
    started = time.time()
    running_alertmanager.stop()
    try:
        delivery.submit([event(found, "firing", at=started, started_at=started)], now=100.0)
        with caplog.at_level(logging.WARNING, logger="collector.compliance.delivery"):
            assert delivery.flush(now=100.0) == 0
            assert delivery.flush(now=100.9) == 0  # backing off 1 s: no attempt
            assert delivery.flush(now=101.0) == 0  # second failure: backs off 2 s
            assert delivery.flush(now=102.9) == 0
        stats = delivery.stats()["alertmanager"]
        assert (stats.failed_attempts, stats.queued, stats.delivered, stats.dropped) == (2, 1, 0, 0)
        assert "alert delivery to alertmanager failed (unreachable)" in caplog.text
    finally:
        running_alertmanager.start()
    assert delivery.flush(now=103.0) == 1
    stats = delivery.stats()["alertmanager"]
    assert (stats.delivered, stats.retried, stats.failed_attempts, stats.queued) == (1, 1, 2, 0)
    [alert] = am_alerts(running_alertmanager, group)
    assert alert["labels"]["group_id"] == group
    wait_for(lambda: notifications(alert_receiver, group), what="the notification after the outage")


def test_unreachable_alertmanager_drops_are_logged_and_counted_and_hide_credentials(
    session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    closed = free_port()
    notifier = AlertmanagerNotifier(f"http://minewatch:hunter2-secret@127.0.0.1:{closed}", session, 1.0, Redactor())
    delivery = Delivery([notifier], policy=RetryPolicy(max_attempts=3, max_queue=2))
    now = time.time()
    events = [event(finding("g-drop", subject=f"acct-{i}"), "firing", at=now, started_at=now) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="collector.compliance.delivery"):
        delivery.submit(events, now=0.0)  # three into a queue of two: the oldest goes
        for at in (0.0, 1.0, 3.0):
            assert delivery.flush(now=at) == 0
    stats = delivery.stats()["alertmanager"]
    assert (stats.failed_attempts, stats.dropped, stats.queued, stats.delivered) == (3, 3, 0, 0)
    drops = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    shown = rfc3339(now)
    assert drops == [
        f"alert event dropped by alertmanager: g-drop/pool_whitelist/acct-0 firing (at {shown}): queue full",
        f"alert event dropped by alertmanager: g-drop/pool_whitelist/acct-1 firing (at {shown}): failed 3 attempts",
        f"alert event dropped by alertmanager: g-drop/pool_whitelist/acct-2 firing (at {shown}): failed 3 attempts",
    ]
    assert "hunter2-secret" not in caplog.text
    assert f"POST http://***@127.0.0.1:{closed}/api/v2/alerts: connection failed" in caplog.text


def test_dropped_when_too_old(session: requests.Session, caplog: pytest.LogCaptureFixture) -> None:
    notifier = AlertmanagerNotifier(f"http://127.0.0.1:{free_port()}", session, 1.0, Redactor())
    delivery = Delivery([notifier], policy=RetryPolicy(max_age_s=30.0))
    now = time.time()
    delivery.submit([event(finding("g-old"), "resolved", at=now, started_at=now - 600)], now=0.0)
    with caplog.at_level(logging.ERROR, logger="collector.compliance.delivery"):
        for at in (0.0, 1.0, 3.0, 7.0, 15.0, 31.0):
            delivery.flush(now=at)
    stats = delivery.stats()["alertmanager"]
    assert (stats.failed_attempts, stats.dropped, stats.queued) == (5, 1, 0)  # at 0, 1, 3, 7, 15
    assert "g-old/pool_whitelist/acct-1 resolved" in caplog.text
    assert "older than 30 s after 5 attempts" in caplog.text


def test_the_books_resends_keep_alertmanagers_alert_alive_without_notifying_again(
    running_alertmanager: AlertmanagerServer, alert_receiver: StubHTTPServer, session: requests.Session
) -> None:
    group = unique_group("resend")
    wall = [time.time()]
    notifier = AlertmanagerNotifier(
        running_alertmanager.url, session, 5.0, Redactor(), resend_interval_s=60.0, clock=lambda: wall[0]
    )
    delivery = Delivery([notifier])
    firing = event(finding(group, subject="a"), "firing", at=wall[0], started_at=wall[0] - 30)
    delivery.submit([firing], now=0.0)
    assert delivery.flush(now=0.0) == 1
    [alert] = am_alerts(running_alertmanager, group)
    assert alert["endsAt"] == rfc3339(wall[0] + 180)

    # A minute later the alert book re-sends it (AlertBook.due_for_resend): endsAt moves on, nobody is told again.
    wall[0] += 60
    resend = AlertChange(firing.finding, "firing", wall[0], firing.started_at, previous="firing", repeat=True)
    delivery.submit([resend], now=60.0)
    assert delivery.flush(now=60.0) == 1
    assert (delivery.stats()["alertmanager"].resent, delivery.stats()["alertmanager"].delivered) == (1, 1)
    [alert] = am_alerts(running_alertmanager, group)
    assert alert["endsAt"] == rfc3339(wall[0] + 180)
    assert alert["startsAt"] == rfc3339(firing.started_at)
    wait_for(lambda: len(notifications(alert_receiver, group)) >= 1, what="the firing notification")
    time.sleep(1.2)  # a re-post must not notify again
    assert [state for state, _ in notifications(alert_receiver, group)] == ["firing"]


def test_webhook_notifier_posts_one_versioned_document(session: requests.Session) -> None:
    with StubHTTPServer([StubResponse(status=200, body="ok")]) as server:
        url = f"http://hook:tok-en-secret@127.0.0.1:{server.port}/minewatch"
        delivery = Delivery([WebhookNotifier(url, session, 5.0, Redactor())])
        found = finding("g-hook")
        delivery.submit(
            [
                event(found, "pending", at=1_700_000_000.0, started_at=1_700_000_000.0),
                event(found, "firing", at=1_700_000_060.0, started_at=1_700_000_000.0),
                event(found, "resolved", at=1_700_000_500.5, started_at=1_700_000_000.0),
                event(finding("g-hook", subject="x"), "excused", at=1_700_000_000.0, started_at=1_700_000_000.0),
            ]
        )
        assert delivery.flush() == 2
        [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/minewatch"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith("Basic ")  # credentials in the URL become basic auth
    labels = {
        "alertname": "pool_whitelist",
        "group_id": "g-hook",
        "rule": "pool_whitelist",
        "severity": "critical",
        "kind": "permit",
        "subject": "acct-1",
    }
    annotations = {
        "value": "150000000000000",
        "limit": "100000000000000",
        "evidence": "account acct-1 mines on pool.example (not permitted)\nsince the 10:00 poll",
        "permit_version": "2024-01",
        "summary": "g-hook: pool_whitelist (acct-1): account acct-1 mines on pool.example (not permitted)",
    }
    document = json.loads(request.body)
    ids = [alert.pop("id") for alert in document["alerts"]]
    assert len(set(ids)) == 2, "the firing and the resolution of one episode have their own ids"
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    again = WebhookNotifier("http://127.0.0.1:1/", session, 5.0, Redactor()).payload(
        [event(found, "firing", at=1_700_000_120.0, started_at=1_700_000_000.0)]
    )
    assert again["alerts"][0]["id"] == ids[0], "a firing sent again must keep its id (receivers dedupe on it)"
    episodes = [alert.pop("episode_id") for alert in document["alerts"]]
    assert episodes[0] == episodes[1], "the firing and the resolution of one episode share its episode_id"
    assert re.fullmatch(r"[0-9a-f]{32}", episodes[0])
    assert episodes[0] not in ids
    assert again["alerts"][0]["episode_id"] == episodes[0]
    other = WebhookNotifier("http://127.0.0.1:1/", session, 5.0, Redactor()).payload(
        [event(found, "firing", at=1_700_000_900.0, started_at=1_700_000_900.0)]
    )
    assert other["alerts"][0]["episode_id"] != episodes[0], "a new episode of the same alert has a new episode_id"
    assert document == {
        "version": 1,
        "alerts": [
            {
                "state": "firing",
                "at": "2023-11-14T22:14:20.000Z",
                "startsAt": "2023-11-14T22:13:20.000Z",
                "endsAt": None,
                "labels": labels,
                "annotations": annotations,
            },
            {
                "state": "resolved",
                "at": "2023-11-14T22:21:40.500Z",
                "startsAt": "2023-11-14T22:13:20.000Z",
                "endsAt": "2023-11-14T22:21:40.500Z",
                "labels": labels,
                "annotations": annotations,
            },
        ],
    }


def test_webhook_failures_redirects_and_rejections(session: requests.Session, caplog: pytest.LogCaptureFixture) -> None:
    script = [
        StubResponse(status=503, body="busy"),
        StubResponse(status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"}),
        StubResponse(status=400, body='{"error": "bad alert"}'),
        StubResponse(status=204),
    ]
    with StubHTTPServer(script) as server:
        notifier = WebhookNotifier(f"http://u:pa55-word-x@127.0.0.1:{server.port}/h", session, 5.0, Redactor())
        with pytest.raises(DeliveryFailed) as raised:
            notifier.send([event(finding("g-x"), "firing", at=0.0, started_at=0.0)])
        assert (raised.value.reason, raised.value.retryable) == ("server_error", True)
        assert "pa55-word-x" not in str(raised.value)

        delivery = Delivery([notifier])
        now = time.time()
        with caplog.at_level(logging.WARNING, logger="collector.compliance.delivery"):
            delivery.submit([event(finding("g-redirect"), "firing", at=now, started_at=now)], now=0.0)
            assert delivery.flush(now=0.0) == 0  # 302: not followed, not retryable: dropped at once
            delivery.submit([event(finding("g-rejected"), "firing", at=now, started_at=now)], now=1.0)
            assert delivery.flush(now=1.0) == 0  # 400: the peer refuses it, retrying cannot help
            delivery.submit([event(finding("g-fine"), "firing", at=now, started_at=now)], now=2.0)
            assert delivery.flush(now=2.0) == 1
        assert [r.path for r in server.requests] == ["/h", "/h", "/h", "/h"]  # nothing went to /elsewhere
    stats = delivery.stats()["webhook"]
    assert (stats.delivered, stats.dropped, stats.failed_attempts) == (1, 2, 2)
    assert "g-redirect/pool_whitelist/acct-1 firing" in caplog.text
    assert "not retryable (redirect)" in caplog.text
    assert "not retryable (rejected)" in caplog.text
    assert "bad alert" in caplog.text
    assert "pa55-word-x" not in caplog.text


def test_log_notifier_writes_one_line_per_event(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.minewatch.alerts")
    redact = Redactor()
    redact.add("s3cret-key")
    notifier = LogNotifier(log, redact=redact)
    found = Finding(
        "g-log", "payout_address", "bc1qxyz", "violation", "critical", 5000.0, "declared", "paid to s3cret-key", "v2"
    )
    with caplog.at_level(logging.INFO, logger="test.minewatch.alerts"):
        notifier.send(
            [
                event(found, "pending", at=1_700_000_000.0, started_at=1_700_000_000.0),
                event(found, "firing", at=1_700_000_060.0, started_at=1_700_000_000.0),
                event(found, "excused", at=1_700_000_060.0, started_at=1_700_000_000.0),
                event(found, "resolved", at=1_700_000_500.0, started_at=1_700_000_000.0),
            ]
        )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "alert firing: g-log/payout_address/bc1qxyz severity=critical kind=permit value=5000 limit=declared "
            "permit_version=v2 since=2023-11-14T22:13:20.000Z: g-log: payout_address (bc1qxyz): paid to ***",
        ),
        (
            logging.INFO,
            "alert resolved: g-log/payout_address/bc1qxyz severity=critical kind=permit value=5000 limit=declared "
            "permit_version=v2 since=2023-11-14T22:13:20.000Z until=2023-11-14T22:21:40.000Z: "
            "g-log: payout_address (bc1qxyz): paid to ***",
        ),
    ]


def test_pending_and_excused_never_notify(session: requests.Session) -> None:
    with StubHTTPServer() as server:
        delivery = Delivery([AlertmanagerNotifier(server.url, session, 5.0, Redactor(), resend_interval_s=60.0)])
        found = finding("g-quiet")
        queued = delivery.submit(
            [event(found, "pending", at=0.0, started_at=0.0), event(found, "excused", at=1.0, started_at=0.0)],
            now=0.0,
        )
        assert queued == 0
        delivery.flush(now=0.0)
        delivery.flush(now=120.0)
        assert server.requests == []


def test_alert_book_changes_notify_flag_repeats_and_delivery_callback(session: requests.Session) -> None:
    """The alert book's `AlertChange`: `notify` decides, re-sends go to Alertmanager only, delivery is reported."""
    delivered: list[tuple[str, list[tuple[str, bool]]]] = []
    with StubHTTPServer() as hook_server, StubHTTPServer() as am_stub:
        am = AlertmanagerNotifier(am_stub.url, session, 5.0, Redactor())
        hook = WebhookNotifier(hook_server.url + "/hook", session, 5.0, Redactor())
        delivery = Delivery(
            [am, hook],
            on_delivered=lambda name, events: delivered.append((name, [(e.state, is_repeat(e)) for e in events])),
        )
        closed_unfired = finding("g-book", subject="short")
        fired = finding("g-book", subject="long")
        assert (
            delivery.submit(
                [
                    AlertChange(closed_unfired, "pending", at=0.0, started_at=0.0),
                    AlertChange(closed_unfired, "resolved", at=5.0, started_at=0.0, previous="pending"),
                    AlertChange(fired, "firing", at=5.0, started_at=0.0, previous="pending"),
                ],
                now=0.0,
            )
            == 1
        )
        assert delivery.flush(now=0.0) == 2  # one firing change, to each notifier
        assert delivery.submit([AlertChange(fired, "firing", at=65.0, started_at=0.0, repeat=True)], now=65.0) == 1
        assert delivery.flush(now=65.0) == 1  # the re-send goes to Alertmanager only
        delivery.flush(now=500.0)  # Delivery re-posts nothing of its own: re-sends are the book's
        am_bodies = [json.loads(r.body) for r in am_stub.requests]
        hook_bodies = [json.loads(r.body) for r in hook_server.requests]
    assert [[a["labels"]["subject"] for a in body] for body in am_bodies] == [["long"], ["long"]]
    assert [[a["state"] for a in body["alerts"]] for body in hook_bodies] == [["firing"]]
    assert delivered == [
        ("alertmanager", [("firing", False)]),
        ("webhook", [("firing", False)]),
        ("alertmanager", [("firing", True)]),
    ]
    am_stats, hook_stats = delivery.stats()["alertmanager"], delivery.stats()["webhook"]
    assert (am_stats.delivered, am_stats.resent, hook_stats.delivered, hook_stats.resent) == (1, 1, 1, 0)


class _SubmitsWhileSending:
    """A notifier during whose first send more events arrive (another thread's `submit`, made deterministic)."""

    name = "probe"
    resend_interval_s = None

    def __init__(self, arriving: list[AlertEvent]) -> None:
        self.delivery: Delivery | None = None
        self.arriving = arriving
        self.sent: list[list[str]] = []

    def send(self, events: Sequence[AlertEvent]) -> None:
        if self.delivery is not None and not self.sent:
            self.delivery.submit(self.arriving, now=0.0)
        self.sent.append([e.finding.subject for e in events])


def test_a_full_queue_never_drops_the_batch_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    now = time.time()
    a, b, c, d = (event(finding("g-full", subject=s), "firing", at=now, started_at=now) for s in "abcd")
    probe = _SubmitsWhileSending([c, d])
    delivery = Delivery([probe], policy=RetryPolicy(max_queue=3, max_batch=2))
    probe.delivery = delivery
    delivery.submit([a, b], now=0.0)
    with caplog.at_level(logging.ERROR, logger="collector.compliance.delivery"):
        assert delivery.flush(now=0.0) == 3
    assert probe.sent == [["a", "b"], ["d"]]
    stats = delivery.stats()["probe"]
    assert (stats.delivered, stats.dropped, stats.queued) == (3, 1, 0)
    assert "g-full/pool_whitelist/c firing" in caplog.text
