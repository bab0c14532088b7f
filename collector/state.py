"""The last good snapshot and the health of every target, shared by the runner, exporter and rules."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """How the polls of one target have gone."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_duration_s: float | None = None
    last_error_kind: str | None = None
    consecutive_failures: int = 0
    polls: int = 0
    failures: int = 0
    backoff_until: float = 0.0

    def data_age_s(self, now: float) -> float | None:
        """Seconds since the last successful poll; None if there never was one."""
        return None if self.last_success is None else max(0.0, now - self.last_success)


class StateStore:
    """Thread-safe map of target key -> (last good snapshot, health)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, Any] = {}
        self._health: dict[str, TargetHealth] = {}
        self._failures_by_kind: dict[tuple[str, str], int] = {}

    def health(self, key: str) -> TargetHealth:
        with self._lock:
            return self._health.get(key, TargetHealth())

    def record_success(self, key: str, snapshot: Any, *, at: float, duration_s: float) -> TargetHealth:
        with self._lock:
            old = self._health.get(key, TargetHealth())
            new = replace(
                old,
                last_attempt=at,
                last_success=at,
                last_duration_s=duration_s,
                last_error_kind=None,
                consecutive_failures=0,
                polls=old.polls + 1,
                backoff_until=0.0,
            )
            self._health[key] = new
            self._snapshots[key] = snapshot
            return new

    def record_failure(
        self, key: str, *, at: float, duration_s: float, error_kind: str, backoff_until: float = 0.0
    ) -> TargetHealth:
        with self._lock:
            old = self._health.get(key, TargetHealth())
            new = replace(
                old,
                last_attempt=at,
                last_duration_s=duration_s,
                last_error_kind=error_kind,
                consecutive_failures=old.consecutive_failures + 1,
                polls=old.polls + 1,
                failures=old.failures + 1,
                backoff_until=backoff_until,
            )
            self._health[key] = new
            self._failures_by_kind[key, error_kind] = self._failures_by_kind.get((key, error_kind), 0) + 1
            return new

    def snapshot(self, key: str) -> Any:
        with self._lock:
            return self._snapshots.get(key)

    def failures_by_kind(self) -> dict[tuple[str, str], int]:
        """Failed polls since start, by (target key, error kind)."""
        with self._lock:
            return dict(self._failures_by_kind)

    def items(self) -> list[tuple[str, TargetHealth]]:
        with self._lock:
            return sorted(self._health.items())
