"""Delivery of alert events to Alertmanager (API v2), a JSON webhook and the log, with retries and counters.

The alert book hands over `AlertEvent`s; only `firing` and `resolved` ones notify (`pending` and `excused` are
recorded by the caller and go nowhere from here). `Delivery` keeps one bounded FIFO queue per notifier, so a
dead webhook never delays Alertmanager, and retries a failed notifier with exponential backoff. Nothing is lost
silently: an event leaves a queue either delivered or dropped, and every drop is logged with the alert's key and
counted.

Alertmanager forgets an alert whose `endsAt` has passed, so a firing alert must be re-posted to the notifiers
that ask for it (`resend_interval_s`), as Prometheus does; Alertmanager deduplicates by labels, so a re-post
never re-notifies. The caller feeds `Delivery` the alert book's re-sends (`AlertChange.repeat`, from
`AlertBook.due_for_resend`), which go to re-posting notifiers only, never to the webhook or the log (a copy
that is not a repeat re-offers a firing to the notifiers that never took it, see `Delivery.submit`). Events
that carry `notify` (`AlertChange`) are sent only when it is true: a pending alert that closes without firing
resolves silently. Silences are Alertmanager's business: a silenced alert is still posted, Alertmanager
suppresses its notification.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol
from urllib.parse import SplitResult, urlsplit, urlunsplit

import requests

from collector.compliance.findings import AlertEvent, AlertState, Finding
from collector.errors import MinewatchError
from collector.redact import REDACTED, Redactor

NOTIFYING_STATES: Final[frozenset[AlertState]] = frozenset({"firing", "resolved"})
DEFAULT_RESEND_INTERVAL_S = 60.0
MAX_REASON_CHARS = 300
MAX_ANNOTATION_CHARS = 4000
_MAX_ERROR_BODY_BYTES = 2048

FailureReason = Literal["unreachable", "timeout", "server_error", "rate_limited", "rejected", "redirect", "error"]

AlertKey = tuple[str, str, str]


class DeliveryFailed(MinewatchError):
    """A notifier could not deliver a batch.

    `reason` is one of a bounded set (for counters and metric labels); the message is redacted and at most
    `MAX_REASON_CHARS` long. `retryable` is False when sending the same batch again cannot succeed (the peer
    rejected it or redirects), so the queue drops it at once instead of retrying for hours.
    """

    def __init__(self, reason: FailureReason, message: str, *, retryable: bool = True) -> None:
        super().__init__(message[:MAX_REASON_CHARS])
        self.reason: FailureReason = reason
        self.retryable = retryable


class Notifier(Protocol):
    """Something that delivers alert events; `send` returns when the peer accepted them, else raises.

    `name` identifies the notifier in counters and logs (unique within one `Delivery`). A notifier with a
    `resend_interval_s` wants the alerts still firing re-posted at least that often (Alertmanager expires them
    otherwise); `None` means each event is sent once.
    """

    @property
    def name(self) -> str: ...

    @property
    def resend_interval_s(self) -> float | None: ...

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver `events` (in order) or raise `DeliveryFailed`."""
        ...


def notifies(event: AlertEvent) -> bool:
    """Whether an event goes to notifiers: firing or resolved, unless the event itself says not to.

    Read by attribute, not by type: `AlertChange` (the alert book's subclass) carries `notify`; a plain
    `AlertEvent` does not, and then its state decides.
    """
    return event.state in NOTIFYING_STATES and getattr(event, "notify", True) is not False


def is_repeat(event: AlertEvent) -> bool:
    """Whether the event re-sends a firing alert (`AlertChange.repeat`) rather than reporting a change."""
    return getattr(event, "repeat", False) is True


def rfc3339(unix_s: float) -> str:
    """A unix time as RFC 3339 UTC with milliseconds: `2024-11-15T03:00:00.000Z`."""
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_key(event: AlertEvent) -> AlertKey:
    """The alert's identity: (group_id, rule, subject)."""
    return event.finding.key


def shown_key(key: AlertKey) -> str:
    """An alert key as logs show it: `group/rule/subject` (subject omitted when empty)."""
    return "/".join(part for part in key if part)


def episode_id(event: AlertEvent) -> str:
    """A stable key of one alert episode (alert and `started_at`), shared by its firing and its resolution: what a
    receiver that pairs trigger and resolve (PagerDuty's `dedup_key`) wants."""
    group_id, rule, subject = alert_key(event)
    text = "\x1f".join((group_id, rule, subject, rfc3339(event.started_at)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def change_id(event: AlertEvent) -> str:
    """A stable key of one change (alert, episode, state): the same firing or resolution always has the same id.

    The book records each notifier's deliveries, but a collector killed between a webhook accepting a change and
    the book saving that can only send it again; a receiver that drops ids it has seen then shows it once. It
    differs between an episode's firing and its resolution; `episode_id` is the one they share.
    """
    group_id, rule, subject = alert_key(event)
    text = "\x1f".join((group_id, rule, subject, rfc3339(event.started_at), event.state))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _number_text(value: float | str | None) -> str | None:
    """A finding's value or limit as annotation text; floats keep full precision, whole ones drop the `.0`."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return str(value)


def alert_labels(finding: Finding) -> dict[str, str]:
    """The labels that identify an alert in Alertmanager (and the webhook): bounded, no free text but `subject`."""
    labels = {
        "alertname": finding.rule,
        "group_id": finding.group_id,
        "rule": finding.rule,
        "severity": finding.severity,
        "kind": "operational" if finding.operational else "permit",
    }
    if finding.subject:
        labels["subject"] = finding.subject
    return labels


def alert_summary(finding: Finding) -> str:
    """One line a person reads first: `group: rule (subject): first line of the evidence`."""
    subject = f" ({finding.subject})" if finding.subject else ""
    evidence = finding.evidence.strip().splitlines()[0] if finding.evidence.strip() else ""
    line = f"{finding.group_id}: {finding.rule}{subject}" + (f": {evidence}" if evidence else "")
    return line[:MAX_REASON_CHARS]


def alert_annotations(finding: Finding) -> dict[str, str]:
    """value, limit, evidence, permit_version (each only when known) and a one-line summary."""
    annotations: dict[str, str] = {}
    for key, text in (
        ("value", _number_text(finding.value)),
        ("limit", _number_text(finding.limit)),
        ("evidence", finding.evidence or None),
        ("permit_version", finding.permit_version),
    ):
        if text is not None:
            annotations[key] = text[:MAX_ANNOTATION_CHARS]
    annotations["summary"] = alert_summary(finding)
    return annotations


def _episode(event: AlertEvent) -> tuple[AlertKey, float]:
    return alert_key(event), event.started_at


def _redacted(mapping: Mapping[str, str], redact: Redactor) -> dict[str, str]:
    return {key: redact(value) for key, value in mapping.items()}


def _display_url(url: str) -> tuple[str, list[str]]:
    """The URL with its user info masked, and the credentials found in it (to register with the redactor)."""
    parts: SplitResult = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, []
    # A user name is no secret when a password follows it; alone (`https://TOKEN@host`) it is the token.
    secret = parts.password if parts.password else parts.username
    secrets = [secret] if secret else []
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{REDACTED}@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc)), secrets


class _JsonPoster:
    """POSTs one JSON document: no redirects, TLS verified, bounded timeouts, failures as `DeliveryFailed`."""

    def __init__(
        self,
        url: str,
        session: requests.Session,
        *,
        timeout_s: float,
        redact: Redactor,
        headers: Mapping[str, str] | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("a notifier URL must be http:// or https://")
        self.url = url
        self.shown_url, secrets = _display_url(url)
        for secret in secrets:
            redact.add(secret)
        self._session = session
        self._timeout = (min(timeout_s, 5.0), timeout_s)
        self._redact = redact
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        # Never False: a custom CA bundle is the only way to trust a private certificate.
        self._verify: bool | str = ca_bundle or True

    def post(self, document: Any) -> None:
        """Send `document`; return on a 2xx, else raise `DeliveryFailed` (redacted, bounded)."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        where = f"POST {self.shown_url}"
        try:
            with self._session.post(
                self.url,
                data=body,
                headers=self._headers,
                timeout=self._timeout,
                # A redirect could carry the URL's credentials or the alert to another host; receivers do not
                # redirect, so a 3xx is a configuration error, reported and not followed.
                allow_redirects=False,
                verify=self._verify,
                stream=True,
            ) as response:
                status = response.status_code
                if status < 300:
                    return
                detail = response.raw.read(_MAX_ERROR_BODY_BYTES, decode_content=True).decode("utf-8", "replace")
        except requests.Timeout:
            raise DeliveryFailed("timeout", self._redact(f"{where}: timed out")) from None
        except requests.ConnectionError as exc:
            cause = type(exc.__context__ or exc).__name__
            raise DeliveryFailed("unreachable", self._redact(f"{where}: connection failed ({cause})")) from None
        except requests.RequestException as exc:
            raise DeliveryFailed("error", self._redact(f"{where}: request failed ({type(exc).__name__})")) from None
        detail = " ".join(detail.split())[:200]
        message = self._redact(f"{where}: HTTP {status}" + (f": {detail}" if detail else ""))
        if status < 400:
            raise DeliveryFailed("redirect", message + " (redirect not followed)", retryable=False)
        if status == 429:
            raise DeliveryFailed("rate_limited", message)
        if status == 408 or status >= 500:
            raise DeliveryFailed("server_error", message)
        raise DeliveryFailed("rejected", message, retryable=False)


class AlertmanagerNotifier:
    """Posts alerts to Alertmanager's API v2 (`POST <url>/api/v2/alerts`).

    Each alert: labels alertname (= rule), group_id, rule, severity, kind (permit or operational) and subject
    (when not empty); annotations value, limit, evidence, permit_version (when known) and summary; `startsAt`
    = when the violation was first seen. A resolved alert carries `endsAt` = its resolution time. A firing one
    carries `endsAt` = now + `validity_s` (3 resend intervals), so Alertmanager resolves it by itself if
    minewatch stops re-posting it (the collector died), and not while it is merely late.
    """

    def __init__(
        self,
        url: str,
        session: requests.Session,
        timeout_s: float,
        redact: Redactor,
        *,
        name: str = "alertmanager",
        resend_interval_s: float = DEFAULT_RESEND_INTERVAL_S,
        generator_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        ca_bundle: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._resend_interval_s = resend_interval_s
        self.validity_s = 3 * resend_interval_s
        self._redact = redact
        self._generator_url = generator_url
        self._clock = clock
        self._poster = _JsonPoster(
            url.rstrip("/") + "/api/v2/alerts",
            session,
            timeout_s=timeout_s,
            redact=redact,
            headers=headers,
            ca_bundle=ca_bundle,
        )

    @property
    def name(self) -> str:
        """The notifier's name in counters and logs."""
        return self._name

    @property
    def resend_interval_s(self) -> float:
        """How often alerts still firing are re-posted (Alertmanager expires them at `endsAt`)."""
        return self._resend_interval_s

    def payload(self, events: Sequence[AlertEvent]) -> list[dict[str, Any]]:
        """The JSON list `POST /api/v2/alerts` takes; events that do not notify are left out."""
        now = self._clock()
        alerts: list[dict[str, Any]] = []
        for event in events:
            if not notifies(event):
                continue
            ends_at = event.at if event.state == "resolved" else now + self.validity_s
            alert: dict[str, Any] = {
                "labels": _redacted(alert_labels(event.finding), self._redact),
                "annotations": _redacted(alert_annotations(event.finding), self._redact),
                "startsAt": rfc3339(event.started_at),
                "endsAt": rfc3339(ends_at),
            }
            if self._generator_url:
                alert["generatorURL"] = self._generator_url
            alerts.append(alert)
        return alerts

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Post the firing and resolved events in one request."""
        alerts = self.payload(events)
        if alerts:
            self._poster.post(alerts)


class WebhookNotifier:
    """Posts `{"version": 1, "alerts": [...]}` to a generic JSON webhook.

    Each alert: `id` (one per change: the same firing or resolution always has the same id, so a receiver
    drops one it has seen; see `change_id`), `episode_id` (one per alert episode, the same for its firing and
    its resolution: a PagerDuty-style dedup key that pairs trigger and resolve; see `episode_id`), `state` (firing
    or resolved), `at` (when this change happened), `startsAt`, `endsAt` (resolved only, else null), and the same
    `labels` and `annotations` Alertmanager gets.
    """

    VERSION: Final = 1

    def __init__(
        self,
        url: str,
        session: requests.Session,
        timeout_s: float,
        redact: Redactor,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self._name = name
        self._redact = redact
        self._poster = _JsonPoster(
            url, session, timeout_s=timeout_s, redact=redact, headers=headers, ca_bundle=ca_bundle
        )

    @property
    def name(self) -> str:
        """The notifier's name in counters and logs."""
        return self._name

    @property
    def resend_interval_s(self) -> None:
        """Each event is sent once."""
        return None

    def payload(self, events: Sequence[AlertEvent]) -> dict[str, Any]:
        """The JSON document this notifier posts; events that do not notify are left out."""
        alerts = [
            {
                "id": change_id(event),
                "episode_id": episode_id(event),
                "state": event.state,
                "at": rfc3339(event.at),
                "startsAt": rfc3339(event.started_at),
                "endsAt": rfc3339(event.at) if event.state == "resolved" else None,
                "labels": _redacted(alert_labels(event.finding), self._redact),
                "annotations": _redacted(alert_annotations(event.finding), self._redact),
            }
            for event in events
            if notifies(event)
        ]
        return {"version": self.VERSION, "alerts": alerts}

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Post the firing and resolved events as one document."""
        document = self.payload(events)
        if document["alerts"]:
            self._poster.post(document)


class LogNotifier:
    """Writes one line per event: a warning when an alert fires, info when it resolves. Never fails."""

    def __init__(self, log: logging.Logger, *, name: str = "log", redact: Redactor | None = None) -> None:
        self._name = name
        self._log = log
        self._redact: Callable[[str], str] = redact or (lambda text: text)

    @property
    def name(self) -> str:
        """The notifier's name in counters and logs."""
        return self._name

    @property
    def resend_interval_s(self) -> None:
        """Each event is logged once."""
        return None

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Log the firing and resolved events."""
        for event in events:
            if not notifies(event):
                continue
            finding = event.finding
            level = logging.WARNING if event.state == "firing" else logging.INFO
            annotations = alert_annotations(finding)
            line = (
                f"alert {event.state}: {shown_key(finding.key)} severity={finding.severity} "
                f"kind={'operational' if finding.operational else 'permit'} "
                f"value={annotations.get('value', '-')} limit={annotations.get('limit', '-')} "
                f"permit_version={finding.permit_version or '-'} since={rfc3339(event.started_at)}"
                + (f" until={rfc3339(event.at)}" if event.state == "resolved" else "")
                + f": {alert_summary(finding)}"
            )
            self._log.log(level, "%s", self._redact(line))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a queue tries: backoff `initial_backoff_s` doubling up to `max_backoff_s` per failed attempt.

    An event is dropped (logged, counted) once it has failed `max_attempts` times (None: no limit) or has waited
    `max_age_s`, or when its queue holds `max_queue` events and a newer one arrives (the oldest goes).
    """

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_attempts: int | None = None
    max_age_s: float = 3600.0
    max_queue: int = 10_000
    max_batch: int = 500

    def backoff_s(self, consecutive_failures: int) -> float:
        """The wait after the n-th failure in a row (n >= 1): 1, 2, 4, ... capped."""
        return min(self.initial_backoff_s * 2.0 ** min(consecutive_failures - 1, 62), self.max_backoff_s)


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """Counters of one notifier since start (events, except `failed_attempts`, which counts requests).

    `delivered`: changes (firing, resolved) the peer accepted; `retried`: events sent again after a failed
    attempt; `resent`: re-posts of alerts still firing that the peer accepted; `queued`: the queue's length now.
    Every event submitted is, in the end, delivered, resent or dropped.
    """

    delivered: int
    failed_attempts: int
    retried: int
    dropped: int
    resent: int
    queued: int


@dataclass(slots=True)
class _Entry:
    event: AlertEvent
    enqueued_at: float
    attempts: int = 0


@dataclass(slots=True)
class _Lane:
    """One notifier's queue, backoff and counters."""

    notifier: Notifier
    queue: deque[_Entry] = field(default_factory=deque)
    failures_in_row: int = 0
    next_attempt_at: float = float("-inf")
    busy: bool = False
    in_flight: int = 0  # the first `in_flight` queued entries are being sent right now
    # Episodes whose firing this notifier accepted in this process and whose resolution has not come yet
    firings_sent: set[tuple[AlertKey, float]] = field(default_factory=set)
    delivered: int = 0
    failed_attempts: int = 0
    retried: int = 0
    dropped: int = 0
    resent: int = 0


class Delivery:
    """Fans alert events out to notifiers, each with its own bounded retry queue, backoff and counters.

    `submit` only queues; `flush(now)` (called by the scheduler every second or so, or by `run` in a thread)
    sends what is due. `now` is monotonic seconds from the injected clock, so tests drive time directly.
    Safe to call from several threads: one flush per notifier at a time, and the lock is never held while
    a request is in flight.

    Re-posting what still fires is the caller's: it submits the alert book's re-sends. The hooks concern the
    `tracked` notifiers only (default: all), those whose deliveries the caller records:

    * `on_delivered(name, events)` is called after a tracked notifier accepted a batch (e.g. to
      `AlertBook.record_delivery` it);
    * `already_delivered(name, event)` (e.g. `AlertBook.already_delivered`) keeps a change a notifier has
      accepted before from being queued for it again: a re-offered firing must not reach a webhook that took
      it, nor must the first rounds after a restart;
    * `took_firing(name, event)` (e.g. `AlertBook.took_firing`) says whether the notifier accepted the firing
      of a resolution's episode (see `submit`).

    Lock order: the hooks may take the caller's locks (the alert book's, held while it saves and fsyncs), so
    `Delivery` never calls them while it holds its own lock: `submit` asks them before taking it, and
    `on_delivered` runs after the batch is taken off the queue. The two locks are never nested.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier],
        *,
        policy: RetryPolicy | None = None,
        on_delivered: Callable[[str, Sequence[AlertEvent]], None] | None = None,
        already_delivered: Callable[[str, AlertEvent], bool] | None = None,
        took_firing: Callable[[str, AlertEvent], bool] | None = None,
        tracked: Iterable[str] | None = None,
        log: logging.Logger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lanes: dict[str, _Lane] = {}
        for notifier in notifiers:
            if notifier.name in self._lanes:
                raise ValueError(f"two notifiers are named {notifier.name!r}")
            self._lanes[notifier.name] = _Lane(notifier)
        self._policy = policy or RetryPolicy()
        self._on_delivered = on_delivered
        self._already_delivered = already_delivered
        self._took_firing = took_firing
        self.tracked: tuple[str, ...] = tuple(self._lanes) if tracked is None else tuple(tracked)
        if unknown := set(self.tracked) - set(self._lanes):
            raise ValueError(f"tracked notifiers that are not configured: {sorted(unknown)}")
        self._log = log or logging.getLogger(__name__)
        self._monotonic = monotonic
        self._lock = threading.Lock()

    @property
    def notifier_names(self) -> tuple[str, ...]:
        """The configured notifiers, in order."""
        return tuple(self._lanes)

    def submit(
        self, events: Iterable[AlertEvent], now: float | None = None, *, only: Iterable[str] | None = None
    ) -> int:
        """Queue the events that notify (see `notifies`) for every notifier (or `only` those named); returns how
        many of them there were. For each notifier:

        * a re-send (`is_repeat`) is queued only if it has a `resend_interval_s` and no entry for that alert is
          queued already;
        * any other event is not queued when the same change (`change_id`) is queued already, nor (tracked
          notifiers) when `already_delivered` says it took it before. While a notifier is down, rounds would
          otherwise pile up copies of one firing and push real transitions out of its queue;
        * a resolution is not queued for a tracked notifier that never took the firing of that episode
          (`took_firing`) and has none queued or just sent: it never showed the alert, so a resolution would
          only confuse it (the firing was dropped, or expired, or lost in a restart before it was re-offered).
        """
        now = self._monotonic() if now is None else now
        notifying = [event for event in events if notifies(event)]
        if not notifying:
            return 0
        names = list(self._lanes) if only is None else [name for name in self._lanes if name in set(only)]
        # The hooks take the caller's locks (the book's, held during an fsyncing save): asked before ours.
        had: set[tuple[str, int]] = set()
        took: set[tuple[str, int]] = set()
        for name in names:
            if name not in self.tracked:
                continue
            for index, event in enumerate(notifying):
                if is_repeat(event):
                    continue
                if self._already_delivered is not None and self._already_delivered(name, event):
                    had.add((name, index))
                if event.state == "resolved" and (self._took_firing is None or self._took_firing(name, event)):
                    took.add((name, index))
        overflow: list[tuple[str, _Entry]] = []
        with self._lock:
            for name in names:
                lane = self._lanes[name]
                tracked = name in self.tracked
                reposts = lane.notifier.resend_interval_s is not None
                queued_keys = {alert_key(entry.event) for entry in lane.queue}
                queued_ids = {change_id(entry.event) for entry in lane.queue if not is_repeat(entry.event)}
                queued_firings = {_episode(entry.event) for entry in lane.queue if entry.event.state == "firing"}
                for index, event in enumerate(notifying):
                    if is_repeat(event):
                        if not reposts or alert_key(event) in queued_keys:
                            continue
                    else:
                        sent = False
                        if event.state == "resolved":
                            sent = _episode(event) in lane.firings_sent
                            lane.firings_sent.discard(_episode(event))
                        if (name, index) in had or change_id(event) in queued_ids:
                            continue
                        unseen = (name, index) not in took and _episode(event) not in queued_firings and not sent
                        if event.state == "resolved" and tracked and unseen:
                            self._log.info(
                                "alert resolution not sent to %s, which never took the firing: %s",
                                name,
                                shown_key(alert_key(event)),
                            )
                            continue
                        queued_ids.add(change_id(event))
                    lane.queue.append(_Entry(event, now))
                    queued_keys.add(alert_key(event))
                    if event.state == "firing":
                        queued_firings.add(_episode(event))
                while len(lane.queue) > self._policy.max_queue:
                    # The oldest entry not being sent right now: the batch in flight stays the queue's head.
                    oldest = lane.queue[lane.in_flight]
                    del lane.queue[lane.in_flight]
                    overflow.append((name, oldest))
                    lane.dropped += 1
        for name, entry in overflow:
            self._log_drop(name, entry, "queue full")
        return len(notifying)

    def flush(self, now: float | None = None) -> int:
        """Send what is due to every notifier not backing off; returns how many queued events were delivered."""
        now = self._monotonic() if now is None else now
        return sum(self._flush_lane(name, now) for name in self._lanes)

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Flush every `interval_s` until `stop` is set, each notifier on its own thread: a webhook hanging for
        its timeout must not hold up Alertmanager. Returns once every notifier's thread has ended."""
        threads = [
            threading.Thread(target=self._run_lane, args=(name, stop, interval_s), name=f"delivery-{name}", daemon=True)
            for name in self._lanes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _run_lane(self, name: str, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                self._flush_lane(name, self._monotonic())
            except Exception:  # a bug in one notifier must not end its delivery for good
                self._log.exception("alert delivery to %s failed", name)

    def stats(self) -> dict[str, NotifierStats]:
        """A snapshot of every notifier's counters."""
        with self._lock:
            return {
                name: NotifierStats(
                    delivered=lane.delivered,
                    failed_attempts=lane.failed_attempts,
                    retried=lane.retried,
                    dropped=lane.dropped,
                    resent=lane.resent,
                    queued=len(lane.queue),
                )
                for name, lane in self._lanes.items()
            }

    def _flush_lane(self, name: str, now: float) -> int:
        delivered = 0
        while True:
            with self._lock:
                lane = self._lanes[name]
                if lane.busy or now < lane.next_attempt_at:
                    return delivered
                expired = self._expire(lane, now)
                batch = [lane.queue[i] for i in range(min(len(lane.queue), self._policy.max_batch))]
                if batch:
                    lane.busy = True
                    lane.in_flight = len(batch)
            for entry, why in expired:
                self._log_drop(name, entry, why)
            if not batch:
                return delivered
            sent = [entry.event for entry in batch]
            try:
                lane.notifier.send(sent)
            except DeliveryFailed as exc:
                self._failed(name, lane, batch, exc, now)
                return delivered
            except Exception as exc:  # a notifier bug counts as a failed attempt, not a lost event
                # Only the type: the message of an arbitrary exception may carry a URL with credentials.
                self._failed(name, lane, batch, DeliveryFailed("error", f"notifier raised {type(exc).__name__}"), now)
                return delivered
            with self._lock:
                lane.busy = False
                lane.in_flight = 0
                for entry in batch:
                    lane.queue.popleft()
                    if entry.event.state == "firing" and name in self.tracked:
                        # Until the caller has recorded it, a resolution must still find this firing taken.
                        lane.firings_sent.add(_episode(entry.event))
                repeats = sum(1 for entry in batch if is_repeat(entry.event))
                lane.delivered += len(batch) - repeats
                lane.retried += sum(1 for entry in batch if entry.attempts > 0)
                lane.resent += repeats
                lane.failures_in_row = 0
                lane.next_attempt_at = float("-inf")
            delivered += len(batch)
            if self._on_delivered is not None and name in self.tracked:
                try:
                    self._on_delivered(name, sent)
                except Exception:  # the events are delivered; a failing callback must not send them again
                    self._log.exception("on_delivered callback failed for %s", name)

    def _expire(self, lane: _Lane, now: float) -> list[tuple[_Entry, str]]:
        """Take out queued events that waited too long (called under the lock)."""
        expired: list[tuple[_Entry, str]] = []
        while lane.queue and now - lane.queue[0].enqueued_at > self._policy.max_age_s:
            entry = lane.queue.popleft()
            expired.append((entry, f"older than {self._policy.max_age_s:g} s after {entry.attempts} attempts"))
        lane.dropped += len(expired)
        return expired

    def _failed(self, name: str, lane: _Lane, batch: list[_Entry], exc: DeliveryFailed, now: float) -> None:
        """Count the failed attempt, back off, and drop what cannot or may no longer be retried."""
        limit = self._policy.max_attempts
        dropped: list[tuple[_Entry, str]] = []
        with self._lock:
            lane.busy = False
            lane.in_flight = 0
            lane.failed_attempts += 1
            lane.failures_in_row += 1
            wait = self._policy.backoff_s(lane.failures_in_row)
            lane.next_attempt_at = now + wait
            for entry in batch:
                entry.attempts += 1
            if not exc.retryable:
                why = f"not retryable ({exc.reason})"
                dropped = [(entry, why) for entry in batch]
            elif limit is not None:
                dropped = [(entry, f"failed {entry.attempts} attempts") for entry in batch if entry.attempts >= limit]
            if dropped:
                gone = {id(entry) for entry, _ in dropped}
                lane.queue = deque(entry for entry in lane.queue if id(entry) not in gone)
                lane.dropped += len(dropped)
                if not exc.retryable:
                    # The peer is up and answering; what is left need not wait for a backoff.
                    lane.failures_in_row = 0
                    lane.next_attempt_at = float("-inf")
            queued = len(lane.queue)
        self._log.warning(
            "alert delivery to %s failed (%s): %s; %d queued, next attempt in %g s",
            name,
            exc.reason,
            exc,
            queued,
            wait if exc.retryable else 0.0,
        )
        for entry, why in dropped:
            self._log_drop(name, entry, why)

    def _log_drop(self, name: str, entry: _Entry, why: str) -> None:
        event = entry.event
        self._log.error(
            "alert event dropped by %s: %s %s (at %s): %s",
            name,
            shown_key(alert_key(event)),
            event.state,
            rfc3339(event.at),
            why,
        )
