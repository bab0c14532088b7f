"""APScheduler 3.x wiring: one interval job per target, staggered by a fixed offset, never overlapping."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger


def stagger_offset(key: str, interval_s: float) -> float:
    """A fixed per-target offset within the interval: the first run is this long after start-up, and every
    run after it one interval later (unlike APScheduler's jitter, it does not stretch the period)."""
    digest = hashlib.sha256(key.encode()).digest()
    return (int.from_bytes(digest[:8], "big") % 1_000_000) / 1_000_000 * interval_s


class SchedulerStats:
    """Counts (and logs) the runs APScheduler did not make, so missed runs are visible, not hidden."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self.missed = 0
        self.overlapping = 0
        self.errors = 0

    def on_event(self, event: JobEvent) -> None:
        with self._lock:
            if event.code == EVENT_JOB_MISSED:
                self.missed += 1
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                self.overlapping += 1
            elif event.code == EVENT_JOB_ERROR:
                self.errors += 1
        if event.code == EVENT_JOB_MISSED:
            self._log.warning("%s: a run was missed (all workers busy past misfire_grace_s)", event.job_id)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._log.warning("%s: a run was skipped, the previous one is still going", event.job_id)


class Scheduler:
    """Owns the APScheduler instance; jobs are plain callables keyed by target."""

    def __init__(
        self,
        *,
        interval_s: float,
        workers: int,
        misfire_grace_s: int,
        log: logging.Logger,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._interval_s = interval_s
        self._now = now
        self._log = log
        self.stats = SchedulerStats(log)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, misfire_grace_s)},
            timezone=UTC,
        )
        self._scheduler.add_listener(self.stats.on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)

    def add(self, key: str, job: Callable[[], Any], *, interval_s: float | None = None) -> None:
        """Run `job` every interval (the default one unless given), first at a stable offset from now so
        targets do not fire together."""
        interval = self._interval_s if interval_s is None else interval_s
        first = self._now() + timedelta(seconds=stagger_offset(key, interval))
        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=interval, start_date=first, timezone=UTC),
            id=key,
            name=key,
            next_run_time=first,
        )

    def listen(self, callback: Callable[[Any], None], mask: int) -> None:
        """Call `callback` with every APScheduler event in `mask` (benchmarks and tests measure with it)."""
        self._scheduler.add_listener(callback, mask)

    def remove(self, key: str) -> None:
        """Stop running the job added under `key`."""
        self._scheduler.remove_job(key)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        self._scheduler.shutdown(wait=wait)

    @property
    def job_count(self) -> int:
        return len(self._scheduler.get_jobs())
