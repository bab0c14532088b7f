"""The scheduler: stable per-target offsets, one job per target, never two runs of one job at once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import pytest

from collector.scheduler import Scheduler, stagger_offset
from unit.support import REPO

KEYS = [f"group-{g}/braiins/account-{a}" for g in range(20) for a in range(5)]


@pytest.mark.parametrize("interval", [1.0, 20.0, 60.0, 3600.0])
def test_stagger_offset_is_within_the_interval_and_stable(interval: float) -> None:
    offsets = [stagger_offset(key, interval) for key in KEYS]

    assert all(0.0 <= offset < interval for offset in offsets)
    assert offsets == [stagger_offset(key, interval) for key in KEYS]


def test_stagger_offsets_spread_over_the_interval() -> None:
    offsets = [stagger_offset(key, 60.0) for key in KEYS]

    assert len(set(offsets)) == len(KEYS)
    assert {int(offset // 15) for offset in offsets} == {0, 1, 2, 3}  # every quarter of the minute is used


def test_stagger_offset_is_the_same_after_a_restart() -> None:
    code = "from collector.scheduler import stagger_offset; print(repr(stagger_offset('g1/braiins/acc', 60.0)))"
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=30
    )

    assert float(result.stdout) == stagger_offset("g1/braiins/acc", 60.0)


class JobLog:
    """Records when each job ran and the most instances of one job that ever ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[str, int] = defaultdict(int)
        self.running: dict[str, int] = defaultdict(int)
        self.max_running: dict[str, int] = defaultdict(int)

    def job(self, key: str, duration_s: float) -> Callable[[], None]:
        def run() -> None:
            with self._lock:
                self.runs[key] += 1
                self.running[key] += 1
                self.max_running[key] = max(self.max_running[key], self.running[key])
            time.sleep(duration_s)
            with self._lock:
                self.running[key] -= 1

        return run


def _run_scheduler(job_duration_s: float, seconds: float, misfire_grace_s: float = 5.0) -> tuple[JobLog, Scheduler]:
    jobs = JobLog()
    scheduler = Scheduler(
        interval_s=1.0, workers=8, misfire_grace_s=misfire_grace_s, log=logging.getLogger("minewatch.test")
    )
    for key in ("g1/a", "g1/b", "g2/a"):
        scheduler.add(key, jobs.job(key, job_duration_s))
    assert scheduler.job_count == 3
    scheduler.start()
    try:
        time.sleep(seconds)
    finally:
        scheduler.shutdown(wait=True)
    return jobs, scheduler


def test_each_job_runs_once_per_interval() -> None:
    jobs, scheduler = _run_scheduler(job_duration_s=0.05, seconds=3.2)

    assert set(jobs.runs) == {"g1/a", "g1/b", "g2/a"}
    assert all(2 <= count <= 4 for count in jobs.runs.values()), dict(jobs.runs)
    assert all(most == 1 for most in jobs.max_running.values())
    assert (scheduler.stats.overlapping, scheduler.stats.errors) == (0, 0)


def test_a_job_slower_than_its_interval_is_skipped_not_run_twice_at_once() -> None:
    jobs, scheduler = _run_scheduler(job_duration_s=1.2, seconds=2.3)

    assert all(most == 1 for most in jobs.max_running.values()), dict(jobs.max_running)
    assert all(1 <= count <= 2 for count in jobs.runs.values()), dict(jobs.runs)
    assert scheduler.stats.overlapping >= 3  # at least one skipped run per job, counted


def test_a_sub_second_misfire_grace_from_the_config_is_usable() -> None:
    """`schedule.misfire_grace_s` only has to be > 0 in the config, so 0.5 must start a scheduler."""
    jobs, _ = _run_scheduler(job_duration_s=0.0, seconds=1.2, misfire_grace_s=0.5)

    assert sum(jobs.runs.values()) >= 3
