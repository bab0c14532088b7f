"""Benchmark: scheduler start lateness with N staggered jobs (design target: p99 < 2 s, no missed runs).

Run by hand: .venv/bin/python bench/schedule.py [JOBS] [INTERVAL_S] [WORKERS] [JOB_SECONDS] [ROUNDS]
Each job sleeps JOB_SECONDS (a stand-in for waiting on a pool); prints start-lateness percentiles and the
runs APScheduler missed or skipped. Defaults: 2000 jobs every 10 s, 64 workers, 0.2 s per job, 3 rounds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent

from collector.scheduler import Scheduler


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    job_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    scheduler = Scheduler(
        interval_s=interval, workers=workers, misfire_grace_s=max(1, int(interval / 2)), log=logging.getLogger("bench")
    )
    started: dict[str, float] = {}
    lateness: list[float] = []
    lock = threading.Lock()

    def make_job(key: str) -> object:
        def job() -> None:
            with lock:
                started[key] = time.time()
            time.sleep(job_seconds)

        return job

    def on_executed(event: JobExecutionEvent) -> None:
        with lock:
            lateness.append(started[event.job_id] - event.scheduled_run_time.timestamp())

    for index in range(jobs):
        scheduler.add(f"job-{index:05d}", make_job(f"job-{index:05d}"))  # type: ignore[arg-type]
    scheduler.listen(on_executed, EVENT_JOB_EXECUTED)
    began = datetime.now(UTC)
    scheduler.start()
    time.sleep(interval * rounds)
    scheduler.shutdown(wait=False)
    with lock:
        ordered = sorted(lateness)
    expected = jobs * rounds
    p50 = ordered[len(ordered) // 2] if ordered else float("nan")
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else float("nan")
    print(
        f"schedule: {jobs} jobs every {interval:g} s, {workers} workers, {job_seconds:g} s each, "
        f"{rounds} rounds since {began:%H:%M:%S}: {len(ordered)} of ~{expected} runs; "
        f"start lateness p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms; "
        f"missed {scheduler.stats.missed}, skipped (still running) {scheduler.stats.overlapping}"
    )


if __name__ == "__main__":
    main()
