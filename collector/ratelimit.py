"""Token buckets: one per scope a pool's rate limit applies to, shared by every job polling that scope."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from collector.errors import RateLimited


class BudgetExhausted(RateLimited):
    """Our own rate budget, not the pool, says not now: the pool has not been asked."""


@dataclass(frozen=True, slots=True)
class RateBudget:
    """`per_minute` requests on average, at most `burst` at once, applied per `scope` ("credential" or "host")."""

    per_minute: float
    burst: int
    scope: str


class TokenBucket:
    """A thread-safe token bucket over an injected monotonic clock."""

    def __init__(self, budget: RateBudget, clock: Callable[[], float]) -> None:
        self.budget = budget
        self._clock = clock
        self._tokens = float(budget.burst)
        self._updated = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def reserve(self, deadline: float) -> float:
        """Take one token; return how long the caller must wait for it (0 if available now).

        Raises RateLimited if the token would come after `deadline` (a monotonic time): the poll then fails
        as rate-limited instead of overrunning its interval.
        """
        rate = self.budget.per_minute / 60.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.budget.burst), self._tokens + (now - self._updated) * rate)
            self._updated = now
            wait = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / rate
            if wait > 0 and now + wait > deadline:
                raise BudgetExhausted(
                    f"rate budget exhausted ({self.budget.per_minute:g}/min per {self.budget.scope})",
                    retry_after=wait,
                )
            self._tokens -= 1.0
            self.waited_s += wait
            return wait


class BudgetBook:
    """Hands out one shared bucket per scope key, creating it on first use."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, key: str, budget: RateBudget) -> TokenBucket:
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = TokenBucket(budget, self._clock)
            return self._buckets[key]
