"""Runs one poll of one target: deadline, backoff, bookkeeping, points, `source_health`. Never raises."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.errors import RateLimited, SourceError
from collector.sinks.base import Sink
from collector.sinks.lineprotocol import LineProtocolError
from collector.sinks.points import source_health_line
from collector.state import StateStore
from collector.targets import Snapshot, Target

INTERNAL_ERROR = "internal"
BACKOFF = "backoff"
MAX_BACKOFF_INTERVALS = 15


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll did, for `collect --once` and the tests."""

    key: str
    success: bool
    error_kind: str | None
    message: str | None
    lines: int


class Runner:
    """Polls targets and writes their points; owns timing, backoff and bookkeeping."""

    def __init__(
        self,
        sink: Sink,
        state: StateStore,
        *,
        clock: Callable[[], float],
        log: logging.Logger,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._state = state
        self._clock = clock
        self._monotonic = monotonic
        self._log = log

    def poll(self, target: Target) -> PollResult:
        """Poll `target` once and write what it returned, or its failure, to the sink."""
        now = self._clock()
        health = self._state.health(target.key)
        # Backoffs end on a poll's slot; half an interval of slack absorbs the scheduler's lateness.
        if now < health.backoff_until - target.interval_s / 2:
            return self._skip_for_backoff(target, now)
        started = self._monotonic()
        target.start_poll()
        collected = False
        try:
            snapshot: Snapshot = target.collect()
            collected = True
            lines = list(target.lines(snapshot))
        except SourceError as exc:
            return self._failed(target, now, self._monotonic() - started, exc.kind, str(exc), exc)
        except LineProtocolError as exc:
            self._rollback(target, collected)
            return self._failed(target, now, self._monotonic() - started, "bad_response", str(exc), None)
        except Exception as exc:  # a bug in a source must not stop the daemon: count it, log it, go on
            self._log.exception("%s: unexpected error in source %s", target.key, target.health_tags[1])
            self._rollback(target, collected)
            return self._failed(target, now, self._monotonic() - started, INTERNAL_ERROR, type(exc).__name__, None)
        duration = self._monotonic() - started
        previous_kind = health.last_error_kind
        self._state.record_success(target.key, snapshot, at=now, duration_s=duration)
        if previous_kind is not None:
            self._log.info("%s: recovered after %s", target.key, previous_kind)
        for issue in snapshot.issues:
            self._log.warning("%s: partial poll: %s", target.key, issue)
        partial_kind = snapshot.issues[0].kind if snapshot.issues else None
        lines.append(self._health_line(target, now, success=True, duration_s=duration, age=0.0, kind=partial_kind))
        self._sink.write(lines)
        return PollResult(target.key, True, partial_kind, None, len(lines))

    def _rollback(self, target: Target, collected: bool) -> None:
        """A snapshot that did not become points: the source's history bookmarks go back, so the next poll reads
        this poll's windows (credits, payouts, hashrate history) again instead of losing them."""
        if not collected:
            return
        try:
            target.rollback()
        except Exception:
            self._log.exception("%s: rolling back the source's bookmarks failed", target.key)

    def _failed(
        self,
        target: Target,
        now: float,
        duration: float,
        kind: str,
        message: str,
        error: SourceError | None,
    ) -> PollResult:
        before = self._state.health(target.key)
        backoff_until = 0.0
        if isinstance(error, RateLimited):
            # Retry-After where the pool sends it, else 2, 4, 8, 16 intervals; rounded up to whole intervals.
            interval = target.interval_s
            exponential = interval * 2 ** min(before.consecutive_failures + 1, 4)
            wait = min(
                error.retry_after if error.retry_after is not None else exponential, interval * MAX_BACKOFF_INTERVALS
            )
            backoff_until = now + math.ceil(wait / interval) * interval
        health = self._state.record_failure(
            target.key, at=now, duration_s=duration, error_kind=kind, backoff_until=backoff_until
        )
        if before.last_error_kind != kind:
            self._log.warning("%s: poll failed (%s): %s", target.key, kind, message)
        else:
            self._log.debug("%s: still failing (%s): %s", target.key, kind, message)
        line = self._health_line(target, now, success=False, duration_s=duration, age=health.data_age_s(now), kind=kind)
        self._sink.write([line])
        return PollResult(target.key, False, kind, message, 1)

    def _skip_for_backoff(self, target: Target, now: float) -> PollResult:
        health = self._state.health(target.key)
        line = self._health_line(target, now, success=False, duration_s=0.0, age=health.data_age_s(now), kind=BACKOFF)
        self._sink.write([line])
        return PollResult(target.key, False, BACKOFF, "rate limited: backing off", 1)

    def _health_line(
        self,
        target: Target,
        now: float,
        *,
        success: bool,
        duration_s: float,
        age: float | None,
        kind: str | None,
    ) -> str:
        group_id, source_kind, target_id = target.health_tags
        return source_health_line(
            group_id,
            source_kind,
            target_id,
            success=success,
            stale=not success,
            duration_s=round(duration_s, 6),
            data_age_s=None if age is None else round(age, 3),
            error_kind=kind,
            at=int(now),
        )
